"""The ``full`` count of one forward, per operator call and per attention module.

Caveat first: this is the ``full`` convention's counter (:class:`attnprof.counting.full.
FlopByteMode`, the same rules and the same dispatch level as every stored ``full`` count),
run on the model being profiled, on its real input, under ``no_grad`` as counting always runs;
only the bookkeeping is finer: each call is kept under its attention module and operator, so
that the profiled operators can stand beside their FLOPs and bytes. An operator the convention
has no rule for is kept with ``flops = None`` (the count lists it under ``uncounted``). The
FLOPs equal a suite's stored ``full`` count (made on the meta device); the stored bytes can be
a few kB more where batch norms run: on the meta device ``native_batch_norm`` also returns the
per-channel statistics that the CPU kernel leaves empty in eval mode.

Which module a call belongs to is what :func:`attnprof.counting.breakdown.attention_owner`
says of the innermost module running, among the attention modules that
:func:`attnprof.counting.tracing.attention_paths` finds: the same attribution every count's
``attention`` share uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.attribution.records import BACKBONE
from attnprof.counting.breakdown import attention_owner
from attnprof.counting.engine import watching
from attnprof.counting.full import FlopByteMode
from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.rules import op_name


@dataclass
class Counted:
    """The ``full`` count of one operator in one scope: calls, FLOPs (``None`` when some call
    had no rule), bytes."""

    calls: int = 0
    flops: int | None = 0
    bytes: int = 0


class _PerCall(FlopByteMode):
    """The ``full`` counter, also keeping each call's FLOPs and bytes by (scope, operator)."""

    def __init__(self, attention: Sequence[str]):
        super().__init__()
        self.attention = list(attention)
        self.counted: dict[tuple[str, str], Counted] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        flops, moved = self.value, self.bytes
        out = super().__torch_dispatch__(func, types, args, kwargs)
        module = self.where[-1] if self.where else ""
        scope = attention_owner(module, self.attention) or BACKBONE
        entry = self.counted.setdefault((scope, op_name(func)), Counted())
        entry.calls += 1
        entry.bytes += self.bytes - moved
        if self.rules.for_op(func) is None:
            entry.flops = None
        elif entry.flops is not None:
            entry.flops += self.value - flops
        return out


def count_calls(model: nn.Module, x: torch.Tensor,
                attention: Sequence[str]) -> dict[tuple[str, str], Counted]:
    """``(scope, operator) -> Counted`` for one forward of ``model`` on ``x``."""
    counter = _PerCall(attention)
    with dynamo_stand_in(), watching(counter, model, attention), torch.no_grad(), counter:
        model(x)
    return counter.counted
