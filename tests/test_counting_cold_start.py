"""A cold count stays off torch._dynamo and the symbolic-shapes module, and counts the same.

The stand-ins of :mod:`attnprof.counting.no_dynamo` answer a few of torch's questions about
plain integers while a count runs; these tests hold them to giving the same counts as torch's
own modules, and to leaving nothing behind (a later torch.compile still works).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    from attnprof.attention import attention_names
    from attnprof.backbones import build_model
    from attnprof.counting import count

    HEAVY = ("torch._dynamo", "torch.fx.experimental.symbolic_shapes")

    def counts():
        found = {}
        for backbone in ("resnet18", "mobilenet_v2"):
            for attention in attention_names():
                options = {"sa": {"groups": 32}}.get(attention, {})
                if backbone == "mobilenet_v2":
                    if attention not in ("none", "sa", "gc"):  # its own ops; the rest: slow
                        continue
                    options = {"sge": {"groups": 8}, "sa": {"groups": 4}}.get(attention, {})
                model = build_model(backbone, attention, device="meta", **options)
                for convention in ("full",):  # op rules and bytes: where shapes are asked
                    c = count(model, (1, 3, 64, 64), convention)
                    found[f"{backbone}|{attention}|{convention}"] = [
                        c.value, c.attention, c.bytes, c.uncounted]
        return found

    stood_in = counts()
    untouched = [name for name in HEAVY if name not in sys.modules]
    import torch
    import torch._dynamo
    import torch.fx.experimental.symbolic_shapes
    real = counts()
    compiled = torch.compile(lambda x: torch.sigmoid(x) * x, backend="eager")
    value = float(compiled(torch.ones(3)).sum())
    print(json.dumps({"untouched": untouched, "same": stood_in == real, "n": len(real),
                      "compiled": value}))
""")


def test_counting_needs_neither_dynamo_nor_sympy_shapes_and_counts_the_same():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["untouched"] == ["torch._dynamo", "torch.fx.experimental.symbolic_shapes"]
    assert result["same"] and result["n"] == 9 + 3
    assert abs(result["compiled"] - 3 * 0.7310585786) < 1e-5  # the real dynamo, afterwards
