"""Run a suite: count every cell, time every group of variants, write each result at once.

A *cell* is one backbone x setting x variant. Counting is done cell by cell (with the training
step too when the suite's passes include ``train``); latency is measured per backbone x setting
x device x batch x pass x mode for all its variants together, in bracketed rounds, so that
each variant's Δ is taken against the plain backbone measured right around it, in the same
pass and mode.

Every finished piece of work is saved straight away through :func:`attnprof.results.write` (an
atomic rewrite of ``results.json``): an interrupted run loses nothing that finished, and
``resume=True`` does only what is missing, and measures again a cell whose fingerprint (the
source and options of its network and attention module, :mod:`attnprof.fingerprint`) changed.
A cell that fails is recorded with its error and full traceback, and the run goes on.

Latency: a *group* is one network at one setting, device and batch size; one fresh process
times every pass and mode of the group asked for, each variant in bracketed rounds with the
``none`` baseline of its own pass and mode, and each variant's entry is its latency record plus
its ratio to that baseline (see :mod:`attnprof.latency`). That ratio, not the absolute time, is
what reports quote and what ``attnprof compare`` judges: it cancels the drift of a shared
machine. The groups' processes are interleaved over the whole run
(:func:`attnprof.latency.schedule.run_groups`), each comparison stopping when its interval is
narrow enough, and a group is saved the moment it is done.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from attnprof import results
from attnprof.blame import one_line
from attnprof.errors import AttnprofError, choices
from attnprof.files import ensure_writable_dir
from attnprof.fingerprint import fingerprint
from attnprof.latency.settings import resolve_device
from attnprof.latency.spec import Condition as LatencyCondition
from attnprof.latency.spec import TimingSpec
from attnprof.networks import USER_HEAD, Network
from attnprof.passes import qualifiers
from attnprof.results import Cell, Failure, LatencyEntry, ResultsDocument
from attnprof.suite import provenance
from attnprof.suite.config import BASELINE, DEVICES, Setting, Suite, Variant
from attnprof.suite.shard import Shard

ProgressCallback = Callable[["Step"], None]


class TimingKey(NamedTuple):
    """What one timing of a cell is of: device, batch size, pass and mode (compared with
    :attr:`attnprof.results.LatencyEntry.condition`)."""

    device: str
    batch: int
    pass_name: str
    mode: str

    @property
    def label(self) -> str:
        """``cpu batch 1``, ``cpu batch 2 train compile``: the default pass and mode unsaid."""
        return " ".join([self.device, "batch", str(self.batch),
                         *qualifiers(self.pass_name, self.mode)])


@dataclass(frozen=True)
class Step:
    """One unit of work, reported to a progress display before and after it runs."""

    kind: str  # "count", "probe", "latency" (a group) or "process" (one of its processes)
    label: str
    weight: int
    done: bool = False
    failed: bool = False
    seconds: float = 0.0
    detail: Any = None
    """For ``process``: the scheduler's :class:`~attnprof.latency.schedule.Progress`."""


@dataclass(frozen=True)
class Group:
    """One network at one setting, device and batch: what one fresh process times, in every
    pass x mode (``keys``) still missing for some of its ``variants`` (``missing``)."""

    network: str
    setting: Setting
    device: str
    batch: int
    keys: tuple[TimingKey, ...]
    variants: tuple[Variant, ...]
    missing: dict[TimingKey, tuple[Variant, ...]]

    @property
    def label(self) -> str:
        return f"{self.network} {self.setting.label} {self.device} batch {self.batch}"


def timing_spec_of(suite: Suite, device: str, batch: int, input_shape: tuple[int, ...],
                   conditions: tuple[LatencyCondition, ...] | None = None) -> TimingSpec:
    """The suite's ``[latency]`` for one group, validated (refuses what cannot run here)."""
    from attnprof.latency.spec import timing_spec

    latency = suite.latency
    if conditions is None:
        conditions = tuple(LatencyCondition(p, m) for p in latency.passes for m in latency.modes)
    return timing_spec(
        device=device, threads=latency.threads or None, batch=batch, input_shape=input_shape,
        conditions=conditions, dtype=latency.dtype, channels_last=latency.channels_last,
        optimizer=latency.optimizer, sample_time=latency.sample_time, rounds=latency.rounds,
        max_warmup_rounds=latency.max_warmup_rounds, settle_tolerance=latency.settle_tolerance,
        replication=latency.replication, allocator=latency.allocator,
    )


@dataclass
class RunSummary:
    suite: str
    out_dir: Path
    results_path: Path
    counted: int = 0
    timed_groups: int = 0
    skipped: int = 0
    redone: list[str] = field(default_factory=list)
    """Cells a resumed run measured again: their code or options changed since."""
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    latency_seconds: float = 0.0
    reports: list[Path] = field(default_factory=list)


def cell_id(backbone: str, variant: str, setting: Setting) -> str:
    return f"{backbone}|{variant}|{setting.label}"


def select_variants(suite: Suite, only: Iterable[str] | None) -> Suite:
    """Keep the named variants (and always the baseline, which every Δ needs)."""
    if not only:
        return suite
    wanted = [name.strip() for name in only if name.strip()]
    known = [v.name for v in suite.variants]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise AttnprofError(
            f"--only names unknown variant(s) {', '.join(map(repr, unknown))} for suite "
            f"{suite.name!r}; valid variants: {choices(known)}"
        )
    keep = {BASELINE, *wanted}
    return replace(suite, variants=tuple(v for v in suite.variants if v.name in keep))


def select_networks(suite: Suite, names: Iterable[str] | None) -> Suite:
    """Keep the named backbones and networks of the suite (``--networks``)."""
    if not names:
        return suite
    wanted = [name.strip() for name in names if name.strip()]
    known = [name for name, _, _ in suite.networks()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise AttnprofError(
            f"--networks names unknown network(s) {', '.join(map(repr, unknown))} for suite "
            f"{suite.name!r}; valid networks: {choices(known)}"
        )
    return replace(suite, backbones=tuple(b for b in suite.backbones if b in wanted),
                   models=tuple(m for m in suite.models if m.name in wanted))


def with_replication(suite: Suite, processes: int | None, rounds: int | None,
                     target_width: float | None = None, budget: str | float | None = None
                     ) -> Suite:
    """The suite with its latency replication overridden where given (the command line's
    ``--processes``, ``--rounds``, ``--target-width``, ``--budget``), checked as the suite
    file's keys are."""
    if processes is None and rounds is None and target_width is None and budget is None:
        return suite
    from attnprof.latency.spec import replication_plan
    from attnprof.suite.config import parse_budget

    latency = suite.latency
    current = latency.replication
    rounds = latency.rounds if rounds is None else rounds
    asked = {key: value for key, value in (("processes", processes),
                                           ("target_width", target_width)) if value is not None}
    # the suite's plan with what the command line changed, checked as a new one (its level
    # and threshold kept as they are)
    plan = replication_plan(**asdict(replace(current, **asked)), rounds=rounds)
    budget_s = latency.budget_s if budget is None else parse_budget(budget, "--budget")
    return replace(suite, latency=replace(latency, replication=plan, rounds=rounds,
                                          budget_s=budget_s))


def check_device(device: str) -> None:
    """Refuse a device that cannot run here before any work is done."""
    if device not in DEVICES:
        raise AttnprofError(f"unknown device {device!r}; valid devices: {choices(DEVICES)}")
    resolve_device(device)


class SuiteRunner:
    """Runs one suite into one output folder. Build it, then call :meth:`run`."""

    def __init__(
        self,
        suite: Suite,
        out_dir: Path,
        *,
        device: str | None = None,
        skip_latency: bool = False,
        resume: bool = False,
        progress: ProgressCallback | None = None,
        shard: Shard | None = None,
    ):
        if device is not None:
            check_device(device)
            suite = replace(suite, latency=replace(suite.latency, devices=(device,)))
        elif suite.latency.enabled and not skip_latency:
            for name in suite.latency.devices:
                check_device(name)
        if suite.latency.enabled and not skip_latency:
            for name in suite.latency.devices:
                timing_spec_of(suite, name, suite.latency.batch_sizes[0], (3, 1, 1))
        self.suite = suite
        self.out_dir = ensure_writable_dir(Path(out_dir))
        self.results_path = self.out_dir / "results.json"
        self.skip_latency = skip_latency or not suite.latency.enabled
        self.shard = shard
        self.progress = progress or (lambda step: None)
        self.cells: dict[str, Cell] = {}
        self.attributions: tuple = ()
        self.previous_provenance: results.Provenance | None = None
        self.previous_declared: dict[str, dict] = {}
        if resume:
            self._load_previous()
        timed = () if self.skip_latency else suite.latency.devices
        device = next((d for d in timed if d != "cpu"), "cpu")
        self.provenance = replace(provenance.collect(suite, device),
                                  shard=None if shard is None else str(shard))

    # -- planning -------------------------------------------------------------------------

    def plan_cells(self) -> list[tuple[str, Variant, Setting]]:
        """The cells this run counts: the whole suite, or this shard's share of it."""
        planned = planned_cells(self.suite)
        if self.shard is None:
            return planned
        return self.shard.select([(name, setting.label, variant.name == BASELINE,
                                   (name, variant, setting))
                                  for name, variant, setting in planned])

    def plan_latency(self) -> list[tuple[str, Setting, TimingKey]]:
        if self.skip_latency:
            return []
        latency = self.suite.latency
        heads = latency.heads
        counted = {(name, setting.label) for name, _, setting in self.plan_cells()}
        return [
            (name, setting, TimingKey(device, batch, pass_name, mode))
            for name, _, settings in self.suite.networks()
            for setting in settings
            if (name, setting.label) in counted
            if not heads or setting.head in heads or setting.head == USER_HEAD
            for device in latency.devices
            for batch in latency.batch_sizes
            for pass_name in latency.passes
            for mode in latency.modes
        ]

    def _target(self, name: str) -> str | Network:
        """What :func:`~attnprof.backbones.build_model` takes for the network ``name``."""
        return next(target for own, target, _ in self.suite.networks() if own == name)

    def _fingerprint(self, name: str, variant: Variant, setting: Setting) -> str:
        return fingerprint(
            self._target(name), variant.attention, variant.options_for(name), setting.head,
            (self.suite.count_batch, 3, *setting.input_hw),
        )

    # -- running --------------------------------------------------------------------------

    def run(self) -> RunSummary:
        start = time.perf_counter()
        summary = RunSummary(self.suite.name, self.out_dir, self.results_path)
        for backbone, variant, setting in self.plan_cells():
            key = cell_id(backbone, variant.name, setting)
            cell = self.cells.get(key)
            current = self._fingerprint(backbone, variant, setting)
            if cell is not None and cell.fingerprint != current:
                # edited code or options: nothing measured before holds for it
                summary.redone.append(key)
                self.cells[key] = cell = replace(cell, latency=())
            elif cell is not None and cell.ok and cell.profile is not None \
                    and not self._counts_outdated(cell):
                summary.skipped += 1
                continue
            self._count(key, backbone, variant, setting, current, summary)
        groups = self._plan_groups()
        if groups and self.suite.latency.probe:
            self._probe({group.device for group in groups})
        if groups:
            self._time(groups, summary)
        summary.seconds = time.perf_counter() - start
        return summary

    def _count(
        self, key: str, backbone: str, variant: Variant, setting: Setting, fingerprint: str,
        summary,
    ) -> None:
        from attnprof.counting.breakdown import attention_split
        from attnprof.profiling import profile

        label = f"count {key}"
        self.progress(Step("count", label, 1))
        began = time.perf_counter()
        cell = self._new_cell(key, backbone, variant, setting, fingerprint)
        try:
            record = profile(
                self._target(backbone),
                variant.attention,
                input=setting.input_hw,
                head=setting.head,
                batch=self.suite.count_batch,
                conventions=[self.suite.convention(name) for name in self.suite.conventions],
                breakdown=True,
                train=self.suite.latency.counts_training,
                **variant.options_for(backbone),
            )
            # Kept: the attention part per stage and operator; a whole per-module breakdown
            # per cell would dwarf the results file (attnprof profile --by-module shows it).
            counts = {name: replace(count, breakdown=None,
                                    attention_split=attention_split(count.breakdown))
                      for name, count in record.counts.items()}
            cell = replace(cell, profile=replace(record, counts=counts))
            summary.counted += 1
        except Exception as exc:  # recorded with the cell; the run goes on
            cell = replace(cell, failure=_failure(exc))
            summary.failed.append(key)
        previous = self.cells.get(key)
        self.cells[key] = replace(cell, latency=previous.latency if previous else ())
        self._save()
        self.progress(Step("count", label, 1, True, not cell.ok, time.perf_counter() - began))

    def _latency_missing(
        self, backbone: str, setting: Setting, condition: TimingKey
    ) -> list[Variant]:
        """The counted variants of a group that still lack a timing of this condition."""
        return [
            variant
            for variant in self.suite.variants
            if variant.applies_to(backbone)
            and (cell := self.cells.get(cell_id(backbone, variant.name, setting))) is not None
            and cell.ok
            and not _has_entry(cell, condition)
        ]

    def _plan_groups(self) -> list[Group]:
        """The groups with a timing still missing, each with the pass x mode conditions and the
        variants it lacks (the baseline always among them: every ratio needs it)."""
        keys: dict[tuple[str, str, str, int], list[TimingKey]] = {}
        settings: dict[tuple[str, str, str, int], Setting] = {}
        for backbone, setting, key in self.plan_latency():
            group = (backbone, setting.label, key.device, key.batch)
            keys.setdefault(group, []).append(key)
            settings[group] = setting
        baseline = next(v for v in self.suite.variants if v.name == BASELINE)
        planned = []
        for (backbone, _, device, batch), conditions in keys.items():
            setting = settings[backbone, _, device, batch]
            missing = {key: self._latency_missing(backbone, setting, key) for key in conditions}
            for key, lacking in missing.items():
                if baseline in lacking:  # a new baseline: every Δ of its condition is redone
                    missing[key] = [v for v in self.suite.variants if v.applies_to(backbone)
                                    and (c := self.cells.get(cell_id(backbone, v.name,
                                                                     setting))) is not None
                                    and c.ok]
            wanted = [key for key in conditions if missing[key]]
            if not wanted:
                continue
            names = {v.name for key in wanted for v in missing[key]}
            variants = [v for v in self.suite.variants if v.name in names or v is baseline]
            planned.append(Group(backbone, setting, device, batch, tuple(wanted),
                                 tuple(variants), {key: tuple(missing[key]) for key in wanted}))
        return planned

    def _time(self, groups: list[Group], summary: RunSummary) -> None:
        """Time every group, interleaved; each is saved the moment it is done, and only its
        missing entries are written (a resumed run keeps what it had)."""
        from attnprof.backbones import build_model
        from attnprof.latency.replicate import GroupPlan
        from attnprof.latency.schedule import run_groups

        latency = self.suite.latency
        plans, by_label = [], {}
        for group in groups:
            shape = (group.batch, 3, *group.setting.input_hw)
            spec = timing_spec_of(self.suite, group.device, group.batch,
                                  (3, *group.setting.input_hw),
                                  tuple(LatencyCondition(k.pass_name, k.mode)
                                        for k in group.keys))
            target = self._target(group.network)
            variants = {v.name: partial(build_model, target, v.attention,
                                        head=group.setting.head, input_shape=shape,
                                        **v.options_for(group.network))
                        for v in group.variants}
            compared = {LatencyCondition(k.pass_name, k.mode):
                        tuple(v.name for v in group.missing[k] if v.name != BASELINE)
                        for k in group.keys}
            plan = GroupPlan(group.label, variants, BASELINE, spec, compared)
            plans.append(plan)
            by_label[group.label] = group
            self.progress(Step("latency", group.label, len(group.variants)))
        began = time.perf_counter()

        def done(plan, timing) -> None:
            group = by_label[plan.label]
            failed = self._save_group(group, timing)
            summary.timed_groups += 1
            if failed:
                summary.failed.append(f"latency {group.label}")
            self.progress(Step("latency", group.label, len(group.variants), True, failed,
                               timing.wall_s))

        def report(event) -> None:
            self.progress(Step("process", event.group, 0, detail=event))

        timings = {}

        def kept(plan, timing) -> None:
            timings[plan.label] = timing
            done(plan, timing)

        with tempfile.TemporaryDirectory(prefix="attnprof-build-") as folder:
            run_groups(plans, budget_s=latency.budget_s, progress=report, on_done=kept,
                       folder=folder)
            summary.latency_seconds = time.perf_counter() - began
            if latency.attribution:
                for group, plan in zip(groups, plans, strict=True):
                    self._attribute(group, plan, timings.get(group.label), summary)

    def _attribute(self, group: Group, plan, timing, summary: RunSummary) -> None:
        """Profile a CPU inference group once per mode that has a profiler, each in a fresh
        process of its own: where its forward time goes, operator by operator
        (:mod:`attnprof.attribution`): eager PyTorch, and ONNX Runtime's own profiler where
        the group was timed in it. What a resumed run profiled before is kept; a failure is
        recorded and the run goes on."""
        from attnprof.attribution.group import AttributionJob
        from attnprof.attribution.onnx import OnnxAttributionJob
        from attnprof.latency.records import arm_key
        from attnprof.latency.workers import WorkerFailed, run_in_fresh_process
        from attnprof.results import AttributionEntry

        if group.device != "cpu":
            return
        modes = {k.mode for k in group.keys if k.pass_name == "inference"}
        threads = plan.spec.threads
        shape = (3, *group.setting.input_hw)
        jobs = {}
        if "eager" in modes:
            jobs["eager"] = ("attnprof.attribution.group:run_job",
                             AttributionJob(plan.variants, shape, group.batch, threads, BASELINE))
        built = timing.build.built if timing is not None and timing.build else {}
        onnx = {v: built.get(arm_key("inference/onnxruntime", v)) for v in plan.variants}
        if "onnxruntime" in modes and all(onnx.values()):
            jobs["onnxruntime"] = ("attnprof.attribution.onnx:run_job",
                                   OnnxAttributionJob(plan.variants, onnx, shape, group.batch,
                                                      threads, BASELINE))
        for mode, (function, job) in jobs.items():
            if self.document().attribution(group.network, group.setting.label, mode,
                                           device=group.device, batch=group.batch):
                continue
            label = f"where the time goes: {group.label} {mode}"
            self.progress(Step("attribution", label, 0))
            began = time.perf_counter()
            entry = AttributionEntry(group.network, group.setting.label, group.device,
                                     group.batch, mode)
            try:
                found = run_in_fresh_process(function, job, allocator=plan.spec.allocator,
                                             what=f"the profiled process of {label}")
                entry = replace(entry, attribution=found)
            except WorkerFailed as failed:
                entry = replace(entry, error=failed.line, traceback=failed.traceback)
                summary.failed.append(label)
            where = (entry.network, entry.setting, entry.device, entry.batch, mode)
            kept = tuple(a for a in self.attributions
                         if (a.network, a.setting, a.device, a.batch, a.mode) != where)
            self.attributions = (*kept, entry)
            self._save()
            self.progress(Step("attribution", label, 0, True, not entry.ok,
                               time.perf_counter() - began))

    def _save_group(self, group: Group, timing) -> bool:
        """Write the group's missing entries into its cells; whether anything failed."""
        from attnprof.latency.records import arm_key

        builds = timing.build.built if timing.build else {}
        failed = False
        for key in group.keys:
            condition = LatencyCondition(key.pass_name, key.mode)
            comparison = timing.comparisons.get(condition)
            entries: dict[str, LatencyEntry] = {}
            if comparison is not None:
                entries[BASELINE] = LatencyEntry.measured(
                    comparison.baseline_record, comparison.baseline_ratio, comparison.notes,
                    builds.get(arm_key(condition.label, BASELINE)))
                for item in comparison.results:
                    entries[item.name] = LatencyEntry.measured(
                        item.record, item.ratio, comparison.notes,
                        builds.get(arm_key(condition.label, item.name)))
            for variant in group.missing[key]:
                entry = entries.get(variant.name)
                if entry is None:
                    failure = timing.failures.get((condition, variant.name))
                    if failure is None:  # the baseline: every variant of its condition failed
                        found = [f for (c, _), f in timing.failures.items() if c == condition]
                        failure = found[0] if found else None
                        prefix = f"no variant of {condition.label} could be timed: "
                    else:
                        prefix = ""
                    error = Failure(prefix + (failure.error if failure else "not timed"),
                                    failure.traceback if failure else None)
                    entry = LatencyEntry.failed(key, error, self.suite.latency.threads or None,
                                                builds.get(arm_key(condition.label,
                                                                   variant.name)))
                    failed = True
                cell_key = cell_id(group.network, variant.name, group.setting)
                cell = self.cells[cell_key]
                kept = tuple(e for e in cell.latency if e.condition != key)
                self.cells[cell_key] = replace(cell, latency=(*kept, entry))
        self._save()
        return failed

    def _probe(self, devices: set[str]) -> None:
        """Measure each device's limits once, before its timings, into the provenance (the
        roofline of every timed cell is drawn from them). A probe that fails leaves a note
        in the provenance and no limits: the timings do not depend on it."""
        from attnprof.machine import probe_machine

        latency = self.suite.latency
        found, notes = [], []
        for device in sorted(devices):
            label = f"probe {device} memory bandwidth and peak FLOP/s"
            self.progress(Step("probe", label, 0))
            began = time.perf_counter()
            try:
                found.append(probe_machine(device, latency.dtype, latency.threads or None))
                failed = False
            except Exception as exc:  # noted; the timings go on without a roofline
                notes.append(f"{device}: {_failure(exc).error}")
                failed = True
            self.progress(Step("probe", label, 0, True, failed, time.perf_counter() - began))
        extra = dict(self.provenance.extra)
        if notes:
            extra["machine_limits_failed"] = notes
        self.provenance = replace(self.provenance, machine_limits=tuple(found), extra=extra)
        self._save()

    # -- records --------------------------------------------------------------------------

    def _new_cell(
        self, key: str, backbone: str, variant: Variant, setting: Setting, fingerprint: str
    ) -> Cell:
        return Cell(
            id=key,
            backbone=backbone,
            variant=variant.name,
            setting=setting.label,
            attention=variant.attention,
            options=variant.options_for(backbone),
            head=setting.head,
            input=(self.suite.count_batch, 3, *setting.input_hw),
            fingerprint=fingerprint,
        )

    def document(self) -> ResultsDocument:
        cells = in_suite_order(self.suite, self.cells.values())
        return ResultsDocument(self.suite, cells, self.provenance, self.previous_provenance,
                               attributions=self.attributions)

    def _save(self) -> None:
        results.write(self.results_path, self.document())

    def _counts_outdated(self, cell: Cell) -> bool:
        """Whether a kept cell lacks a convention the suite counts now, or holds one the suite
        file declares differently now (its rules changed): then it is counted again, and its
        timings are kept (the model did not change)."""
        counted = cell.profile.counts
        if any(name not in counted for name in self.suite.conventions):
            return True
        now = {c.name: c.data for c in self.suite.declared}
        return any(self.previous_declared.get(name) != data for name, data in now.items())

    def _load_previous(self) -> None:
        if not self.results_path.exists():
            return
        previous = results.load(self.results_path)
        if previous.suite.name != self.suite.name:
            raise AttnprofError(
                f"--resume: {self.results_path} holds suite {previous.suite.name!r}, not "
                f"{self.suite.name!r}; use another --out folder or run without --resume"
            )
        shard = None if self.shard is None else str(self.shard)
        previous_shard = previous.provenance.shard if previous.provenance else None
        if previous_shard != shard:
            def said(value):
                return f"--shard {value}" if value else "the whole suite"
            raise AttnprofError(
                f"--resume: {self.results_path} holds {said(previous_shard)}, not {said(shard)}; "
                "resume with the same --shard, or use another --out folder"
            )
        self.previous_provenance = previous.provenance
        self.previous_declared = {c.name: c.data for c in previous.suite.declared}
        self.cells = {cell.id: cell for cell in previous.cells}
        self.attributions = previous.attributions


def planned_cells(suite: Suite) -> list[tuple[str, Variant, Setting]]:
    """Every cell of ``suite`` as ``(network, variant, setting)``, in suite order: network, then
    setting, then variant (the order of ``results.json`` and of the shards' shares)."""
    return [
        (name, variant, setting)
        for name, _, settings in suite.networks()
        for setting in settings
        for variant in suite.variants
        if variant.applies_to(name)
    ]


def in_suite_order(suite: Suite, cells: Iterable[Cell]) -> tuple[Cell, ...]:
    """``cells`` in the order of :func:`planned_cells` (cells the suite no longer plans last)."""
    order = {cell_id(b, v.name, s): i for i, (b, v, s) in enumerate(planned_cells(suite))}
    return tuple(sorted(cells, key=lambda c: order.get(c.id, len(order))))


def _has_entry(cell: Cell, condition: TimingKey) -> bool:
    """Whether ``cell`` holds a successful timing of this condition."""
    return any(e.condition == condition and e.ok for e in cell.latency)


def _failure(exc: BaseException) -> Failure:
    """One line for tables, and the whole traceback (the original exception of a user's code
    included) for whoever debugs it. An AttnprofError's line already says where; another
    exception gets its innermost frame, which helps locate it."""
    full = "".join(traceback.format_exception(exc)).rstrip()
    if isinstance(exc, AttnprofError):
        return Failure(str(exc), full)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return Failure(f"{one_line(exc)}{where}", full)
