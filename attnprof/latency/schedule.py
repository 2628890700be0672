"""Run the fresh processes of several groups interleaved, until their answers are known.

Caveats first: processes run one at a time (timing two at once on a small machine would make
each the other's noise), so the run's length is the sum of its processes; the budget is checked
before a process starts, never by cutting one short, and a comparison still without an
interval gets its first one even past the budget (an answer without an interval is worth
nothing).

Why interleave: the processes of one group taken back to back share one minute of the
machine, and a slow minute (a neighbour's job, a frequency dip) then moves that group's answer
as a whole. Round-robin over the groups (one process of each in turn, groups that are done
leaving the rotation) spreads every group's processes over the whole run, so a slow minute
costs each group one process, not its answer.

Each group first builds what its modes need, in a fresh process of its own
(:mod:`attnprof.latency.build`), then takes timing processes until the stopping rule of
:mod:`attnprof.latency.replicate` says every comparison is done. A group with
``processes = 1`` times in this process (no fresh interpreter), and its intervals describe this
process only.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from attnprof.errors import AttnprofError
from attnprof.latency.build import BuildJob, BuildRun, build_arms
from attnprof.latency.records import PairedRatio, ProcessRun
from attnprof.latency.replicate import GroupPlan, GroupState, GroupTiming
from attnprof.latency.rounds import run_process
from attnprof.latency.spec import Condition
from attnprof.latency.workers import (
    WorkerFailed,
    WorkerTraceback,
    check_picklable,
    run_here,
    run_in_fresh_process,
)

_now = time.perf_counter
"""The scheduler's clock (one name, so that tests can drive it)."""


@dataclass(frozen=True)
class Progress:
    """What the scheduler reports after each process (and each build) of a group.

    ``kind`` is ``"build"``, ``"process"`` or ``"done"`` (the group's last report);
    ``ratios`` every comparison of the group as it stands, with why it stopped where it did;
    ``elapsed_s`` since the timing began, against ``budget_s``.
    """

    kind: str
    group: str
    process: int
    wall_s: float
    active: int
    ratios: tuple[tuple[Condition, str, PairedRatio], ...]
    elapsed_s: float
    budget_s: float | None
    groups_left: int
    error: str | None = None


def check_plans(plans: Sequence[GroupPlan]) -> None:
    """Refuse, before anything runs, a group whose variants cannot reach a fresh process."""
    for plan in plans:
        if plan.baseline not in plan.variants:
            raise AttnprofError(f"{plan.label}: the baseline {plan.baseline!r} is not among "
                                f"the variants {list(plan.variants)}")
        if plan.spec.replication.processes != 1:
            check_picklable(plan.variants)


def run_groups(
    plans: Sequence[GroupPlan], *, budget_s: float | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_done: Callable[[GroupPlan, GroupTiming], None] | None = None,
    round_progress: Callable[[str, int, int], None] | None = None,
    folder: str | None = None,
) -> list[GroupTiming]:
    """Time every group (see the module docstring); one :class:`GroupTiming` per plan.

    ``on_done(plan, timing)`` is called as soon as a group is done (the runner saves it
    then); ``round_progress(group, done, rounds)`` after each measured round of a process.
    What the modes build goes into ``folder`` (kept for the caller, who may profile the
    artifacts afterwards), else into a temporary folder removed at the end.
    """
    check_plans(plans)
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="attnprof-build-") as scratch:
            return run_groups(plans, budget_s=budget_s, progress=progress, on_done=on_done,
                              round_progress=round_progress, folder=scratch)
    states = [GroupState(plan) for plan in plans]
    began = _now()
    reported: set[int] = set()
    while True:
        pending = [i for i, state in enumerate(states) if not state.done]
        for i, state in enumerate(states):
            if state.done and i not in reported:
                reported.add(i)
                _finish(state, began, budget_s, len(pending), progress, on_done)
        if not pending:
            break
        for i in pending:
            state = states[i]
            if state.done:
                continue
            elapsed = _now() - began
            if (budget_s is not None and state.runs and state.has_intervals()
                    and elapsed + state.last_process_s > budget_s):
                state.stop_all("budget")
                continue
            _step(state, f"{folder}/{i}", began, budget_s, len(pending), progress,
                  round_progress)
    return [state.final for state in states]


def _finish(state: GroupState, began: float, budget_s: float | None, left: int,
            progress: Callable[[Progress], None] | None,
            on_done: Callable[[GroupPlan, GroupTiming], None] | None) -> None:
    state.final = state.result()
    if progress is not None:
        progress(_report(state, "done", began, budget_s, left))
    if on_done is not None:
        on_done(state.plan, state.final)


def _step(state: GroupState, folder: str, began: float, budget_s: float | None, left: int,
          progress: Callable[[Progress], None] | None,
          round_progress: Callable[[str, int, int], None] | None) -> None:
    """One unit of work for ``state``: its build, or its next timing process."""
    spec = state.spec
    one_process = spec.replication.processes == 1
    start = _now()
    if not state.built:
        arms = state.build_arms()
        if not arms:
            state.built = True
        else:
            job = BuildJob(spec, state.plan.variants, arms, folder)
            try:
                run = (run_here(build_arms, job) if one_process else run_in_fresh_process(
                    "attnprof.latency.build:build_arms", job, allocator=spec.allocator,
                    what=f"the build process of {state.plan.label}"))
            except WorkerFailed as failed:
                run = BuildRun(failed={key: failed.line for key in _keys(arms)},
                               tracebacks={key: failed.traceback or "" for key in _keys(arms)})
            state.add_build(run)
            state.wall_s += _now() - start
            if progress is not None:
                progress(_report(state, "build", began, budget_s, left))
            return
    job = state.job()

    def rounds(done: int, total: int) -> None:
        if round_progress is not None:
            round_progress(state.plan.label, done, total)

    try:
        run = (run_here(run_process, job, rounds) if one_process else run_in_fresh_process(
            "attnprof.latency.rounds:run_process", job, allocator=spec.allocator,
            what=f"worker process {job.index + 1}", progress=rounds))
    except WorkerFailed as failed:
        run = ProcessRun(job.index, job.seed, error=failed.line, traceback=failed.traceback)
    run = replace(run, started_s=start - began)
    seconds = _now() - start
    state.wall_s += seconds
    state.last_process_s = seconds
    state.add(run)
    if progress is not None:
        progress(_report(state, "process", began, budget_s, left, run.error))


def _keys(arms: tuple[tuple[Condition, str], ...]) -> list[str]:
    from attnprof.latency.records import arm_key

    return [arm_key(condition.label, variant) for condition, variant in arms]


def _report(state: GroupState, kind: str, began: float, budget_s: float | None, left: int,
            error: str | None = None) -> Progress:
    measured = state.halted is None and any(run.ok for run in state.runs)
    ratios = tuple((c, v, state.ratio(c, v)) for c, v in state.comparisons()
                   if measured and (c, v) not in state.failures)
    return Progress(kind, state.plan.label, len(state.runs), state.last_process_s,
                    len(state.active()), ratios, _now() - began, budget_s, left,
                    error)


def first_error(timing: GroupTiming) -> AttnprofError | None:
    """The group's failure as an exception with the worker's traceback chained, when every
    comparison failed for one reason (a group whose first process failed)."""
    reasons = {failure.error for failure in timing.failures.values()}
    if timing.comparisons or len(reasons) != 1:
        return None
    failure = next(iter(timing.failures.values()))
    error = AttnprofError(failure.error)
    error.__cause__ = WorkerTraceback(failure.traceback or failure.error)
    return error
