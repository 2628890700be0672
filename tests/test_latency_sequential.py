"""The sequential design: exact simultaneous coverage, and what the stopping rule does with it.

Synthetic data with a known between-process component: each process has an effect of its own
(its memory layout, its minute of the machine) drawn around the true Δ, and its rounds scatter
around that; the process median is what the design sees. The true median of the process
medians is the true Δ (every draw is symmetric), so coverage and error rates are counted
against a known value. Seeds are fixed; the Monte Carlo margins are stated where asserted.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from attnprof.errors import AttnprofError
from attnprof.latency.replicate import stop_reason
from attnprof.latency.sequential import (
    minimum_max_processes,
    miss_probability,
    sequential_design,
)
from attnprof.latency.spec import Replication, replication_plan, timing_spec
from attnprof.latency.stats import median_ci

SIMULATIONS = 2000
# With 2000 simulations the standard error of a 95% coverage is 0.0049; 0.935 is three of
# them below 0.95, so a correct design fails this test with probability about 0.001.
COVERAGE_FLOOR = 0.935


def process_medians(rng: np.random.Generator, n: int, delta: float, sigma_b: float,
                    sigma_w: float, rounds: int = 3, heavy: bool = False) -> np.ndarray:
    """``n`` process medians (points of Δ%): a between-process effect plus the median of
    ``rounds`` within-process draws; Student-t (3 degrees of freedom) tails with ``heavy``."""
    if heavy:
        between = sigma_b * rng.standard_t(3, size=n)
        within = sigma_w * rng.standard_t(3, size=(n, rounds))
    else:
        between = rng.normal(0.0, sigma_b, size=n)
        within = rng.normal(0.0, sigma_w, size=(n, rounds))
    return delta + between + np.median(within, axis=1)


def run_sequential(values: np.ndarray, plan) -> tuple[tuple[float, float] | None, str, int]:
    """The stopping rule applied look by look, as the scheduler applies it: the final
    interval, why it stopped, and after how many processes."""
    design = sequential_design(plan.level, plan.max_processes)
    for n in range(1, plan.max_processes + 1):
        ci = design.interval(values[:n].tolist())
        interval = None if ci is None else (ci.lo, ci.hi)
        reason = stop_reason(plan, n, interval)
        if reason is not None:
            return interval, reason, n
    raise AssertionError("the rule must stop by max_processes")


def test_the_design_spends_exactly_its_alpha():
    design = sequential_design(0.95, 40)
    assert design.first == 8 and design.coverage >= 0.95
    assert design.coverage == pytest.approx(1.0 - miss_probability(design.ranks))
    # one more rank anywhere would spend more than 5%: the ranks are as wide as allowed
    for n in range(design.first, 41):
        wider = list(design.ranks)
        wider[n] += 1
        if wider[n] <= n // 2:
            assert miss_probability(wider) > 0.05, n
    # a single look at 6 processes is the fixed design's [min, max]: 1 - 2/64
    assert minimum_max_processes(0.95) == 6
    assert sequential_design(0.95, 6).coverage == pytest.approx(1 - 2 / 64)


def test_the_miss_probability_is_exact():
    """The dynamic programme against brute force over all 2**n sign sequences."""
    ranks = (0, 0, 0, 1, 1, 1, 1, 2, 2)  # looks at 3..8 processes
    misses = 0
    for bits in range(2 ** 8):
        s, missed = 0, False
        for n in range(1, 9):
            s += (bits >> (n - 1)) & 1
            k = ranks[n]
            missed |= k > 0 and (s <= k - 1 or s >= n + 1 - k)
        misses += missed
    assert miss_probability(ranks) == pytest.approx(misses / 2 ** 8)


@pytest.mark.parametrize("heavy", [False, True], ids=["normal", "heavy-tailed"])
def test_coverage_holds_under_optional_stopping(heavy):
    """Stopping as soon as the interval is narrow keeps 95% coverage; the plain interval,
    recomputed after every process and stopped the same way, does not."""
    rng = np.random.default_rng(20261203 + heavy)
    plan = replication_plan(target_width=6.0, threshold=5.0, max_processes=40)
    covered = naive_covered = 0
    for _ in range(SIMULATIONS):
        values = process_medians(rng, 40, delta=12.0, sigma_b=3.0, sigma_w=6.0, heavy=heavy)
        interval, _, _ = run_sequential(values, plan)
        covered += interval[0] <= 12.0 <= interval[1]
        # the naive rule: a fixed-n 95% interval at every look from 6 on, stopped the same way
        for n in range(6, 41):
            ci = median_ci(values[:n].tolist())
            if ci.hi - ci.lo <= plan.target_width or n == 40:
                naive_covered += ci.lo <= 12.0 <= ci.hi
                break
    assert covered / SIMULATIONS >= COVERAGE_FLOOR, covered
    assert naive_covered / SIMULATIONS < covered / SIMULATIONS - 0.02, (naive_covered, covered)


def test_verdicts_at_the_threshold_are_wrong_no_more_often_than_the_level_allows():
    """A Δ exactly at the claim's threshold has no right verdict: 'refuted' (interval wholly
    above) and 'holds' (wholly below) are both wrong. Each side is rarer than 2.5% (the
    interval's own misses); the plain interval stopped the same way is wrong more often."""
    rng = np.random.default_rng(500)
    plan = replication_plan(target_width=6.0, threshold=5.0, max_processes=40)
    above = below = naive_wrong = 0
    for _ in range(SIMULATIONS):
        values = process_medians(rng, 40, delta=5.0, sigma_b=4.0, sigma_w=8.0)
        (low, high), _, _ = run_sequential(values, plan)
        above += low > 5.0
        below += high < 5.0
        for n in range(6, 41):
            ci = median_ci(values[:n].tolist())
            if ci.hi - ci.lo <= plan.target_width or ci.lo > 5.0 or ci.hi < 5.0 or n == 40:
                naive_wrong += ci.lo > 5.0 or ci.hi < 5.0
                break
    # three standard errors of 2.5% over SIMULATIONS draws
    bound = 0.025 + 3 * math.sqrt(0.025 * 0.975 / SIMULATIONS)
    assert above / SIMULATIONS <= bound and below / SIMULATIONS <= bound, (above, below)
    assert naive_wrong > above + below, (naive_wrong, above, below)


def test_the_rule_stops_big_effects_early_and_says_why():
    rng = np.random.default_rng(7)
    plan = replication_plan(target_width=6.0, threshold=5.0, max_processes=40)
    reasons: dict[str, list[int]] = {}
    for delta in (40.0, 5.0, 0.0):
        for _ in range(200):
            values = process_medians(rng, 40, delta=delta, sigma_b=2.0, sigma_w=4.0)
            (low, high), reason, n = run_sequential(values, plan)
            reasons.setdefault(f"{delta}:{reason}", []).append(n)
            if reason in ("decided", "near"):
                assert high - low <= 6.0
            if reason == "near":
                assert low <= 5.0 <= high
    # a +40% effect is decided (above) as soon as an interval exists and is narrow
    assert len(reasons.get("40.0:decided", [])) >= 190
    # at the threshold the rule ends "near" it, never claiming a side more than the level allows
    assert len(reasons.get("5.0:near", [])) >= 180
    # everything stops by the horizon, with a reason
    assert all(n <= 40 for ns in reasons.values() for n in ns)


def test_fixed_replication_stops_at_its_count():
    plan = replication_plan(7)
    assert [stop_reason(plan, n, (0.0, 100.0)) for n in (6, 7)] == [None, "fixed"]


def test_intervals_need_enough_processes_and_refuse_more_than_designed():
    design = sequential_design(0.95, 12)
    values = [random.Random(1).gauss(0, 1) for _ in range(13)]
    assert design.interval(values[: design.first - 1]) is None
    ci = design.interval(values[: design.first])
    assert ci is not None and ci.lo == min(values[: design.first])
    with pytest.raises(AttnprofError, match="exceed this design's maximum of 12"):
        design.interval(values)


def test_replication_refusals():
    with pytest.raises(AttnprofError, match="processes must be 1"):
        replication_plan(3)
    with pytest.raises(AttnprofError, match="target_width must be a positive number"):
        replication_plan(target_width=0)
    with pytest.raises(AttnprofError, match="target_width must be a positive number"):
        replication_plan(target_width=float("inf"))  # would call any first interval narrow
    with pytest.raises(AttnprofError, match="threshold must be a number, got nan"):
        replication_plan(threshold=float("nan"))  # would call every interval decided
    with pytest.raises(AttnprofError, match="too few for a 95% interval"):
        replication_plan(max_processes=4)


@pytest.mark.parametrize(("given", "message"), [
    (Replication(processes=3), "processes must be 1"),
    (Replication(max_processes=5), "too few for a 95% interval"),
    (Replication(target_width=-1.0), "target_width must be"),
])
def test_a_given_replication_is_checked_as_a_new_one(given, message):
    """A plan handed to timing_spec is refused before anything runs, not after the build."""
    with pytest.raises(AttnprofError, match=message):
        timing_spec(input_shape=(3, 8, 8), replication=given)


def test_one_process_records_the_allocator_it_measures():
    """One process times in the caller's own, whose allocator attnprof does not set."""
    spec = timing_spec(input_shape=(3, 8, 8), rounds=6, replication=Replication(processes=1))
    assert spec.allocator == "system"
    assert timing_spec(input_shape=(3, 8, 8)).allocator == "steady"
