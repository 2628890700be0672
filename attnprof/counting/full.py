"""The ``full`` convention: every aten op counted, in FLOPs, with the bytes it moves.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every op the model runs below
autograd (after composite ops have been decomposed: ``linear`` arrives as ``t`` + ``addmm``,
``adaptive_avg_pool2d(x, 1)`` as ``mean``) and prices it with the rule table of
:mod:`attnprof.counting.rules`. Nothing is silently 0: an op without a rule is reported under
``uncounted``. It runs on meta tensors, so it allocates nothing and takes milliseconds.

Caveats first: FLOPs of anything but multiply-adds are a convention, stated in the rules module;
bytes are those of eager, unfused execution (each op reads its inputs from and writes its output
to memory), an upper bound on what a fusing compiler would move, and no model of caches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from attnprof.counting.breakdown import make as make_breakdown
from attnprof.counting.conventions import CONVENTIONS
from attnprof.counting.rules import op_name, rule_for, traffic
from attnprof.counting.tracing import AttentionScope, attention_paths, input_like, module_stack
from attnprof.results.counts import ConventionCount

SPEC = CONVENTIONS["full"]


class FlopByteMode(TorchDispatchMode):
    """Sums FLOPs and bytes of every op, and the part that runs inside attention modules."""

    def __init__(self, scope: AttentionScope | None = None, where: list[str] | None = None):
        super().__init__()
        self.scope = scope or AttentionScope()
        self.where = where if where is not None else []
        """The names of the modules running, innermost last (see :func:`module_stack`)."""
        self.flops = 0
        self.bytes = 0
        self.attention_flops = 0
        self.attention_bytes = 0
        self.by_op: Counter = Counter()
        self.bytes_by_op: Counter = Counter()
        self.by_module: Counter = Counter()
        self.bytes_by_module: Counter = Counter()
        self.uncounted: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = rule_for(func)
        if rule is None:
            self.uncounted[op_name(func)] += 1
            flops = 0
        else:
            flops = int(rule(args, kwargs, out))
        moved = traffic(func, args, kwargs, out)
        self.flops += flops
        self.bytes += moved
        name = op_name(func)
        self.by_op[name] += flops
        self.bytes_by_op[name] += moved
        module = self.where[-1] if self.where else ""
        self.by_module[module] += flops
        self.bytes_by_module[module] += moved
        if self.scope.active:
            self.attention_flops += flops
            self.attention_bytes += moved
        return out


def count_full(
    model: nn.Module, shape: Sequence[int], attention: Iterable[str] | None = None,
    breakdown: bool = False,
) -> ConventionCount:
    """Count ``model`` on an input of ``shape`` under the ``full`` convention (see
    :func:`attnprof.counting.count`); cheap on the meta device, it works on real tensors too."""
    names = attention_paths(model, attention)
    scope = AttentionScope()
    where: list[str] = []
    mode = FlopByteMode(scope, where)
    x = input_like(model, shape)
    with scope.watching(model, names), module_stack(model, where), torch.no_grad(), mode:
        model(x)
    return ConventionCount(
        convention=SPEC.name,
        unit=SPEC.unit,
        value=mode.flops,
        attention=mode.attention_flops,
        uncounted=dict(sorted(mode.uncounted.items())),
        description=SPEC.description,
        bytes=mode.bytes,
        attention_bytes=mode.attention_bytes,
        breakdown=make_breakdown(mode.by_module, mode.by_op, model, names, mode.bytes_by_module,
                                 mode.bytes_by_op) if breakdown else None,
    )
