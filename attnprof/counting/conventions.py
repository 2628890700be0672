"""The counting conventions, declared once: name, unit, what each counts, and its counter.

Caveat first: a count is meaningless without its convention, and the conventions disagree on
purpose (the published tables' ``paper`` counter calls a sigmoid free; ``full`` does not). Every
place that lists, describes or validates conventions (the counters, suite files, reports,
``attnprof list``) reads this table, so the description a results file stores and the one a
report prints never drift apart.

This module imports nothing heavy: the counters are named by import path and loaded only when
a count is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

UNITS = ("MAC", "FLOP")
"""A MAC is one multiply-accumulate; a FLOP one arithmetic operation (a MAC is two FLOPs)."""


@dataclass(frozen=True)
class Convention:
    """One counting convention.

    ``description`` is stored with every count (precise, for the results file); ``summary`` is
    the sentence reports and ``attnprof list`` show. ``needs_real_tensors``: the counter cannot
    run on a meta-device model (fvcore traces real tensors, so it is slow). ``counter`` is the
    import path ``module:function`` of ``function(model, shape, attention) -> ConventionCount``.
    """

    name: str
    unit: str
    description: str
    summary: str
    needs_real_tensors: bool
    counter_path: str

    @property
    def counter(self) -> Callable:
        module, function = self.counter_path.split(":")
        return getattr(importlib.import_module(module), function)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "paper",
            "MAC",
            "classic per-module MAC counter of the published tables: Conv2d, Linear (no bias), "
            "BatchNorm2d, ReLU-family, pooling and Upsample modules only; everything else 0",
            "the classic per-module MAC counter of the SGE and SA-Net tables: conv, linear, BN, "
            "ReLU, pooling; sigmoid, softmax, element-wise products and sums count 0",
            False,
            "attnprof.counting.paper:count_paper",
        ),
        Convention(
            "fvcore",
            "MAC",
            "fvcore.nn.FlopCountAnalysis as it is: jit trace on real tensors, 1 per fused "
            "multiply-add for conv, matmul, norms, adaptive avg pooling; unsupported ops 0",
            "fvcore's FlopCountAnalysis: one per fused multiply-add; ops it does not support "
            "(sigmoid, element-wise mul, mean, ...) count 0 and are listed below",
            True,
            "attnprof.counting.fvcore_count:count_fvcore",
        ),
        Convention(
            "thop",
            "MAC",
            "thop.profile as it is: leaf modules by type, MACs; ReLU and max pooling 0, "
            "functional calls and modules without a thop rule 0; its own parameter count in "
            "reported_params",
            "thop's module hooks, in MACs; a parameter a module owns directly (SGE's, SA's) is "
            "skipped, so thop's own parameter count is low for them",
            False,
            "attnprof.counting.thop_count:count_thop",
        ),
        Convention(
            "full",
            "FLOP",
            "every aten op on meta tensors, in FLOPs (2 per multiply-add; pointwise, reductions, "
            "pooling, normalisation and activations by attnprof's documented rule table), with "
            "the bytes each op reads and writes (eager, unfused)",
            "every aten op, 2 FLOPs per multiply-add, element-wise work included, plus the bytes "
            "each op reads and writes (the memory traffic that latency follows)",
            False,
            "attnprof.counting.full:count_full",
        ),
    )
}
DEFAULT_CONVENTIONS: tuple[str, ...] = tuple(CONVENTIONS)
