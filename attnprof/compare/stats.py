"""The statistics behind ``attnprof compare``: how big a change is, and whether it is real.

Caveat first: no test can tell a slower *machine* from slower *code* when the two runs were
measured on different machines or at different times. That is why the samples judged here are
ratios: each round times the module and its reference (the plain backbone, or the block the
module sits in) back to back, so a machine-wide slowdown in that round scales both and cancels.
What is left to judge is a small, well-behaved distribution of per-round ratios.

A slowdown is flagged only when all of these hold (asv's rule, made robust to run-level drift):

1. **Size.** ``change = median(new) / median(base) - 1`` is larger than the threshold. The
   median ignores the odd preempted round.
2. **Significance.** A one-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu(new, base,
   alternative="greater")``) rejects "new is not stochastically larger than base" at ``alpha``.
   It is rank-based, so it assumes nothing about the shape of the noise and an outlier counts
   as one rank, whatever its size.
3. **Significantly beyond the threshold.** The same test against ``base * (1 + threshold)``
   rejects too. Rounds of one run share that run's conditions (what else the machine was
   doing, its clock, its caches), so two runs of the same code differ by a few percent however
   many rounds they have, and condition 2 alone calls a 12% drift significant. Condition 3
   treats the threshold as the allowance for that drift and asks whether the data show more.

A large change on too few rounds is never flagged: with ``n`` and ``m`` rounds the smallest
one-sided p-value the test can produce is ``1 / C(n + m, n)`` (every new round above every base
round), so with 3 rounds each p can never go below 1/20 = 0.05. :func:`smallest_pvalue` makes
that explicit instead of leaving it to chance (asv skips the test in the same situation).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from scipy.stats import mannwhitneyu

from attnprof.errors import AttnprofError

DEFAULT_THRESHOLD = 0.10
"""Relative slowdown below which a change is never flagged (10%)."""

DEFAULT_ALPHA = 0.05
"""Significance level of the one-sided Mann-Whitney U test."""


class Verdict(StrEnum):
    """What the comparison of one quantity concluded. ``REGRESSION`` and ``CHANGED`` fail a run."""

    REGRESSION = "regression"  # slower by more than the threshold and significant; a failed cell
    CHANGED = "changed"  # an exact count differs (either way)
    IMPROVEMENT = "improvement"  # faster by more than the threshold and significant
    UNCHANGED = "unchanged"  # within the threshold (counts: identical)
    NOT_SIGNIFICANT = "not significant"  # beyond the threshold, but indistinguishable from noise
    UNTESTABLE = "untestable"  # no samples to test, or too few for the test to ever reject
    INFO = "info"  # shown for context, never judged (a reference's own absolute time)
    UNPAIRED = "slower, unpaired"  # a regression by the rule, on absolute times: warns only

    @property
    def flagged(self) -> bool:
        """Whether this verdict fails the comparison (exit code 1)."""
        return self in (Verdict.REGRESSION, Verdict.CHANGED)


@dataclass(frozen=True)
class RankTest:
    """A one-sided Mann-Whitney U test of ``new`` against ``base``.

    ``statistic`` is U for ``new``: the number of (new, base) pairs with new > base, ties counted
    one half; it runs from 0 (every new below every base) to ``n_new * n_base``.
    """

    statistic: float
    pvalue: float
    alternative: str
    n_base: int
    n_new: int

    @property
    def min_pvalue(self) -> float:
        """The smallest p-value the exact test can give at these sample sizes."""
        return smallest_pvalue(self.n_base, self.n_new)

    def can_reject(self, alpha: float) -> bool:
        """Whether these sample sizes could ever reach ``p < alpha``."""
        return self.min_pvalue < alpha


@dataclass(frozen=True)
class ShiftJudgement:
    """The verdict on one pair of sample sets, with the numbers that led to it."""

    verdict: Verdict
    change: float | None
    """``median(new) / median(base) - 1``; ``None`` when it cannot be computed."""
    pvalue: float | None
    """One-sided p-value in the direction of the change (``greater`` for a slowdown)."""
    pvalue_margin: float | None
    """The same test against ``base`` scaled by ``1 + threshold``: is the change significantly
    larger than the threshold?"""
    base_median: float | None
    new_median: float | None
    n_base: int
    n_new: int
    reason: str


def median(values: Sequence[float]) -> float:
    """The sample median (the mean of the two middle values for an even count)."""
    values = [float(v) for v in values]
    if not values:
        raise AttnprofError("median of an empty sample is undefined")
    return statistics.median(values)


def relative_change(base: Sequence[float], new: Sequence[float]) -> float:
    """``median(new) / median(base) - 1``: +0.10 is 10% slower, -0.10 is 10% faster."""
    base_median = median(base)
    if base_median <= 0 or not math.isfinite(base_median):
        raise AttnprofError(
            f"the base median must be a positive finite number to form a ratio, got {base_median!r}"
        )
    return median(new) / base_median - 1.0


def smallest_pvalue(n_base: int, n_new: int) -> float:
    """``1 / C(n_base + n_new, n_new)``: the one-sided p of the most extreme ordering.

    Exact for samples without ties. scipy's normal approximation (used with ties, or beyond 8
    rounds a side) can report less on tiny samples, so this exact bound, not the reported p,
    decides whether a test is worth running (asv applies the same rule).
    """
    if n_base < 1 or n_new < 1:
        return 1.0
    return 1.0 / math.comb(n_base + n_new, n_new)


def rank_test(
    base: Sequence[float], new: Sequence[float], alternative: str = "greater"
) -> RankTest:
    """One-sided Mann-Whitney U test: is ``new`` stochastically larger (``greater``) or smaller
    (``less``) than ``base``?

    Uses ``scipy.stats.mannwhitneyu(new, base, alternative=...)`` with its default method
    (exact for small samples without ties, otherwise the normal approximation with continuity
    and tie corrections). A degenerate case scipy answers with NaN (no variance at all) is
    reported as p = 1: nothing distinguishes the samples.
    """
    if alternative not in ("greater", "less"):
        raise AttnprofError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    base = [float(v) for v in base]
    new = [float(v) for v in new]
    if not base or not new:
        raise AttnprofError(
            f"the rank test needs samples on both sides, got {len(base)} base and {len(new)} new"
        )
    result = mannwhitneyu(new, base, alternative=alternative)
    pvalue = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
    return RankTest(float(result.statistic), pvalue, alternative, len(base), len(new))


def judge_shift(
    base: Sequence[float],
    new: Sequence[float],
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
) -> ShiftJudgement:
    """Judge whether ``new`` is slower than ``base`` by more than ``threshold``, significantly.

    ``base`` and ``new`` are per-round samples where larger is worse (times, or ratios of a
    time to a reference time). A slowdown is flagged iff the three conditions of the module
    docstring hold: ``change`` above ``threshold``, ``pvalue`` (new against base) below
    ``alpha``, and ``pvalue_margin`` (new against ``base * (1 + threshold)``) below ``alpha``.
    Speed-ups are judged symmetrically in ratio terms (``median(new) / median(base) <
    1 / (1 + threshold)``, tested with ``alternative="less"``) and reported, never flagged.
    """
    validate_threshold(threshold)
    validate_alpha(alpha)
    base = [float(v) for v in base]
    new = [float(v) for v in new]
    bad = [v for v in (*base, *new) if not math.isfinite(v) or v < 0]
    if bad:
        raise AttnprofError(
            f"samples must be finite and non-negative, got {bad[0]!r}; "
            "a time or a ratio of times cannot be negative"
        )
    n_base, n_new = len(base), len(new)
    if not base or not new:
        return ShiftJudgement(
            Verdict.UNTESTABLE, None, None, None, median(base) if base else None,
            median(new) if new else None, n_base, n_new,
            f"no samples to compare ({n_base} base, {n_new} new)",
        )
    base_median, new_median = median(base), median(new)
    if base_median <= 0:
        return ShiftJudgement(
            Verdict.UNTESTABLE, None, None, None, base_median, new_median, n_base, n_new,
            "the base median is 0: no ratio can be formed",
        )
    change = new_median / base_median - 1.0
    slower = change > threshold
    faster = (1.0 + change) < 1.0 / (1.0 + threshold)
    factor = 1.0 + threshold
    if change < 0:
        test = rank_test(base, new, "less")
        margin = rank_test(base, [v * factor for v in new], "less")
    else:
        test = rank_test(base, new, "greater")
        margin = rank_test([v * factor for v in base], new, "greater")

    def judged(verdict: Verdict, reason: str) -> ShiftJudgement:
        return ShiftJudgement(verdict, change, test.pvalue, margin.pvalue, base_median,
                              new_median, n_base, n_new, reason)

    if not (slower or faster):
        return judged(Verdict.UNCHANGED, f"within the {threshold:.0%} threshold")
    amount = f"{'slower' if slower else 'faster'} by {abs(change):.1%}"
    if not test.can_reject(alpha):
        return judged(
            Verdict.UNTESTABLE,
            f"{amount} but {n_base}+{n_new} rounds can never reach p < {alpha:g} (smallest "
            f"possible p {test.min_pvalue:.3g}); measure more rounds",
        )
    if test.pvalue >= alpha:
        return judged(
            Verdict.NOT_SIGNIFICANT,
            f"{amount} but p = {test.pvalue:.2g} >= {alpha:g}: within the noise",
        )
    if margin.pvalue >= alpha:
        return judged(
            Verdict.NOT_SIGNIFICANT,
            f"{amount} (p = {test.pvalue:.2g}) but not significantly beyond the "
            f"{threshold:.0%} threshold (p = {margin.pvalue:.2g}): within run-to-run drift",
        )
    if slower:
        return judged(
            Verdict.REGRESSION,
            f"{amount} > {threshold:.0%}, p = {test.pvalue:.2g}, beyond the threshold "
            f"p = {margin.pvalue:.2g}",
        )
    return judged(
        Verdict.IMPROVEMENT,
        f"{amount}, p = {test.pvalue:.2g}, beyond the threshold p = {margin.pvalue:.2g}",
    )


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_threshold(threshold: float) -> float:
    if not _finite(threshold) or threshold <= 0:
        raise AttnprofError(
            f"threshold must be a positive fraction (0.1 means 10%), got {threshold!r}"
        )
    return float(threshold)


def validate_alpha(alpha: float) -> float:
    if not _finite(alpha) or not 0 < alpha < 1:
        raise AttnprofError(f"alpha must be a probability strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def parse_threshold(text: str) -> float:
    """``"10%"`` -> 0.10, ``"0.1"`` -> 0.10. A bare number above 1 is refused as ambiguous."""
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        raise AttnprofError(
            f"threshold {text!r} is not a number: write a percentage such as '10%' or a "
            "fraction such as '0.1'"
        ) from None
    if percent:
        value /= 100.0
    elif value > 1:
        raise AttnprofError(
            f"threshold {text!r} is ambiguous: write a percentage ('{raw}%') or a "
            "fraction ('0.1' for 10%)"
        )
    return validate_threshold(value)
