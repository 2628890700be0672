"""The statistics of ``attnprof compare`` on synthetic samples with answers known in advance."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnprof.compare.stats import (
    Verdict,
    judge_shift,
    median,
    parse_threshold,
    rank_test,
    relative_change,
    smallest_pvalue,
)
from attnprof.errors import AttnprofError


def _noisy(n: int, centre: float, spread: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [centre * (1.0 + rng.gauss(0.0, spread)) for _ in range(n)]


# --- the U statistic and its p-value, by hand ----------------------------------------------------


def test_u_counts_the_pairs_where_new_is_larger():
    # new [4, 5, 6] vs base [1, 2, 3]: every one of the 3 x 3 = 9 pairs has new > base -> U = 9.
    # Exact one-sided p: 1 of the C(6, 3) = 20 equally likely orderings is this extreme -> 0.05.
    test = rank_test(base=[1, 2, 3], new=[4, 5, 6])
    assert test.statistic == 9
    assert test.pvalue == pytest.approx(1 / 20)


def test_u_for_an_interleaved_example():
    # new [1, 4, 5] vs base [2, 3, 6]: 1 beats nothing, 4 beats 2 and 3, 5 beats 2 and 3 -> U = 4.
    # The null distribution of U for 3 + 3 counts the 20 orderings by U = 0..9 as
    # 1, 1, 2, 3, 3, 3, 3, 2, 1, 1, so P(U >= 4) = (3 + 3 + 3 + 2 + 1 + 1) / 20 = 13 / 20.
    test = rank_test(base=[2, 3, 6], new=[1, 4, 5])
    assert test.statistic == 4
    assert test.pvalue == pytest.approx(13 / 20)


def test_u_counts_a_tie_as_one_half():
    # new [1, 2, 2] vs base [2, 3]: (2, 2) is tied twice -> U = 0.5 + 0.5 = 1.
    assert rank_test(base=[2, 3], new=[1, 2, 2]).statistic == 1.0


def test_less_is_the_mirror_of_greater():
    # new [1, 2, 3] vs base [4, 5, 6]: U = 0, and "new is smaller" has p = 1/20.
    test = rank_test(base=[4, 5, 6], new=[1, 2, 3], alternative="less")
    assert test.statistic == 0
    assert test.pvalue == pytest.approx(1 / 20)


def test_smallest_pvalue_is_one_over_the_number_of_orderings():
    assert smallest_pvalue(3, 3) == pytest.approx(1 / 20)  # C(6, 3) = 20
    assert smallest_pvalue(5, 5) == pytest.approx(1 / 252)  # C(10, 5) = 252
    assert smallest_pvalue(20, 20) == pytest.approx(1 / math.comb(40, 20))
    assert smallest_pvalue(0, 5) == 1.0
    assert not rank_test([1, 2, 3], [4, 5, 6]).can_reject(0.05)  # 0.05 is not < 0.05
    assert rank_test([1, 2, 3, 4], [5, 6, 7, 8]).can_reject(0.05)  # 1 / 70


def test_identical_distributions_give_a_large_p():
    samples = _noisy(20, 1.0, 0.05, seed=1)
    assert rank_test(samples, list(reversed(samples))).pvalue > 0.4  # U = 200 = n*m/2
    other = _noisy(20, 1.0, 0.05, seed=2)
    assert rank_test(samples, other).pvalue > 0.05


def test_a_30_percent_shift_over_20_rounds_gives_a_tiny_p():
    base = _noisy(20, 1.0, 0.05, seed=3)
    new = [v * 1.3 for v in _noisy(20, 1.0, 0.05, seed=4)]
    assert rank_test(base, new).pvalue < 1e-6


def test_a_constant_sample_on_both_sides_is_not_significant():
    assert rank_test([1.0] * 10, [1.0] * 10).pvalue == pytest.approx(1.0)


def test_rank_test_refuses_bad_input():
    with pytest.raises(AttnprofError, match="alternative"):
        rank_test([1], [2], alternative="two-sided")
    with pytest.raises(AttnprofError, match="both sides"):
        rank_test([], [1.0])


# --- medians and changes -------------------------------------------------------------------------


def test_median_and_relative_change():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    # medians 2.0 -> 2.5: 2.5 / 2 - 1 = +25%
    assert relative_change([1, 2, 3], [2, 2.5, 9]) == pytest.approx(0.25)
    with pytest.raises(AttnprofError):
        median([])
    with pytest.raises(AttnprofError, match="positive"):
        relative_change([0, 0, 0], [1, 1, 1])


# --- the rule: size, significance, and significance beyond the threshold ---------------------


def test_a_significant_5_percent_slowdown_is_not_flagged_at_10_percent():
    base = _noisy(30, 1.0, 0.005, seed=5)
    new = [v * 1.05 for v in _noisy(30, 1.0, 0.005, seed=6)]
    judged = judge_shift(base, new, threshold=0.10)
    assert judged.pvalue < 1e-6  # certainly slower ...
    assert judged.change == pytest.approx(0.05, abs=0.01)
    assert judged.verdict is Verdict.UNCHANGED  # ... but not by more than 10%
    assert not judged.verdict.flagged


def test_an_insignificant_20_percent_slowdown_on_3_noisy_rounds_is_not_flagged():
    # medians 1.0 -> 1.2 (+20%), but U = 6 of 9 (p = 7/20), and 3 + 3 rounds can never give
    # p < 0.05 anyway (smallest possible p = 1/20).
    judged = judge_shift([1.0, 1.5, 0.8], [1.2, 1.8, 0.96], threshold=0.10)
    assert judged.change == pytest.approx(0.20)
    assert judged.verdict is Verdict.UNTESTABLE
    assert "never reach" in judged.reason
    assert not judged.verdict.flagged


def test_an_insignificant_20_percent_slowdown_on_noisy_rounds_is_not_flagged():
    base = [1.0, 1.6, 0.7, 1.3, 0.9, 1.1]
    new = [1.2, 0.8, 1.9, 0.85, 1.25, 1.5]  # medians 1.05 -> 1.225: +16.7%, p = 0.3
    judged = judge_shift(base, new, threshold=0.10)
    assert judged.change > 0.10
    assert judged.pvalue > 0.05
    assert judged.verdict is Verdict.NOT_SIGNIFICANT


def test_a_clear_20_percent_slowdown_is_flagged():
    base = _noisy(20, 1.0, 0.03, seed=7)
    new = [v * 1.2 for v in _noisy(20, 1.0, 0.03, seed=8)]
    judged = judge_shift(base, new, threshold=0.10)
    assert judged.verdict is Verdict.REGRESSION and judged.verdict.flagged
    assert judged.pvalue < 1e-6 and judged.pvalue_margin < 0.05
    assert judged.change == pytest.approx(0.2, abs=0.03)


def test_a_shift_just_past_the_threshold_is_not_flagged_unless_significantly_beyond_it():
    # Two runs 11% apart (the same 30 values, rescaled): "slower than base" is certain (p tiny),
    # but a 1% excess over the threshold is lost in 3% round-to-round noise: the data do not
    # show more than the 10% the threshold allows for run-to-run drift.
    base = _noisy(30, 1.0, 0.03, seed=9)
    new = [v * 1.11 for v in reversed(base)]
    judged = judge_shift(base, new, threshold=0.10)
    assert judged.change == pytest.approx(0.11)
    assert judged.pvalue < 1e-6
    assert judged.pvalue_margin > 0.05
    assert judged.verdict is Verdict.NOT_SIGNIFICANT
    assert "beyond" in judged.reason


def test_a_speedup_is_reported_not_flagged():
    base = _noisy(20, 1.0, 0.03, seed=11)
    new = [v * 0.7 for v in _noisy(20, 1.0, 0.03, seed=12)]
    judged = judge_shift(base, new)
    assert judged.verdict is Verdict.IMPROVEMENT
    assert not judged.verdict.flagged
    assert judged.change == pytest.approx(-0.3, abs=0.03)


def test_an_outlier_round_does_not_decide():
    base = _noisy(20, 1.0, 0.02, seed=13)
    new = list(_noisy(20, 1.0, 0.02, seed=14))
    new[3] = 50.0  # one preempted round, 50x slower
    assert judge_shift(base, new).verdict is Verdict.UNCHANGED


def test_empty_samples_are_untestable_and_bad_samples_refused():
    assert judge_shift([], [1.0]).verdict is Verdict.UNTESTABLE
    with pytest.raises(AttnprofError, match="non-negative"):
        judge_shift([1.0, -1.0], [1.0])
    with pytest.raises(AttnprofError, match="threshold"):
        judge_shift([1.0], [1.0], threshold=0)
    with pytest.raises(AttnprofError, match="alpha"):
        judge_shift([1.0], [1.0], alpha=1.5)


def test_only_regressions_and_changed_counts_fail():
    assert {v for v in Verdict if v.flagged} == {Verdict.REGRESSION, Verdict.CHANGED}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.5, 2.0), min_size=2, max_size=40),
    st.floats(0.01, 100.0),
    st.randoms(use_true_random=False),
)
def test_the_same_samples_shuffled_and_rescaled_are_never_flagged(samples, scale, rng):
    shuffled = [v * scale for v in samples]
    rng.shuffle(shuffled)
    judged = judge_shift([v * scale for v in samples], shuffled)
    assert judged.change == pytest.approx(0.0, abs=1e-9)
    assert not judged.verdict.flagged


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.5, 2.0), min_size=2, max_size=30),
       st.lists(st.floats(0.5, 2.0), min_size=2, max_size=30))
def test_a_slowdown_and_its_mirror_are_never_both_flagged(a, b):
    forward = judge_shift(a, b).verdict
    backward = judge_shift(b, a).verdict
    assert not (forward.flagged and backward.flagged)
    if forward.flagged:
        assert backward is Verdict.IMPROVEMENT


# --- parsing the threshold -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("10%", 0.10), ("2.5%", 0.025), ("0.1", 0.10),
                                             (" 15% ", 0.15), ("1", 1.0)])
def test_parse_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize(("text", "message"), [("10", "ambiguous"), ("ten", "not a number"),
                                               ("-5%", "positive"), ("0%", "positive"),
                                               ("%", "not a number")])
def test_parse_threshold_refuses(text, message):
    with pytest.raises(AttnprofError, match=message):
        parse_threshold(text)
