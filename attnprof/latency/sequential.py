"""Intervals for a median that stay valid when the run stops as soon as they answer.

Caveats first: the guarantee is for the median of the *process medians* (what a new fresh
process gives), under the assumption that processes are independent draws of one continuous
distribution; a machine whose state changes for good mid-run breaks it as it breaks every
interval. The coverage is per comparison, not joint over the variants of a suite.

Why not the plain interval: an order-statistic 95% interval recomputed after every new process,
with the run stopped the first time it excludes the threshold, covers far less than 95%: each
look is another chance to be wrong, and stopping keeps the wrong answer. So the intervals here
are a *repeated* order-statistic interval whose coverage holds at every look at once, a
Pocock-type boundary for the sign statistic (Pocock, Biometrika 1977; the same construction as
a confidence sequence, Howard & Ramdas, Bernoulli 2022, restricted to a fixed maximum):

- With ``m`` the true median and ``S_n`` the number of the first ``n`` process medians at or
  below it, the interval ``[x(k_n), x(n + 1 - k_n)]`` of the ``n`` sorted medians misses ``m``
  exactly when ``S_n <= k_n - 1`` or ``S_n >= n + 1 - k_n``. Whatever the distribution, ``S_n``
  is a simple random walk with steps Bernoulli(1/2), so the probability that *any* look from
  the first to ``max_processes`` misses is computed exactly by dynamic programming over ``S_n``.
- Every look uses the ranks of the same nominal per-look level ``a``, the largest for which that
  probability stays at or below ``1 - level`` (found by bisection; the ranks are integers, so the
  achieved simultaneous coverage, recorded, is usually a little above ``level``).
- Any stopping rule that decides from the data seen so far, and stops by ``max_processes``,
  keeps that coverage: the rule here stops a comparison when its interval is narrow enough or
  the budget is spent (:mod:`attnprof.latency.replicate`).

The price of looking after every process, for 95% and at most 40 processes: the first
interval needs 8 processes (6 without looks), and at 16 processes the interval runs from the
3rd to the 14th median instead of the 4th to the 13th.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from attnprof.errors import AttnprofError
from attnprof.latency.stats import CI_LEVEL, MedianCI

DEFAULT_MAX_PROCESSES = 40
"""The most fresh processes one comparison may take (the design's horizon)."""
_BISECTIONS = 60


@dataclass(frozen=True)
class SequentialDesign:
    """Per-look ranks of a repeated order-statistic interval for a median.

    ``ranks[n]`` is the 1-based lower rank ``k_n`` of the interval after ``n`` processes (the
    upper rank is ``n + 1 - k_n``), ``0`` where no interval exists yet. ``nominal`` is the
    per-look level of those ranks; ``coverage`` the exact probability that every look's interval
    holds the median (at least ``level``).
    """

    level: float
    max_processes: int
    ranks: tuple[int, ...]
    nominal: float
    coverage: float

    @property
    def first(self) -> int:
        """The fewest processes that give an interval."""
        return next(n for n, k in enumerate(self.ranks) if k > 0)

    def interval(self, values: Sequence[float]) -> MedianCI | None:
        """The interval after ``len(values)`` processes (``None`` before :attr:`first`)."""
        n = len(values)
        if n > self.max_processes:
            raise AttnprofError(
                f"{n} processes exceed this design's maximum of {self.max_processes}; the "
                "interval's coverage is only known up to that many"
            )
        k = self.ranks[n]
        if k == 0:
            return None
        ordered = sorted(values)
        return MedianCI(ordered[k - 1], ordered[n - k], k, n + 1 - k, self.coverage, n)


def _tail_table(n: int) -> list[float]:
    """``P(S <= j)`` for ``S ~ Binomial(n, 1/2)``, ``j = 0 .. n``, summed exactly."""
    total, term, running, table = 1 << n, 1, 0, []
    for j in range(n + 1):
        running += term
        table.append(running / total)
        term = term * (n - j) // (j + 1)
    return table


def _ranks_at(nominal: float, max_processes: int) -> tuple[int, ...]:
    """``k_n`` for every ``n``: the largest rank whose two-sided tail is within ``nominal``."""
    ranks = [0]
    for n in range(1, max_processes + 1):
        table, k = _tail_table(n), 0
        while k < n // 2 and table[k] <= nominal / 2.0 * (1.0 + 1e-12):
            k += 1
        ranks.append(k)
    return tuple(ranks)


def miss_probability(ranks: Sequence[int]) -> float:
    """The exact probability that some look's interval misses the median (any distribution)."""
    alive = [1.0]  # alive[s]: paths not yet missed with S_n == s
    for n in range(1, len(ranks)):
        step = [0.0] * (n + 1)
        for s, p in enumerate(alive):
            step[s] += p / 2.0
            step[s + 1] += p / 2.0
        k = ranks[n]
        if k > 0:
            step = [p if k - 1 < s < n + 1 - k else 0.0 for s, p in enumerate(step)]
        alive = step
    return 1.0 - sum(alive)


@functools.lru_cache(maxsize=16)
def sequential_design(level: float = CI_LEVEL,
                      max_processes: int = DEFAULT_MAX_PROCESSES) -> SequentialDesign:
    """The design for ``level`` over at most ``max_processes`` looks (one after each process)."""
    if not 0.0 < level < 1.0:
        raise AttnprofError(f"confidence level must be strictly between 0 and 1, got {level!r}")
    if not isinstance(max_processes, int) or isinstance(max_processes, bool):
        raise AttnprofError(f"max_processes must be an integer, got {max_processes!r}")
    alpha = 1.0 - level
    low, high = 0.0, alpha
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2.0
        if miss_probability(_ranks_at(middle, max_processes)) <= alpha:
            low = middle
        else:
            high = middle
    ranks = _ranks_at(low, max_processes)
    if not any(ranks):
        raise AttnprofError(
            f"max_processes={max_processes} is too few for a {level:.0%} interval with a look "
            f"after every process; allow at least {minimum_max_processes(level)}"
        )
    return SequentialDesign(level, max_processes, ranks, low, 1.0 - miss_probability(ranks))


def minimum_max_processes(level: float = CI_LEVEL) -> int:
    """The smallest horizon for which a sequential design at ``level`` has an interval."""
    n = 1
    while not any(_ranks_at(1.0 - level, n)) or miss_probability(_ranks_at(1.0 - level, n)) > (
            1.0 - level):
        n += 1
    return n
