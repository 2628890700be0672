"""Known-answer tests of the latency statistics (no timing involved)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.stats import binom

from attnprof.errors import AttnprofError
from attnprof.latency import stats


def test_median_and_quantiles_known_values():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median(range(1, 11)) == 5.5  # (5 + 6) / 2
    # Type 7 quantiles of 1..9: q25 at position (9-1)*0.25 = 2 -> 3; q75 at position 6 -> 7.
    assert stats.quantile(range(1, 10), 0.25) == 3.0
    assert stats.quantile(range(1, 10), 0.75) == 7.0
    assert stats.iqr(range(1, 10)) == 4.0
    # 1..10: q25 at position 2.25 -> 3.25; q75 at 6.75 -> 7.75; IQR 4.5.
    assert stats.iqr(range(1, 11)) == pytest.approx(4.5)
    assert stats.iqr([5.0] * 7) == 0.0


def test_quantiles_agree_with_numpy():
    rng = random.Random(3)
    values = [rng.lognormvariate(0, 0.5) for _ in range(37)]
    for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        assert stats.quantile(values, q) == pytest.approx(float(np.percentile(values, 100 * q)))


@pytest.mark.parametrize(
    ("n", "ranks", "tail_count"),
    [
        # P(B <= 1) = (1 + 10) / 2**10 = 0.0107 <= 0.025 < P(B <= 2) = 56 / 1024 -> k = 2.
        (10, (2, 9), 11),
        # sum C(20, 0..5) = 1 + 20 + 190 + 1140 + 4845 + 15504 = 21700; 21700 / 2**20 = 0.0207
        # <= 0.025 < P(B <= 6) = 60460 / 2**20 = 0.0577 -> k = 6.
        (20, (6, 15), 21700),
        # n = 6: P(B <= 0) = 1 / 64 = 0.0156 <= 0.025 < P(B <= 1) = 7 / 64 -> k = 1.
        (6, (1, 6), 1),
    ],
)
def test_order_statistic_ranks_small_n(n, ranks, tail_count):
    lo, hi, coverage = stats.median_ci_ranks(n)
    assert (lo, hi) == ranks
    assert coverage == pytest.approx(1 - 2 * tail_count / 2**n)


def test_order_statistic_ranks_n100():
    # P(B <= 39) = 0.0176 <= 0.025 < P(B <= 40) = 0.0284 -> ranks 40 and 61, coverage 0.9648.
    lo, hi, coverage = stats.median_ci_ranks(100)
    assert (lo, hi) == (40, 61)
    assert coverage == pytest.approx(1 - 2 * binom.cdf(39, 100, 0.5))
    assert coverage == pytest.approx(0.9648, abs=1e-4)


def test_large_n_uses_scipy_and_agrees(monkeypatch):
    exact = stats.median_ci_ranks(100)
    monkeypatch.setattr(stats, "EXACT_BINOMIAL_MAX_N", 10)
    assert stats.median_ci_ranks(100)[:2] == exact[:2]
    lo, hi, coverage = stats.median_ci_ranks(20_001)
    assert hi == 20_001 - lo + 1 and 0.95 <= coverage < 0.96


def test_too_few_samples_for_a_95_interval():
    assert stats.min_samples_for_ci(0.95) == 6  # 1 - 2 / 2**5 = 0.9375 < 0.95 <= 1 - 2 / 64
    with pytest.raises(AttnprofError, match="at least 6 samples, got 5"):
        stats.median_ci([1, 2, 3, 4, 5])


def test_median_ci_picks_the_order_statistics():
    values = [float(v) for v in range(20, 0, -1)]  # 20..1, unsorted on purpose
    ci = stats.median_ci(values)
    assert (ci.lo, ci.hi) == (6.0, 15.0)
    assert ci.lo <= stats.median(values) <= ci.hi
    assert ci.n == 20


def test_median_ci_coverage_by_simulation():
    # Exponential(1) has median ln 2; the interval should cover it in >= 95% of repeats
    # (its exact coverage for n = 20 is 95.9%; 3000 repeats have a standard error of 0.36%).
    rng = random.Random(11)
    covered = 0
    repeats = 3000
    for _ in range(repeats):
        ci = stats.median_ci([rng.expovariate(1.0) for _ in range(20)])
        covered += ci.lo <= math.log(2) <= ci.hi
    assert covered / repeats > 0.94


def test_median_of_ratios():
    top = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    bottom = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    summary, groups = stats.replicated_ratio([top], [bottom])
    assert groups == [[2.0] * 7]
    assert summary.median == 2.0 and (summary.ci.lo, summary.ci.hi) == (2.0, 2.0)
    assert summary.over == "rounds" and summary.disagreement_p is None


# -- across processes: synthetic runs with a known between-process component ------------------

MU = 1.25  # the true ratio: a new process's median ratio is MU * exp(b), b ~ N(0, SIGMA_B)


def simulated_run(rng, processes=6, rounds=3, sigma_b=0.05, sigma_w=0.10):
    """One run: per process a level drawn once, then rounds scattered around it (log-normal,
    with a slow tail like real rounds: a few are preempted)."""
    groups = []
    for _ in range(processes):
        level = rng.normal(0.0, sigma_b)
        noise = rng.normal(0.0, sigma_w, rounds) + rng.exponential(0.02, rounds)
        groups.append(list(MU * np.exp(level + noise - 0.02 * np.log(2))))
    return groups


def test_interval_across_processes_covers_what_a_new_run_gives():
    """The interval over six processes' medians covers the median a new process gives (its
    target) at least 95% of the time: exactly 1 - 2/2^6 = 96.9% for i.i.d. continuous process
    medians, whatever their distribution. An interval over the rounds of one process, as many
    rounds as the whole run, covers it far less often: the failure this design removes."""
    rng = np.random.default_rng(7)
    target = float(np.median([stats.median(g) for g in simulated_run(rng, processes=40_000)]))
    repeats, across, within = 2000, 0, 0
    for _ in range(repeats):
        summary = stats.replicated_median(simulated_run(rng))
        across += summary.ci.lo <= target <= summary.ci.hi
        one = stats.replicated_median(simulated_run(rng, processes=1, rounds=18))
        within += one.ci.lo <= target <= one.ci.hi
    assert across / repeats >= 0.95
    assert within / repeats < 0.75


def test_each_runs_interval_contains_the_median_of_the_other_runs():
    """The evidence the README quotes, on synthetic data: of 20 runs, how often each run's
    interval contains the median of the other 19 runs' estimates. Across processes it is about
    95% or more; a run of one process (the design this replaces, as many rounds) far below."""
    rng = np.random.default_rng(3)
    trials, across_hits, within_hits, total = 30, 0, 0, 0
    for _ in range(trials):
        runs = [simulated_run(rng) for _ in range(20)]
        across = [stats.replicated_median(run) for run in runs]
        within = [stats.replicated_median(simulated_run(rng, processes=1, rounds=18))
                  for _ in runs]
        for i in range(20):
            others = [a.median for j, a in enumerate(across) if j != i]
            target = stats.median(others)
            across_hits += across[i].ci.lo <= target <= across[i].ci.hi
            others_w = [w.median for j, w in enumerate(within) if j != i]
            target_w = stats.median(others_w)
            within_hits += within[i].ci.lo <= target_w <= within[i].ci.hi
            total += 1
    assert across_hits / total >= 0.93
    assert within_hits / total < 0.75


def test_disagreement_between_processes_is_flagged_only_when_real():
    rng = np.random.default_rng(5)
    same = sum(stats.replicated_median(simulated_run(rng, rounds=4, sigma_b=0.0)).disagree
               for _ in range(500))
    assert same / 500 < 0.03  # the test's own false-alarm rate is 1%
    apart = sum(stats.replicated_median(simulated_run(rng, rounds=4, sigma_b=0.10,
                                                      sigma_w=0.02)).disagree
                for _ in range(200))
    assert apart / 200 > 0.9


def test_replicated_median_edges():
    # one of several requested processes finished: a median, no interval, still "processes"
    lone = stats.replicated_median([[1.0, 1.2]], across_processes=True)
    assert lone.over == "processes" and lone.ci is None and lone.median == pytest.approx(1.1)
    # five processes: no 95% interval (needs six)
    five = stats.replicated_median([[1.0 + i / 10] for i in range(5)])
    assert five.ci is None and five.over == "processes"
    six = stats.replicated_median([[1.0 + i / 10, 1.05 + i / 10] for i in range(6)])
    assert (six.ci.lo, six.ci.hi) == pytest.approx((1.025, 1.525))
    assert six.group_medians == pytest.approx(tuple(1.025 + i / 10 for i in range(6)))
    assert stats.replicated_median([[1.0, 1.0]] * 6).disagreement_p == 1.0  # all tied
    with pytest.raises(AttnprofError, match="cannot be pooled"):
        stats.replicated_median([[1.0], [2.0]], across_processes=False)
    with pytest.raises(AttnprofError, match="same processes"):
        stats.replicated_ratio([[1.0]], [[1.0], [2.0]])


def test_bad_inputs_are_refused():
    with pytest.raises(AttnprofError, match="equal lengths"):
        stats.ratios([1.0, 2.0], [1.0])
    with pytest.raises(AttnprofError, match="positive"):
        stats.ratios([1.0], [0.0])
    with pytest.raises(AttnprofError, match="at least one sample"):
        stats.median([])
    with pytest.raises(AttnprofError, match=r"within \[0, 1\]"):
        stats.quantile([1.0], 1.5)
    with pytest.raises(AttnprofError, match="NaN"):
        stats.median([1.0, float("nan")])
    with pytest.raises(AttnprofError, match="between 0 and 1"):
        stats.median_ci_ranks(10, level=1.0)
