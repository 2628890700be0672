"""One group's fresh processes: which arms each times, when each comparison stops, the result.

Caveats first: a comparison's interval is over the medians of the processes that timed it, and
an arm leaves the later processes once its comparison has stopped, so the arms of one group end
up behind different numbers of processes; each says how many and why it stopped
(:data:`~attnprof.latency.records.STOP_REASONS`). The interval's coverage assumes the process
medians of one comparison are independent draws of one distribution. Two things could bend
that, and are kept small rather than assumed away: a later process times fewer arms (so every
process still builds every variant of the group, keeping its memory layout and allocator
history alike, and each remaining arm is timed as before: its own sample, paired with its
baseline in the same round); and a failed process is replaced (so a failure that depends on
the machine's state, not on the model, would select the processes that are kept; every
failure is recorded and the notes say how many).

The stopping rule, per comparison (a variant against the baseline in one pass and mode), checked
after every process (sequential replication only):

- stop when the interval (:mod:`attnprof.latency.sequential`, valid at every look) is at most
  ``target_width`` points of Δ% wide: ``decided`` when it lies wholly above or below the
  claim's threshold, ``near`` when it holds the threshold (the Δ is known to sit near it);
- stop at ``max_processes`` (``max-processes``); the scheduler stops what is left when the
  run's budget is spent (``budget``), once every comparison has an interval.

A fixed number of processes stops every comparison after that many (``fixed``). A process that
fails is recorded with its error and another takes its place; when the group's first process
fails, the group fails (the same error would recur), and after :data:`MAX_FAILED_PROCESSES`
failures in all every open comparison stops (``failed``) with the processes that finished.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from attnprof.latency.build import BuildRun, needs_build
from attnprof.latency.environment import collect_environment
from attnprof.latency.memory import NOT_MEASURED
from attnprof.latency.records import (
    CONTENDED_OTHER_CPUS,
    LatencyRecord,
    PairedComparison,
    PairedRatio,
    ProcessRun,
    VariantTiming,
    arm_key,
)
from attnprof.latency.rounds import ModelOrFactory, ProcessJob, settings_of
from attnprof.latency.sequential import SequentialDesign, sequential_design
from attnprof.latency.spec import Condition, Replication, TimingSpec
from attnprof.latency.stats import min_samples_for_ci

MAX_FAILED_PROCESSES = 3


def stop_reason(plan: Replication, processes: int,
                interval: tuple[float, float] | None) -> str | None:
    """Why a comparison stops after ``processes`` processes with this Δ% ``interval``
    (:data:`~attnprof.latency.records.STOP_REASONS`), or ``None`` while it goes on. The
    scheduler adds ``budget`` on its own."""
    if not plan.sequential:
        return "fixed" if processes >= plan.most else None
    if interval is not None and interval[1] - interval[0] <= plan.target_width:
        return "near" if interval[0] <= plan.threshold <= interval[1] else "decided"
    return "max-processes" if processes >= plan.max_processes else None


@dataclass(frozen=True)
class GroupPlan:
    """One group to time: a label for progress and errors, its variants (the baseline among
    them) and the timing spec (validated)."""

    label: str
    variants: Mapping[str, ModelOrFactory]
    baseline: str
    spec: TimingSpec
    wanted: Mapping[Condition, tuple[str, ...]] | None = None
    """The variants compared in each condition (``None``: every variant in every one); a
    resumed run asks only for what it lacks."""


@dataclass(frozen=True)
class ArmFailure:
    """Why an arm has no timing: one line, and the traceback where there is one."""

    error: str
    traceback: str | None = None


@dataclass(frozen=True)
class GroupTiming:
    """What timing a group produced: a comparison per condition that could be compared, a
    failure per arm that could not (a failed build, a failed group), the build, and every
    process's record."""

    comparisons: dict[Condition, PairedComparison]
    failures: dict[tuple[Condition, str], ArmFailure]
    build: BuildRun | None
    workers: tuple[ProcessRun, ...]
    wall_s: float


@dataclass
class GroupState:
    """The running state of one group inside the scheduler (see the module docstring)."""

    plan: GroupPlan
    runs: list[ProcessRun] = field(default_factory=list)
    build: BuildRun | None = None
    built: bool = False
    stopped: dict[tuple[Condition, str], str] = field(default_factory=dict)
    failures: dict[tuple[Condition, str], ArmFailure] = field(default_factory=dict)
    wall_s: float = 0.0
    last_process_s: float = 0.0
    halted: ArmFailure | None = None
    final: GroupTiming | None = None
    """The result, once the scheduler is done with the group."""

    @property
    def spec(self) -> TimingSpec:
        return self.plan.spec

    @property
    def design(self) -> SequentialDesign | None:
        plan = self.spec.replication
        return sequential_design(plan.level, plan.max_processes) if plan.sequential else None

    def comparisons(self) -> list[tuple[Condition, str]]:
        """Every (condition, variant) compared with the baseline, in the given order."""
        wanted = self.plan.wanted
        return [(c, v) for c in self.spec.conditions for v in self.plan.variants
                if v != self.plan.baseline and (wanted is None or v in wanted.get(c, ()))]

    def build_arms(self) -> tuple[tuple[Condition, str], ...]:
        return tuple((c, v) for c in self.spec.conditions if needs_build(c)
                     for v in self.plan.variants)

    def active(self) -> list[tuple[Condition, str]]:
        """The comparisons still taking processes."""
        return [arm for arm in self.comparisons()
                if arm not in self.stopped and arm not in self.failures]

    @property
    def done(self) -> bool:
        return self.halted is not None or not self.active()

    def job(self) -> ProcessJob:
        """The next process's job: every active variant and its condition's baseline."""
        arms: list[tuple[Condition, str]] = []
        for condition in self.spec.conditions:
            variants = [v for c, v in self.active() if c == condition]
            if variants:
                arms += [(condition, self.plan.baseline)] + [(condition, v) for v in variants]
        built = self.build.built if self.build else {}
        return ProcessJob(self.spec, self.plan.variants, tuple(arms), self.plan.baseline,
                          dict(built), index=len(self.runs),
                          memory=self.spec.memory and not self.runs)

    def add_build(self, run: BuildRun) -> None:
        self.build, self.built = run, True
        for condition in self.spec.conditions:
            base = arm_key(condition.label, self.plan.baseline)
            for variant in self.plan.variants:
                if variant == self.plan.baseline:
                    continue
                key = arm_key(condition.label, variant)
                which = base if base in run.failed else key if key in run.failed else None
                if which is not None:
                    failed = run.failed[which]
                    self.failures[condition, variant] = ArmFailure(
                        failed if which == key else f"baseline: {failed}",
                        run.tracebacks.get(which))

    def add(self, run: ProcessRun) -> None:
        """Record a process and stop what it decided."""
        self.runs.append(run)
        if not run.ok:
            failed = [r for r in self.runs if not r.ok]
            if len(self.runs) == 1:  # nothing measured, and the same error would recur
                self.halted = ArmFailure(run.error or "worker failed", run.traceback)
            elif len(failed) >= MAX_FAILED_PROCESSES:
                self.stop_all("failed")
            return
        plan = self.spec.replication
        done_runs = len([r for r in self.runs if r.ok])
        for arm in self.active():
            ratio = self.ratio(*arm) if plan.sequential else None
            reason = stop_reason(plan, done_runs if ratio is None else ratio.processes,
                                 None if ratio is None else ratio.delta_ci95_pct)
            if reason is not None:
                self.stopped[arm] = reason

    def has_intervals(self) -> bool:
        """Whether every active comparison has an interval yet."""
        return all(self.ratio(*arm).ci95 is not None for arm in self.active())

    def stop_all(self, reason: str) -> None:
        for arm in self.active():
            self.stopped[arm] = reason

    # -- statistics ------------------------------------------------------------------------

    def _groups(self, key: str) -> list[tuple[float, ...]]:
        return [run.samples_ms[key] for run in self.runs if run.ok and key in run.samples_ms]

    def _paired_groups(self, condition: Condition, variant: str
                       ) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]], str]:
        """The variant's samples, what each round's ratio is taken against, and that
        pairing's name (:data:`~attnprof.latency.records.PAIRINGS`)."""
        key = arm_key(condition.label, variant)
        base = arm_key(condition.label, self.plan.baseline)
        runs = [run for run in self.runs if run.ok and key in run.samples_ms]
        if all(key in run.reference_ms for run in runs):
            return ([run.samples_ms[key] for run in runs],
                    [run.reference_ms[key] for run in runs], "bracketed")
        # runs recorded before bracketed rounds: the baseline's sample of the same round
        return ([run.samples_ms[key] for run in runs],
                [run.samples_ms[base] for run in runs], "round")

    def _several(self) -> bool:
        return self.spec.replication.processes != 1

    def ratio(self, condition: Condition, variant: str) -> PairedRatio:
        ours, theirs, pairing = self._paired_groups(condition, variant)
        return PairedRatio.from_groups(self.plan.baseline, ours, theirs, pairing=pairing,
                                       across_processes=self._several(), design=self.design,
                                       stopped=self.stopped.get((condition, variant)),
                                       level=self.spec.replication.level)

    def record(self, condition: Condition, variant: str) -> LatencyRecord:
        key = arm_key(condition.label, variant)
        done = [run for run in self.runs if run.ok and key in run.samples_ms]
        peak = next((run.peak_memory[key] for run in done if key in run.peak_memory),
                    (None, None, NOT_MEASURED))
        per_sample = sorted(n for run in done for n in run.forwards[key])
        loads = [run.other_cpu_load for run in done if run.other_cpu_load is not None]
        spec = self.spec
        settings = settings_of(spec, condition.mode)
        meta = {**settings.meta(), "mode": condition.mode}
        return LatencyRecord.from_groups(
            self._groups(key),
            across_processes=self._several(),
            design=self.design,
            level=spec.replication.level,
            batch=spec.batch,
            model=variant,
            input_shape=spec.input_shape,
            peak_mem_bytes=peak[0],
            peak_mem_kind=peak[2],
            activation_peak_bytes=peak[1],
            forwards_per_sample=per_sample[len(per_sample) // 2],
            forwards_timed=sum(per_sample),
            method=(f"paired-bracketed(processes={len(done)}, rounds={spec.rounds} per "
                    f"process, sample_time={spec.sample_time:g}s)"),
            warmup_forwards=sum(run.warmup_forwards[key] for run in done),
            first_call_s=tuple(run.first_call_s[key] for run in done if key in run.first_call_s),
            pass_name=condition.pass_name,
            optimizer=spec.optimizer,
            wall_s=self.wall_s,
            other_cpu_load=sum(loads) / len(loads) if loads else None,
            environment=collect_environment(settings.device),
            **meta,
        )

    def result(self) -> GroupTiming:
        """The group's comparisons and failures (after the scheduler is done with it)."""
        comparisons: dict[Condition, PairedComparison] = {}
        failures = dict(self.failures)
        environment = collect_environment(settings_of(self.spec).device)
        notes = tuple(self.notes())
        if self.halted is not None:
            for arm in self.comparisons():
                failures.setdefault(arm, self.halted)
        for condition in self.spec.conditions:
            variants = [v for c, v in self.comparisons()
                        if c == condition and (c, v) not in failures]
            if not variants:
                continue
            results = tuple(VariantTiming(v, self.record(condition, v), self.ratio(condition, v))
                            for v in variants)
            base = self._groups(arm_key(condition.label, self.plan.baseline))
            comparisons[condition] = PairedComparison(
                baseline=self.plan.baseline,
                baseline_record=self.record(condition, self.plan.baseline),
                baseline_ratio=PairedRatio.identity(
                    self.plan.baseline, tuple(len(group) for group in base),
                    "processes" if self._several() else "rounds", results[0].ratio.design,
                    pairing=results[0].ratio.pairing),
                results=results,
                spec=self.spec,
                condition=condition,
                wall_s=self.wall_s,
                processes=len(base),
                workers=tuple(self.runs),
                environment=environment,
                notes=notes,
            )
        return GroupTiming(comparisons, failures, self.build, tuple(self.runs), self.wall_s)

    def notes(self) -> list[str]:
        spec = self.spec
        done = [run for run in self.runs if run.ok]
        notes = []
        if spec.threads > (os.cpu_count() or spec.threads):
            notes.append(f"{spec.threads} threads exceed the {os.cpu_count()} logical CPUs")
        failed = [run for run in self.runs if not run.ok]
        if failed:
            design = self.design
            level = spec.replication.level
            needed = design.first if design is not None else min_samples_for_ci(level)
            notes.append(
                f"{len(failed)} of {len(self.runs)} worker processes failed "
                f"({'; '.join(f'process {run.index + 1}: {run.error}' for run in failed)})"
                + (f": no {level:.0%} interval from {len(done)} processes (needs {needed})"
                   if len(done) < needed else "")
            )
        unsettled = [run.index + 1 for run in done if not run.settled]
        if unsettled:
            notes.append(
                f"warm-up did not settle within {spec.max_warmup_rounds} rounds in process(es) "
                f"{', '.join(map(str, unsettled))}: their first rounds may still be warming"
            )
        if spec.replication.processes == 1:
            notes.append("one process: the interval covers the rounds of this process only, "
                         "not the variation between runs")
        discarded = sum(len(run.discarded_rounds) for run in done)
        if discarded:
            notes.append(
                f"{discarded} round(s) re-run because other work kept more than "
                f"{spec.max_other_cpus:g} logical CPUs busy"
            )
        loads = [run.other_cpu_load for run in done if run.other_cpu_load is not None]
        load = sum(loads) / len(loads) if loads else None
        if load is not None and load > CONTENDED_OTHER_CPUS:
            notes.append(
                f"other work kept {load:.2f} logical CPUs busy on average during the rounds "
                f"({os.cpu_count()} CPUs, {spec.threads} threads measured): the timings were "
                "contended; the paired ratios cancel slow drift, not fast interference"
            )
        return notes
