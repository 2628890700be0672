"""Robust summaries of timing samples: median, IQR, and distribution-free intervals.

Caveats first: latency samples are skewed (a slow tail from preemption, page faults, frequency
changes) and not independent (the machine drifts). The median is robust to the tail; the
interval below assumes only that the samples are independent draws from one continuous
distribution, not that the distribution is normal. Drift breaks that assumption, which is why
comparisons between models are paired by round (see :mod:`attnprof.latency.paired`).

- Quantiles interpolate linearly between order statistics (Hyndman & Fan type 7, numpy's
  default), so ``median`` and ``iqr`` agree with ``numpy.percentile``.
- The confidence interval of the median is the classic order-statistic interval: with ``n``
  sorted samples ``x(1) <= ... <= x(n)``, the count of samples below the true median is
  Binomial(n, 1/2), so ``[x(k), x(n-k+1)]`` covers the median with probability
  ``1 - 2 * P(B <= k-1)``. We take the largest ``k`` whose coverage is still at least the
  requested level; the achieved coverage (at least the level, usually a little more) is
  reported alongside. No 95% interval exists below 6 samples (``1 - 2 / 2**5 < 0.95``).
- The interval for a median of ratios applies the same construction to the per-round ratios.
- Rounds of one process share its conditions (memory layout, allocator state, thread
  placement), so they are not independent draws of what a new run gives. Across several fresh
  processes (:func:`replicated_median`) the unit is the process: the same interval is taken
  over the per-process medians, and a Kruskal-Wallis test says whether the processes differ
  beyond their rounds' noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attnprof.errors import AttnprofError

if TYPE_CHECKING:
    from attnprof.latency.sequential import SequentialDesign

CI_LEVEL = 0.95
EXACT_BINOMIAL_MAX_N = 10_000
"""Up to this many samples the binomial tail is summed exactly in integers; above, scipy."""


@dataclass(frozen=True)
class MedianCI:
    """A distribution-free interval ``[lo, hi]`` for a median, from order statistics."""

    lo: float
    hi: float
    lo_rank: int
    """1-based rank of the lower bound among the sorted samples."""
    hi_rank: int
    coverage: float
    """The interval's exact coverage under the assumptions (at least the requested level)."""
    n: int


def _checked(samples: Sequence[float], what: str) -> list[float]:
    values = [float(v) for v in samples]
    if not values:
        raise AttnprofError(f"{what} needs at least one sample, got none")
    if any(math.isnan(v) for v in values):
        raise AttnprofError(f"{what}: samples contain NaN")
    return values


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 <= q <= 1), interpolating linearly between order statistics."""
    if not 0.0 <= q <= 1.0:
        raise AttnprofError(f"quantile q must be within [0, 1], got {q!r}")
    values = sorted(_checked(samples, "quantile"))
    position = (len(values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    fraction = position - low
    return values[low] + (values[high] - values[low]) * fraction


def median(samples: Sequence[float]) -> float:
    """The sample median (the mean of the two middle values for an even count)."""
    return quantile(samples, 0.5)


def iqr(samples: Sequence[float]) -> float:
    """The interquartile range, ``quantile(0.75) - quantile(0.25)``."""
    return quantile(samples, 0.75) - quantile(samples, 0.25)


def _binomial_half_cdf_table(n: int) -> list[float]:
    """``P(B <= j)`` for ``B ~ Binomial(n, 1/2)``, ``j = 0 .. n // 2``."""
    if n <= EXACT_BINOMIAL_MAX_N:
        total = 1 << n
        term = 1  # C(n, 0)
        running = 0
        table = []
        for j in range(n // 2 + 1):
            running += term
            table.append(running / total)
            term = term * (n - j) // (j + 1)
        return table
    from scipy.stats import binom

    return [float(v) for v in binom.cdf(range(n // 2 + 1), n, 0.5)]


def min_samples_for_ci(level: float = CI_LEVEL) -> int:
    """The fewest samples for which an order-statistic interval reaches ``level``."""
    n = 1
    while 1.0 - 2.0 * 0.5**n < level:
        n += 1
    return n


def median_ci_ranks(n: int, level: float = CI_LEVEL) -> tuple[int, int, float]:
    """1-based ranks ``(k, n - k + 1)`` of the interval for ``n`` samples and its coverage."""
    if not 0.0 < level < 1.0:
        raise AttnprofError(f"confidence level must be strictly between 0 and 1, got {level!r}")
    if not isinstance(n, int) or n < 1:
        raise AttnprofError(f"the number of samples must be a positive integer, got {n!r}")
    needed = min_samples_for_ci(level)
    if n < needed:
        raise AttnprofError(
            f"a {level:.0%} distribution-free interval of the median needs at least {needed} "
            f"samples, got {n}; collect more samples (or rounds)"
        )
    tail = (1.0 - level) / 2.0
    table = _binomial_half_cdf_table(n)
    # table[k - 1] = P(B <= k - 1); find the largest k with that tail still <= (1 - level) / 2.
    # A relative tolerance keeps an exact tie (tail == alpha / 2) on the accepted side.
    k = 1
    while k < len(table) and table[k] <= tail * (1.0 + 1e-12):
        k += 1
    coverage = 1.0 - 2.0 * table[k - 1]
    return k, n - k + 1, coverage


def median_ci(samples: Sequence[float], level: float = CI_LEVEL) -> MedianCI:
    """The order-statistic confidence interval of the median of ``samples``."""
    values = sorted(_checked(samples, "median_ci"))
    lo_rank, hi_rank, coverage = median_ci_ranks(len(values), level)
    return MedianCI(values[lo_rank - 1], values[hi_rank - 1], lo_rank, hi_rank, coverage,
                    len(values))


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Element-wise ``numerator / denominator`` of two paired sample lists."""
    top = _checked(numerators, "ratios")
    bottom = _checked(denominators, "ratios")
    if len(top) != len(bottom):
        raise AttnprofError(
            f"paired samples must have equal lengths, got {len(top)} and {len(bottom)}"
        )
    if any(v <= 0 for v in bottom):
        raise AttnprofError("ratios: denominators must be positive")
    return [a / b for a, b in zip(top, bottom, strict=True)]


DISAGREEMENT_ALPHA = 0.01
"""Kruskal-Wallis p-value below which the processes of one comparison are said to disagree."""


def disagree(pvalue: float | None) -> bool:
    """Whether a Kruskal-Wallis p-value across processes says they disagree (``None`` or NaN:
    not tested, so no)."""
    return pvalue is not None and pvalue < DISAGREEMENT_ALPHA


@dataclass(frozen=True)
class ReplicatedMedian:
    """A median and its interval, over the unit that replicates: fresh processes, or rounds.

    With several processes, ``median`` is the median of the per-process medians and ``ci`` the
    order-statistic interval of those medians: it covers the median a *new* process would give,
    so it carries the between-process variation (memory layout, allocator state, which core the
    threads land on, what the machine was doing then) that a single process never shows. ``ci``
    is ``None`` when too few processes finished for the level (fewer than 6 for a fixed count
    at 95%; a sequential design's first look comes later, 6 to 8 processes by its horizon,
    :mod:`attnprof.latency.sequential`). With one
    process the rounds are the unit, and the interval describes that process only.
    ``disagreement_p`` is a Kruskal-Wallis test of "every process has the same distribution of
    rounds"; below :data:`DISAGREEMENT_ALPHA` the processes differ beyond their own noise.
    """

    median: float
    ci: MedianCI | None
    over: str
    """``"processes"`` or ``"rounds"``: what the interval is taken over."""
    group_medians: tuple[float, ...]
    rounds_per_group: tuple[int, ...]
    disagreement_p: float | None

    @property
    def disagree(self) -> bool:
        return disagree(self.disagreement_p)


def kruskal_pvalue(groups: Sequence[Sequence[float]]) -> float:
    """Kruskal-Wallis p-value that all ``groups`` come from one distribution (1.0 if all tie)."""
    if len({v for group in groups for v in group}) <= 1:
        return 1.0  # every value identical: nothing tells the groups apart
    from scipy.stats import kruskal

    return float(kruskal(*[list(g) for g in groups]).pvalue)


def replicated_median(groups: Sequence[Sequence[float]], level: float = CI_LEVEL, *,
                      across_processes: bool | None = None,
                      design: SequentialDesign | None = None) -> ReplicatedMedian:
    """The median of ``groups`` (one list of round values per process) and its interval.

    Across processes (the default with several groups): the median of the group medians, the
    interval over those medians (``None`` below the fewest samples for ``level``, even when
    only one of several requested processes finished), and the Kruskal-Wallis p-value. With a
    sequential ``design`` the interval is that design's at this many processes (it keeps its
    coverage however the number of processes was decided; :mod:`.sequential`). Within one
    process: the plain median of its rounds with their order-statistic interval.
    """
    kept = [_checked(group, "replicated_median") for group in groups]
    if not kept:
        raise AttnprofError("replicated_median needs at least one group of samples")
    sizes = tuple(len(group) for group in kept)
    if across_processes is None:
        across_processes = len(kept) > 1
    if not across_processes:
        if len(kept) > 1:
            raise AttnprofError("rounds of several processes cannot be pooled as one process")
        values = kept[0]
        ci = median_ci(values, level) if len(values) >= min_samples_for_ci(level) else None
        return ReplicatedMedian(median(values), ci, "rounds", (median(values),), sizes, None)
    medians = [median(group) for group in kept]
    if design is not None:
        ci = design.interval(medians)
    else:
        ci = median_ci(medians, level) if len(medians) >= min_samples_for_ci(level) else None
    return ReplicatedMedian(median(medians), ci, "processes", tuple(medians), sizes,
                            kruskal_pvalue(kept) if len(kept) > 1 else None)


def replicated_ratio(numerators: Sequence[Sequence[float]],
                     denominators: Sequence[Sequence[float]], level: float = CI_LEVEL, *,
                     across_processes: bool | None = None,
                     design: SequentialDesign | None = None,
                     ) -> tuple[ReplicatedMedian, list[list[float]]]:
    """Per-process paired ratios and their :func:`replicated_median`."""
    if len(numerators) != len(denominators):
        raise AttnprofError(
            f"paired samples need the same processes, got {len(numerators)} and "
            f"{len(denominators)}"
        )
    groups = [ratios(top, bottom) for top, bottom in zip(numerators, denominators, strict=True)]
    return replicated_median(groups, level, across_processes=across_processes,
                             design=design), groups
