"""Bracketed rounds (attnprof.latency.brackets): every variant between two baseline samples,
its ratio against their geometric mean, so drift over the round cancels."""

from __future__ import annotations

import math
import random

import pytest

from attnprof.errors import AttnprofError
from attnprof.latency.brackets import BracketedRound, bracket_plan, bracketed_sequence
from attnprof.latency.records import arm_key
from attnprof.latency.rounds import ProcessJob
from attnprof.latency.spec import Condition, timing_spec

PLAN = bracket_plan([("inf:none", ("inf:se", "inf:sa", "inf:eca")),
                     ("train:none", ("train:se",))])


def test_every_variant_sits_between_two_samples_of_its_own_baseline():
    for seed in range(20):
        sequence = bracketed_sequence(PLAN, random.Random(seed))
        assert sorted(k for k in sequence if not k.endswith("none")) == sorted(PLAN.reference)
        for position, key in enumerate(sequence):
            if key in PLAN.reference:
                assert sequence[position - 1] == sequence[position + 1] == PLAN.reference[key]
        assert sequence.count("inf:none") == 4 and sequence.count("train:none") == 2
    assert len({bracketed_sequence(PLAN, random.Random(seed)) for seed in range(20)}) > 1
    assert bracketed_sequence(PLAN, None) == (
        "inf:none", "inf:se", "inf:none", "inf:sa", "inf:none", "inf:eca", "inf:none",
        "train:none", "train:se", "train:none")


def test_a_linear_drift_cancels_in_the_bracketed_ratio_and_not_against_one_baseline_sample():
    """The machine slows by 3% a sample (log-linear drift); the variant is truly 1.10x the
    baseline. Its ratio against the geometric mean of its brackets is exactly 1.10 wherever it
    sits; against the round's baseline (the old design's one sample per arm) it is not."""
    plan = bracket_plan([("b", ("v1", "v2", "v3"))])
    truth = {"b": 10.0, "v1": 11.0, "v2": 11.0, "v3": 11.0}
    sequence = bracketed_sequence(plan, random.Random(3))
    taken = [(truth[key] * 1.03 ** position, 1) for position, key in enumerate(sequence)]
    round_ = BracketedRound.of(sequence, taken, plan.reference, None)
    for variant in ("v1", "v2", "v3"):
        assert round_.times[variant] / round_.references[variant] == pytest.approx(1.10)
    assert any(abs(round_.times[v] / round_.times["b"] - 1.10) > 0.02 for v in ("v1", "v3"))
    baseline_samples = [ms for (ms, _), key in zip(taken, sequence, strict=True) if key == "b"]
    assert round_.times["b"] == pytest.approx(
        math.exp(sum(map(math.log, baseline_samples)) / len(baseline_samples)))
    assert round_.calls == {"b": 4, "v1": 1, "v2": 1, "v3": 1}  # the baseline: all 4 samples


def test_malformed_rounds_and_plans_are_refused():
    plan = bracket_plan([("b", ("v",))])
    with pytest.raises(AttnprofError, match="not bracketed by its baseline 'b'"):
        BracketedRound.of(("b", "b", "v"), [(1.0, 1)] * 3, plan.reference, None)
    with pytest.raises(AttnprofError, match="not bracketed"):
        BracketedRound.of(("v", "b"), [(1.0, 1)] * 2, plan.reference, None)
    with pytest.raises(AttnprofError, match="a round of 3 arms has 2 samples"):
        BracketedRound.of(("b", "v", "b"), [(1.0, 1)] * 2, plan.reference, None)
    with pytest.raises(AttnprofError, match="arm 'v' appears twice"):
        bracket_plan([("b", ("v", "v"))])


def test_a_process_job_brackets_each_condition_by_its_own_baseline():
    spec = timing_spec(device="cpu", threads=1)
    inference = Condition("inference", "eager")
    train = Condition("train", "eager")
    job = ProcessJob(spec, {}, ((inference, "none"), (inference, "se"), (train, "none"),
                                (train, "se"), (train, "sa")), "none")
    plan = job.brackets()
    assert plan.reference == {arm_key(inference.label, "se"): arm_key(inference.label, "none"),
                              arm_key(train.label, "se"): arm_key(train.label, "none"),
                              arm_key(train.label, "sa"): arm_key(train.label, "none")}
    orphan = ProcessJob(spec, {}, ((inference, "none"), (train, "se")), "none")
    with pytest.raises(AttnprofError, match=r"conditions \[.train/eager.\] have no baseline"):
        orphan.brackets()
