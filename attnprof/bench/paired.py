"""One pytest-benchmark benchmark of a module, paired round by round with a reference block.

Caveat first: what ``attnprof compare`` judges is the per-round ratio module / reference, never
the module's time alone, which says as much about the runner as about the code. The ratio is
only steady from run to run because of the details kept here:

- both halves of a round take about as long (the shorter side is repeated, a power of two
  times, so that the count is the same in every run of the same code): a preemption or a clock
  change then has the same chance to hit either half and cancels in the ratio;
- each timed half starts warm, after one untimed call of the same module: otherwise the first
  call after the other half pays for the other half's data in the caches, and the per-call time
  depends on how many calls share that cold start;
- inference mode and a fixed intra-op thread count (1 by default: the steadiest choice on a
  shared runner);
- glibc's malloc thresholds fixed before the first timed round
  (:func:`~attnprof.latency.allocator.steady_allocator`), so that whether a feature map costs
  page faults does not depend on the allocator's history.

Each round times the module with pytest-benchmark's own timer (``iterations`` calls), then the
reference with ours in the round's teardown; the reference's per-call times go to
``extra_info["reference_s"]``, one per round, which is what compare pairs with ``stats.data``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attnprof.latency.allocator import steady_allocator

MIN_SIDE_S = 0.002
"""Each half of a round lasts at least this long (the shorter side is repeated to match)."""
MAX_DOUBLINGS = 8
"""At most 2**8 = 256 calls per half round."""


def per_call_s(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, calls: int) -> float:
    """Seconds per call of ``calls`` back-to-back calls of ``fn(x)``."""
    start = time.perf_counter()
    for _ in range(calls):
        fn(x)
    return (time.perf_counter() - start) / calls


def power_of_two(ratio: float) -> int:
    """The power of two nearest ``ratio`` (at least 1, at most ``2 ** MAX_DOUBLINGS``)."""
    return 2 ** min(MAX_DOUBLINGS, max(0, round(math.log2(max(ratio, 1.0)))))


def balanced_calls(module: nn.Module, reference: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """Calls per round for each side, powers of two, so that both halves take about
    max(their time, ``MIN_SIDE_S``)."""
    for _ in range(3):
        module(x)
        reference(x)
    t_module = statistics.median(per_call_s(module, x, 1) for _ in range(7))
    t_reference = statistics.median(per_call_s(reference, x, 1) for _ in range(7))
    side = max(t_module, t_reference, MIN_SIDE_S)
    return power_of_two(side / t_module), power_of_two(side / t_reference)


def paired_benchmark(benchmark, module: nn.Module, reference: nn.Module, x: torch.Tensor, *,
                     rounds: int, warmup_rounds: int) -> torch.Tensor:
    """Benchmark ``module(x)`` with pytest-benchmark's ``benchmark`` fixture, timing
    ``reference`` in the same rounds; record its times in ``extra_info``. Call it in inference
    mode. Under ``--benchmark-disable`` the module runs once and nothing is timed."""
    if benchmark.disabled:
        return benchmark(module, x)
    allocator = steady_allocator()
    if allocator:
        benchmark.extra_info["allocator"] = allocator
    module_calls, reference_calls = balanced_calls(module, reference, x)
    reference_s: list[float] = []

    def time_reference(*_args) -> None:
        reference(x)  # warm: untimed
        reference_s.append(per_call_s(reference, x, reference_calls))
        module(x)  # warm the module for the next round's timed calls

    out = benchmark.pedantic(module, args=(x,), rounds=rounds, iterations=module_calls,
                             warmup_rounds=warmup_rounds, teardown=time_reference)
    # pytest-benchmark calls the teardown after every warm-up round, every round and, when
    # iterations > 1, once more: keep the measured rounds, in order.
    benchmark.extra_info["reference_s"] = reference_s[warmup_rounds:warmup_rounds + rounds]
    benchmark.extra_info["calls_per_round"] = [module_calls, reference_calls]
    return out
