"""Forward latency of every attention module on ResNet-50's four stage shapes, paired with a
reference block timed in the same rounds, for ``attnprof compare`` in CI.

    pytest tests/benchmarks -m bench --benchmark-enable --benchmark-json new.json
    attnprof compare base.json new.json --threshold 10%

Shapes (batch 1): C = 256, 512, 1024, 2048 at 56, 28, 14, 7 for the block and stage modules;
SK, which replaces the bottleneck's 3x3 conv, takes the mid width P = C / 4.

**References.** A module's time alone says as much about the runner as about the code, so each
one is judged as a ratio to a reference timed in the same round:

- block and stage modules (SE, SGE, SA, CBAM, ECA, GC, BAM): a plain ResNet-50 Bottleneck of that
  stage, the second block of the stage (C -> C, stride 1), i.e. the block the module is added to;
  the ratio reads "this module costs x of the block it sits in";
- SK: the conv3x3 + BN + ReLU at width P that it replaces (taken from the same Bottleneck).

**Pairing.** Each benchmark round times the module and then the reference, with the design of
attnprof's pytest plugin (:mod:`attnprof.bench.paired`, the machinery of the ``attnprof_bench``
fixture users benchmark their own modules with): balanced halves, a warm untimed call before
each, one thread (``ATTNPROF_BENCH_THREADS``), batch 1, inference mode. The warm call matters:
without it SE at stage 1 measured 0.066 of the block with 1 call per round and 0.028 with 64,
so any run-to-run change in the call count would move the ratio.

The references also run as benchmarks of their own (``role`` ``reference``), shown by compare
for context and never judged.

``extra_info`` also holds the ``paper``-convention MACs and the parameters (counted by
:func:`attnprof.counting.count` on a meta-device copy), compared exactly.

Under the default ``--benchmark-disable`` each benchmark runs its module once: a fast smoke test
of the forward and of the counting. Threads: ``ATTNPROF_BENCH_THREADS`` (default 1).
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import attnprof
from attnprof.attention import attention_names, get_attention_spec
from attnprof.bench.paired import paired_benchmark
from attnprof.counting import count
from attnprof.profiling import profile

pytestmark = [pytest.mark.bench, pytest.mark.usefixtures("bench_threads")]

ROUNDS = 40
WARMUP_ROUNDS = 5

STAGES = ((1, 256, 56), (2, 512, 28), (3, 1024, 14), (4, 2048, 7))
MODULES = [name for name in attention_names() if name != "none"]


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return attnprof.build_model("resnet50")


def _reference(resnet50, name: str, stage: int) -> tuple[str, nn.Module, int]:
    """The reference of ``name`` at ``stage``: (id, module, input channels)."""
    block = getattr(resnet50, f"layer{stage}")[1]
    _, channels, size = STAGES[stage - 1]
    if get_attention_spec(name).placement == "conv":
        width = block.conv2.in_channels
        return (f"conv3x3-bn-relu|stage{stage}|{width}x{size}x{size}",
                nn.Sequential(block.conv2, block.bn2, block.relu).eval(), width)
    return f"bottleneck|stage{stage}|{channels}x{size}x{size}", block.eval(), channels


def _counts(build, shape) -> dict:
    """Paper-convention MACs and parameters of the module ``build()`` makes, on a meta copy."""
    with torch.device("meta"):
        module = build().eval()
    counted = count(module, shape, "paper", attention=[""])
    return {
        "macs": counted.value,
        "macs_convention": "paper",
        "params": sum(p.numel() for p in module.parameters()),
    }


def _info(benchmark, **info) -> None:
    benchmark.extra_info.update(
        device="cpu", batch=1, threads=torch.get_num_threads(), **info
    )


@pytest.mark.parametrize("stage", [s for s, _, _ in STAGES], ids=lambda s: f"stage{s}")
@pytest.mark.parametrize("name", MODULES)
def test_module_forward(benchmark, resnet50, name, stage):
    _, _, size = STAGES[stage - 1]
    ref_id, reference, width = _reference(resnet50, name, stage)
    torch.manual_seed(0)

    def build():
        return attnprof.build_attention(name, width, stage=stage - 1)

    module = build().eval()
    x = torch.randn(1, width, size, size)
    benchmark.group = f"stage{stage}"
    _info(benchmark, id=f"{name}|stage{stage}|{width}x{size}x{size}", role="module",
          reference=ref_id, stage=stage, **_counts(build, x.shape))

    with torch.inference_mode():
        out = paired_benchmark(benchmark, module, reference, x, rounds=ROUNDS,
                               warmup_rounds=WARMUP_ROUNDS)
    assert out.shape == x.shape


def _reference_cases():
    for stage, _, _ in STAGES:
        yield pytest.param(stage, "block", id=f"bottleneck-stage{stage}")
        yield pytest.param(stage, "conv", id=f"conv3x3-bn-relu-stage{stage}")


@pytest.mark.parametrize(("stage", "kind"), list(_reference_cases()))
def test_reference_forward(benchmark, resnet50, stage, kind):
    name = "sk" if kind == "conv" else "se"  # any module of that placement names the reference
    ref_id, reference, width = _reference(resnet50, name, stage)
    _, _, size = STAGES[stage - 1]
    x = torch.randn(1, width, size, size)
    benchmark.group = f"stage{stage}"
    if kind == "conv":
        def build():
            return nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(width), nn.ReLU(inplace=True))
    else:
        def build():
            return attnprof.build_model("resnet50").get_submodule(f"layer{stage}.1")
    _info(benchmark, id=ref_id, role="reference", stage=stage, **_counts(build, x.shape))
    with torch.inference_mode():
        if benchmark.disabled:
            out = benchmark(reference, x)
        else:
            out = benchmark.pedantic(reference, args=(x,), rounds=ROUNDS,
                                     warmup_rounds=WARMUP_ROUNDS)
    assert out.shape == x.shape


SUITE_ROUNDS = 6
SUITE_REFERENCE_CALLS = 2
"""Meta-device forwards of the suite per round: about as long as counting it."""


@pytest.mark.slow  # the whole imagenet ResNet-50 group counted: seconds even when disabled
def test_count_resnet50_suite(benchmark):
    """Counting every registered variant of ResNet-50 at 224 x 224 under ``paper`` and ``full``,
    as ``attnprof run`` does for a suite, paired with a plain forward of the same models on the
    meta device: the Python and dispatcher work counting cannot avoid, without the counting.
    """
    names = attention_names()
    with torch.device("meta"):
        models = [attnprof.build_model("resnet50", name) for name in names]
    x = torch.empty(1, 3, 224, 224, device="meta")

    def count_suite():
        return [profile("resnet50", name, conventions=("paper", "full")) for name in names]

    def meta_forwards():
        with torch.inference_mode():
            for model in models:
                model(x)

    benchmark.group = "suite"
    if benchmark.disabled:
        records = benchmark(count_suite)
    else:
        reference_s: list[float] = []

        def time_reference(*_args):
            start = time.perf_counter()
            for _ in range(SUITE_REFERENCE_CALLS):
                meta_forwards()
            reference_s.append((time.perf_counter() - start) / SUITE_REFERENCE_CALLS)

        records = benchmark.pedantic(count_suite, rounds=SUITE_ROUNDS, warmup_rounds=1,
                                     teardown=time_reference)
        benchmark.extra_info["reference_s"] = reference_s[1:1 + SUITE_ROUNDS]
    by_name = dict(zip(names, records, strict=True))
    benchmark.extra_info.update(
        id=f"count-suite|resnet50|{len(names)} variants|paper+full", role="suite",
        reference=f"meta-forward|resnet50|{len(names)} variants", device="cpu", batch=1,
        # Totals over the suite, compared exactly; the per-variant figures are for people.
        params=sum(r.params for r in records),
        macs=sum(r.counts["paper"].value for r in records), macs_convention="paper",
        variants={name: {"params": r.params, "paper_mac": r.counts["paper"].value,
                         "full_flop": r.counts["full"].value} for name, r in by_name.items()},
    )
    assert by_name["none"].params == 25_557_032  # torchvision's ResNet-50
