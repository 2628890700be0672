"""The scheduler and the groups' stopping, on synthetic processes: no timing, no subprocess.

A fake worker stands in for a fresh process: it returns a ProcessRun whose samples are drawn
around a known ratio per variant, so which arms each process times, when each comparison stops
and how the groups interleave can be checked exactly and in milliseconds.
"""

from __future__ import annotations

import random
from dataclasses import replace
from functools import partial
from itertools import pairwise

import pytest
from torch import nn

from attnprof.latency import schedule as schedule_module
from attnprof.latency.records import ProcessRun, arm_key
from attnprof.latency.replicate import GroupPlan, GroupState
from attnprof.latency.rounds import ProcessJob
from attnprof.latency.schedule import run_groups
from attnprof.latency.spec import Condition, Replication, TimingSpec

EAGER = Condition("inference", "eager")


def spec(replication: Replication, conditions=(EAGER,)) -> TimingSpec:
    return TimingSpec(device="cpu", threads=1, batch=1, input_shape=(3, 8, 8),
                      conditions=conditions, rounds=3, replication=replication, memory=False)


NOISE = {"slow": 0.05}
"""Each variant's multiplicative noise (1% unless named): 'slow' is noisy, so it needs more
processes than 'fast' for the same width."""


def fake_run(ratios: dict[str, float], job: ProcessJob) -> ProcessRun:
    """A process that timed ``job.arms``: the baseline at 10 ms, each variant at its ratio
    times that, with multiplicative noise (:data:`NOISE`); seeded by the job's seed."""
    rng = random.Random(job.seed)
    samples = {}
    for condition, variant in job.arms:
        key = arm_key(condition.label, variant)
        base = ratios.get(variant, 1.0) * 10.0
        noise = NOISE.get(variant, 0.01)
        samples[key] = tuple(base * (1 + rng.gauss(0, noise)) for _ in range(job.spec.rounds))
    keys = tuple(samples)
    brackets = job.brackets().reference  # each variant against its own baseline's samples
    return ProcessRun(job.index, job.seed, arms=keys, samples_ms=samples,
                      reference_ms={k: samples[base] for k, base in brackets.items()},
                      forwards={k: (1,) * job.spec.rounds for k in keys},
                      warmup_forwards=dict.fromkeys(keys, 1), first_call_s=dict.fromkeys(keys, 0.1),
                      settled=True, order=(keys,) * job.spec.rounds)


@pytest.fixture
def fake_workers(monkeypatch):
    """Route every fresh process to ``fake_run`` with the ratios of the plan's label, and
    record the order the groups' processes ran in."""
    calls: list[tuple[str, tuple[str, ...]]] = []
    ratios: dict[str, dict[str, float]] = {}

    def fresh(function, job, **kwargs):
        group = next(name for name in ratios if job.spec.seed == SEEDS[name])
        calls.append((group, tuple(v for _, v in job.arms)))
        return fake_run(ratios[group], job)

    monkeypatch.setattr(schedule_module, "run_in_fresh_process", fresh)
    return calls, ratios


SEEDS = {"g": 1, "a": 2, "b": 3, "ok": 4, "bad": 5}
"""Each group's seed: how the fake worker tells the groups apart."""


def plan(name: str, replication: Replication, variants=("none", "fast", "slow")) -> GroupPlan:
    factories = {v: partial(dict) for v in variants}  # picklable stand-ins, never called
    return GroupPlan(name, factories, "none", replace(spec(replication), seed=SEEDS[name]))


def test_decided_variants_leave_the_later_processes(fake_workers):
    calls, ratios = fake_workers
    ratios["g"] = {"fast": 1.40, "slow": 1.05}  # +40%: decided; +5%: sits on the threshold
    sequential = Replication(target_width=3.0, threshold=5.0, max_processes=20)
    (timing,) = run_groups([plan("g", sequential)])
    arms = [variants for _, variants in calls]
    assert arms[0] == ("none", "fast", "slow")
    fast = timing.comparisons[EAGER].result("fast").ratio
    slow = timing.comparisons[EAGER].result("slow").ratio
    assert fast.stopped == "decided" and fast.delta_ci95_pct[0] > 5.0
    assert fast.processes == sum("fast" in a for a in arms) < len(arms)
    # after fast stopped, the processes time the baseline and slow only, and slow goes on
    assert all(a == ("none", "slow") for a in arms[fast.processes:])
    assert slow.processes == len(arms) > fast.processes
    assert slow.stopped in ("near", "max-processes")
    assert slow.design == "sequential" and slow.ci_level >= 0.95


def test_groups_are_interleaved_and_the_budget_stops_what_is_open(fake_workers, monkeypatch):
    calls, ratios = fake_workers
    ratios["a"] = {"fast": 1.02, "slow": 1.05}
    ratios["b"] = {"fast": 1.03, "slow": 1.06}
    clock = iter(range(0, 10_000, 10))  # every reading of the clock advances 10 s
    monkeypatch.setattr(schedule_module, "_now", lambda: next(clock))
    never = Replication(target_width=0.001, threshold=5.0, max_processes=40)
    timings = run_groups([plan("a", never), plan("b", never)], budget_s=400)
    order = [group for group, _ in calls]
    # one process of each group in turn, never two of one group back to back
    assert order[:6] == ["a", "b", "a", "b", "a", "b"]
    assert all(x != y for x, y in pairwise(order))
    for timing in timings:
        for item in timing.comparisons[EAGER].results:
            # the budget ran out after the first intervals: stopped for it, with an interval
            assert item.ratio.stopped == "budget" and item.ratio.ci95 is not None


def test_a_group_without_intervals_goes_on_past_the_budget(fake_workers):
    _, ratios = fake_workers
    ratios["a"] = {"fast": 1.5, "slow": 1.5}
    sequential = Replication(target_width=1000.0, threshold=5.0, max_processes=40)
    (timing,) = run_groups([plan("a", sequential)], budget_s=1e-9)
    first = timing.comparisons[EAGER].result("fast").ratio
    assert first.ci95 is not None and first.processes == 8  # the design's first interval


def test_a_first_process_that_fails_halts_its_group_only(fake_workers, monkeypatch):
    _, ratios = fake_workers
    ratios["ok"] = {"fast": 1.5, "slow": 1.5}
    ratios["bad"] = {}
    fixed = Replication(processes=6)
    original = schedule_module.run_in_fresh_process

    def failing(function, job, **kwargs):
        if job.spec.seed == SEEDS["bad"]:
            raise schedule_module.WorkerFailed("ValueError: broken", "Traceback ...")
        return original(function, job, **kwargs)

    monkeypatch.setattr(schedule_module, "run_in_fresh_process", failing)
    reports = []
    ok, bad = run_groups([plan("ok", fixed), plan("bad", fixed)], progress=reports.append)
    failed = [r for r in reports if r.group == "bad"]
    assert failed[0].error == "ValueError: broken" and not failed[0].ratios
    assert failed[-1].kind == "done"
    assert set(ok.comparisons[EAGER].result("fast").ratio.process_medians) and not bad.comparisons
    assert {f.error for f in bad.failures.values()} == {"ValueError: broken"}
    assert len(bad.workers) == 1  # the same error would recur: no second process
    assert ok.comparisons[EAGER].result("slow").ratio.stopped == "fixed"
    assert ok.comparisons[EAGER].processes == 6


def test_each_condition_keeps_its_own_baseline():
    compiled = Condition("inference", "compile")
    state = GroupState(GroupPlan("g", {"none": dict, "se": dict}, "none",
                                 spec(Replication(processes=6), (EAGER, compiled))))
    job = state.job()
    assert job.arms == ((EAGER, "none"), (EAGER, "se"), (compiled, "none"), (compiled, "se"))
    state.stopped[compiled, "se"] = "decided"
    assert state.job().arms == ((EAGER, "none"), (EAGER, "se"))


def test_a_ratio_is_against_the_brackets_the_run_recorded_else_the_rounds_baseline():
    """A variant's ratio is taken against its recorded brackets (pairing "bracketed"); a run
    without them (recorded before bracketed rounds) pairs with the round's baseline sample."""
    state = GroupState(GroupPlan("g", {"none": dict, "se": dict}, "none",
                                 spec(Replication(processes=6))))
    job = state.job()
    base, se = arm_key(EAGER.label, "none"), arm_key(EAGER.label, "se")
    for index in range(6):
        state.runs.append(ProcessRun(index, index, arms=(base, se),
                                     samples_ms={base: (10.0,) * 3, se: (12.0,) * 3},
                                     reference_ms={se: (11.0,) * 3}))
    bracketed = state.ratio(EAGER, "se")
    assert bracketed.pairing == "bracketed" and bracketed.median == pytest.approx(12 / 11)
    state.runs = [replace(run, reference_ms={}) for run in state.runs]
    rounds = state.ratio(EAGER, "se")
    assert rounds.pairing == "round" and rounds.median == pytest.approx(1.2)
    assert job.brackets().reference == {se: base}


def test_the_scheduler_stops_where_the_stopping_rule_does(monkeypatch):
    """The real path (processes, arms, per-process medians, GroupState, the scheduler) gives
    the very intervals and stops that the rule gives on the same process medians."""
    from attnprof.latency.replicate import stop_reason
    from attnprof.latency.sequential import sequential_design

    sequential = Replication(target_width=6.0, threshold=5.0, max_processes=40)
    design = sequential_design(0.95, 40)
    rng = random.Random(11)
    for _ in range(12):
        medians = [rng.gauss(8.0, 5.0) for _ in range(40)]

        def fresh(function, job, medians=medians, **kwargs):
            ratio = 1 + medians[job.index] / 100
            samples = {arm_key(c.label, v): (10.0 * (ratio if v == "fast" else 1.0),) * 3
                       for c, v in job.arms}
            keys = tuple(samples)
            return ProcessRun(job.index, job.seed, arms=keys, samples_ms=samples,
                              forwards={k: (1, 1, 1) for k in keys}, settled=True,
                              warmup_forwards=dict.fromkeys(keys, 1),
                              first_call_s=dict.fromkeys(keys, 0.0))

        monkeypatch.setattr(schedule_module, "run_in_fresh_process", fresh)
        (timing,) = run_groups([plan("g", sequential, ("none", "fast"))])
        got = timing.comparisons[EAGER].result("fast").ratio
        for n in range(1, 41):
            ci = design.interval(medians[:n])
            interval = None if ci is None else (ci.lo, ci.hi)
            reason = stop_reason(sequential, n, interval)
            if reason is not None:
                break
        assert (got.processes, got.stopped) == (n, reason)
        assert got.delta_ci95_pct == pytest.approx(interval)


def test_a_failed_process_is_replaced_recorded_and_noted(fake_workers, monkeypatch):
    """Six processes asked for, the fourth dies: a seventh takes its place, six stand behind
    the interval, and the dead one is recorded and noted, not dropped; memory is measured in
    the first process only."""
    _, ratios = fake_workers
    ratios["g"] = {"fast": 1.3, "slow": 1.3}
    original = schedule_module.run_in_fresh_process
    memory = []

    def dies_fourth(function, job, **kwargs):
        memory.append(job.memory)
        if job.index == 3:
            raise schedule_module.WorkerFailed("worker process 4 ended without a result "
                                               "(exit status 3)", "the end of its stderr")
        return original(function, job, **kwargs)

    monkeypatch.setattr(schedule_module, "run_in_fresh_process", dies_fourth)
    fixed = plan("g", Replication(processes=6), ("none", "fast"))
    (timing,) = run_groups([replace(fixed, spec=replace(fixed.spec, memory=True))])
    comparison = timing.comparisons[EAGER]
    assert len(comparison.workers) == 7 and comparison.processes == 6
    dead = comparison.workers[3]
    assert not dead.ok and dead.index == 3 and "exit status 3" in dead.error
    assert [w.seed for w in comparison.workers if w.ok] == [1, 2, 3, 5, 6, 7]
    assert any("1 of 7 worker processes failed (process 4:" in n for n in comparison.notes)
    fast = comparison.result("fast").ratio
    assert fast.design == "fixed" and fast.stopped == "fixed" and fast.processes == 6
    assert fast.ci95 == pytest.approx((min(fast.process_medians), max(fast.process_medians)))
    assert memory == [True, False, False, False, False, False, False]


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x)


class _Raises(_Tiny):
    def forward(self, x):
        raise RuntimeError("boom")


def test_a_model_that_raises_in_this_process_fails_its_group_only():
    """With processes = 1 the rounds run here, and a model's error fails its group as a
    fresh process's would: one line and the traceback, the other group timed."""
    one = replace(spec(Replication(processes=1)), sample_time=0.01, max_warmup_rounds=2)
    good = GroupPlan("good", {"none": _Tiny, "tiny": _Tiny}, "none", one)
    bad = GroupPlan("bad", {"none": _Tiny, "raises": _Raises}, "none", one)
    timed, failed = run_groups([good, bad])
    assert timed.comparisons[EAGER].result("tiny").ratio.processes == 1
    assert not failed.comparisons
    (failure,) = failed.failures.values()
    assert failure.error == "RuntimeError: boom" and "Traceback" in failure.traceback
