"""Run a suite: count every cell, time every group of variants, write each result at once.

A *cell* is one backbone x setting x variant. Counting is done cell by cell (with the training
step too when the suite's passes include ``train``); latency is measured per backbone x setting
x device x batch x pass x mode for all its variants together, in interleaved rounds, so that
each variant's Δ is taken against the plain backbone measured in the same rounds, pass and
mode.

Every finished piece of work is saved straight away through :func:`attnprof.results.write` (an
atomic rewrite of ``results.json``): an interrupted run loses nothing that finished, and
``resume=True`` does only what is missing, and measures again a cell whose fingerprint (the
source and options of its network and attention module, :mod:`attnprof.fingerprint`) changed.
A cell that fails is recorded with its error and full traceback, and the run goes on.

Latency: variants are timed in interleaved rounds with the ``none`` baseline (see
:func:`attnprof.latency.paired_latency`); each variant's entry is its latency record plus its
ratio to the baseline measured in the same rounds. That ratio, not the absolute time, is what
reports quote and what ``attnprof compare`` judges: it cancels the drift of a shared machine.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

from attnprof import results
from attnprof.blame import one_line
from attnprof.errors import AttnprofError, choices
from attnprof.files import ensure_writable_dir
from attnprof.fingerprint import fingerprint
from attnprof.latency.settings import compile_unavailable_reason, resolve_device
from attnprof.networks import USER_HEAD, Network
from attnprof.passes import qualifiers
from attnprof.results import Cell, Failure, LatencyEntry, PairedRatio, ResultsDocument
from attnprof.suite import provenance
from attnprof.suite.config import BASELINE, DEVICES, Setting, Suite, Variant
from attnprof.suite.shard import Shard

ProgressCallback = Callable[["Step"], None]


class Condition(NamedTuple):
    """What one paired comparison times: device, batch size, pass and mode (compared with
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

    kind: str  # "count", "probe" or "latency"
    label: str
    weight: int
    done: bool = False
    failed: bool = False
    seconds: float = 0.0


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


def with_replication(suite: Suite, processes: int | None, rounds: int | None) -> Suite:
    """The suite with its latency processes and rounds per process overridden where given."""
    if processes is None and rounds is None:
        return suite
    from attnprof.latency.paired import check_processes

    latency = suite.latency
    processes, rounds = check_processes(
        latency.processes if processes is None else processes,
        latency.rounds if rounds is None else rounds,
    )
    return replace(suite, latency=replace(latency, processes=processes, rounds=rounds))


def check_device(device: str) -> None:
    """Refuse a device that cannot run here before any work is done."""
    if device not in DEVICES:
        raise AttnprofError(f"unknown device {device!r}; valid devices: {choices(DEVICES)}")
    resolve_device(device)


def check_compile(device: str) -> None:
    """Refuse the ``compile`` mode where torch.compile cannot run, before any work is done."""
    reason = compile_unavailable_reason(resolve_device(device))
    if reason is not None:
        raise AttnprofError(
            f"mode 'compile' cannot run on {device} here: {reason}; time with modes = "
            "[\"eager\"] (or --skip-latency)"
        )


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
        if suite.latency.enabled and not skip_latency and "compile" in suite.latency.modes:
            for name in suite.latency.devices:
                check_compile(name)
        self.suite = suite
        self.out_dir = ensure_writable_dir(Path(out_dir))
        self.results_path = self.out_dir / "results.json"
        self.skip_latency = skip_latency or not suite.latency.enabled
        self.shard = shard
        self.progress = progress or (lambda step: None)
        self.cells: dict[str, Cell] = {}
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

    def plan_latency(self) -> list[tuple[str, Setting, Condition]]:
        if self.skip_latency:
            return []
        latency = self.suite.latency
        heads = latency.heads
        counted = {(name, setting.label) for name, _, setting in self.plan_cells()}
        return [
            (name, setting, Condition(device, batch, pass_name, mode))
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
        planned = [(backbone, setting, condition, missing)
                   for backbone, setting, condition in self.plan_latency()
                   if (missing := self._latency_missing(backbone, setting, condition))]
        if planned:
            self._probe({condition.device for _, _, condition, _ in planned})
        for backbone, setting, condition, missing in planned:
            self._time(backbone, setting, condition, missing, summary)
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
        self, backbone: str, setting: Setting, condition: Condition
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

    def _time(self, backbone, setting, condition: Condition, missing: list[Variant],
              summary) -> None:
        """Time ``missing`` interleaved with the baseline; only ``missing`` get new entries.

        The baseline is always measured in the same rounds (every ratio needs it), even when a
        resumed run already holds its timing; that earlier timing is then kept.
        """
        baseline = next(v for v in self.suite.variants if v.name == BASELINE)
        group = missing if baseline in missing else [baseline, *missing]
        label = f"latency {backbone} {setting.label} {condition.label}"
        self.progress(Step("latency", label, len(group)))
        began = time.perf_counter()
        try:
            entries = self._time_group(backbone, setting, group, condition)
            failed = False
        except Exception as exc:  # the group shares one baseline: every variant gets the error
            failure = LatencyEntry(condition.device, condition.batch, failure=_failure(exc),
                                   pass_name=condition.pass_name, mode=condition.mode)
            entries = {variant.name: failure for variant in group}
            failed = True
            summary.failed.append(label)
        for variant in missing:
            key = cell_id(backbone, variant.name, setting)
            cell = self.cells[key]
            kept = tuple(  # drops an earlier failure of this condition
                e for e in cell.latency if e.condition != condition
            )
            self.cells[key] = replace(cell, latency=(*kept, entries[variant.name]))
        self._save()
        summary.timed_groups += 1
        seconds = time.perf_counter() - began
        self.progress(Step("latency", label, len(group), True, failed, seconds))

    def _time_group(
        self, backbone: str, setting: Setting, variants: list[Variant], condition: Condition
    ) -> dict[str, LatencyEntry]:
        """Time ``variants`` (the baseline among them); one entry per variant name."""
        from attnprof.backbones import build_model
        from attnprof.latency import paired_latency

        latency = self.suite.latency
        target = self._target(backbone)
        batch = condition.batch
        shape = (batch, 3, *setting.input_hw)
        comparison = paired_latency(
            {
                v.name: partial(build_model, target, v.attention, head=setting.head,
                                input_shape=shape, **v.options_for(backbone))
                for v in variants
            },
            (3, *setting.input_hw),
            baseline=BASELINE,
            processes=latency.processes,
            rounds=latency.rounds,
            max_warmup_rounds=latency.max_warmup_rounds,
            settle_tolerance=latency.settle_tolerance,
            batch=batch,
            device=condition.device,
            threads=latency.threads or None,
            dtype=latency.dtype,
            channels_last=latency.channels_last,
            compile=condition.mode == "compile",
            pass_name=condition.pass_name,
            optimizer=latency.optimizer,
            sample_time=latency.sample_time,
        )
        first = comparison.results[0]  # every variant ran in the same processes and rounds
        own = PairedRatio.identity(BASELINE, first.rounds_per_process, first.ci_over)
        entries = {BASELINE: LatencyEntry.measured(comparison.baseline_record, own,
                                                   comparison.notes)}
        for result in comparison.results:
            entries[result.name] = LatencyEntry.measured(
                result.record, PairedRatio.of(result), comparison.notes
            )
        return entries

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
        return ResultsDocument(self.suite, cells, self.provenance, self.previous_provenance)

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


def _has_entry(cell: Cell, condition: Condition) -> bool:
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
