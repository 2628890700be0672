"""Results in, tables out: the computing half of the reports (no formatting here).

Caveat first: every Δ% is taken against the ``none`` baseline *of the same backbone and setting*;
a cell whose baseline failed or is missing gets no Δ, never a Δ against something else. Latency
Δ% comes from the paired per-round ratios the timer recorded (the baseline was timed in the same
rounds), with their 95% confidence interval; only when a record has no ratio is it derived from
the two medians, and then it has no interval.

Everything here reads a validated :class:`~attnprof.results.ResultsDocument`.
:func:`cell_frame` is the one-row-per-cell table behind the CSV, the Markdown, the plot and the
terminal summary. Its columns are named by the column contract (:mod:`attnprof.report.columns`),
each with its unit as a suffix (``_count``, ``_MAC``, ``_FLOP``, ``_bytes``, ``_FLOP_per_byte``,
``_ms``, ``_pct``, ``_images_per_s``), never a bare "FLOPs".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from attnprof.counting.conventions import CONVENTIONS
from attnprof.latency import modes as _modes
from attnprof.passes import qualifiers
from attnprof.report import columns
from attnprof.report.columns import Column
from attnprof.results import Cell, LatencyEntry, ResultsDocument
from attnprof.suite.config import BASELINE

UNIT_SUFFIXES = ("_count", "_pct", "_MAC", "_FLOP", "_bytes", "_FLOP_per_byte",
                 "_MAC_per_byte", "_ms", "_images_per_s", "_pvalue", "_ratio", "_s")
"""Every numeric column of :func:`cell_frame` ends with one of these."""


# -- the shape of a results document ------------------------------------------------------------


@dataclass(frozen=True)
class LatencyKey:
    """One timing condition: device, batch size, pass and mode (and threads, where a suite
    mixes them). The default pass and mode (``inference``, ``eager``) go unsaid in labels and
    columns, so a forward-only file reads as it always did."""

    device: str
    batch: int
    threads: int | None = None
    pass_name: str = "inference"
    mode: str = "eager"
    machine: str | None = None
    """The machine's label in a document merged from several (``A``, ``B``, ...): the column
    groups of a merged report are per machine and device."""

    @property
    def _extra(self) -> list[str]:
        return qualifiers(self.pass_name, self.mode)

    @property
    def _machine(self) -> list[str]:
        return [self.machine] if self.machine else []

    @property
    def column(self) -> str:
        """Column prefix in the CSV: ``cpu_b1`` (``cpu_t4_b1`` when threads differ,
        ``cpu_b2_train_compile`` for a compiled training step)."""
        threads = "" if self.threads is None else f"_t{self.threads}"
        return "_".join([*self._machine, f"{self.device}{threads}_b{self.batch}", *self._extra])

    @property
    def label(self) -> str:
        """Human label: ``cpu b1`` (``cpu 4 threads b1``, ``cpu b2 train compile``)."""
        threads = "" if self.threads is None else f" {self.threads} threads"
        return " ".join([*self._machine, f"{self.device}{threads} b{self.batch}", *self._extra])

    @property
    def phrase(self) -> str:
        """In a sentence: ``cpu at batch 1`` (``cpu at batch 2, train, compile``)."""
        threads = "" if self.threads is None else f" with {self.threads} threads"
        where = [f"machine {self.machine}"] if self.machine else []
        return ", ".join([*where, f"{self.device}{threads} at batch {self.batch}", *self._extra])

    @property
    def train(self) -> bool:
        return self.pass_name == "train"


def _order(preferred: Iterable[str], found: Iterable[str]) -> dict[str, int]:
    names = list(dict.fromkeys([*preferred, *found]))
    return {name: i for i, name in enumerate(names)}


def ordered_cells(doc: ResultsDocument) -> list[Cell]:
    """Cells in suite order: backbone, then setting, then variant (the baseline first)."""
    suite, cells = doc.suite, doc.cells
    backbones = _order(suite.backbones, (c.backbone for c in cells))
    settings = _order((s.label for s in suite.settings), (c.setting for c in cells))
    variants = _order([BASELINE, *(v.name for v in suite.variants)], (c.variant for c in cells))
    return sorted(
        cells, key=lambda c: (backbones[c.backbone], settings[c.setting], variants[c.variant])
    )


def ok_cells(doc: ResultsDocument) -> list[Cell]:
    return [cell for cell in ordered_cells(doc) if cell.ok]


def groups(doc: ResultsDocument) -> list[tuple[str, str]]:
    """The (backbone, setting) pairs, in suite order: one results table each."""
    return list(dict.fromkeys((c.backbone, c.setting) for c in ordered_cells(doc)))


def conventions(doc: ResultsDocument) -> list[str]:
    """Conventions to show: the suite's, then any other a cell holds, in the usual order."""
    found = [name for cell in ok_cells(doc) for name in cell.profile.counts]
    names = list(dict.fromkeys([*doc.suite.conventions, *found]))
    rank = {name: i for i, name in enumerate(CONVENTIONS)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))


def convention_unit(doc: ResultsDocument, convention: str) -> str:
    """``MAC`` or ``FLOP``: what the cells recorded (validated to agree), else the table's."""
    for cell in ok_cells(doc):
        if convention in cell.profile.counts:
            return cell.profile.counts[convention].unit
    known = CONVENTIONS.get(convention)
    return known.unit if known else "MAC"


def counts_bytes(doc: ResultsDocument, convention: str) -> bool:
    """Whether ``convention`` counts the bytes moved, as it declares it: the suite's own
    declaration (stored in the file), else the registry's, else what its counts hold."""
    for declared in doc.suite.declared:
        if declared.name == convention:
            return declared.bytes
    known = CONVENTIONS.get(convention)
    if known is not None:
        return known.bytes
    return any(cell.profile.counts[convention].bytes is not None for cell in ok_cells(doc)
               if convention in cell.profile.counts)


def byte_conventions(doc: ResultsDocument) -> list[str]:
    """The shown conventions that count bytes, in :func:`conventions` order."""
    return [name for name in conventions(doc) if counts_bytes(doc, name)]


def convention_summary(doc: ResultsDocument, convention: str) -> str:
    """What ``convention`` counts, in one sentence: the suite's own declaration (stored in the
    file), else the built-in's, else the description its counts stored."""
    for declared in doc.suite.declared:
        if declared.name == convention:
            return f"{declared.shown} (declared in {declared.origin or 'the suite file'})"
    known = CONVENTIONS.get(convention)
    if known is not None:
        return known.shown
    for cell in ok_cells(doc):
        if convention in cell.profile.counts and cell.profile.counts[convention].description:
            return cell.profile.counts[convention].description
    return "a counter this report does not describe"


def latency_keys(doc: ResultsDocument) -> list[LatencyKey]:
    """Every timing condition found in the cells, ordered by machine (in a merged document),
    device, batch size, pass (the forward first) and mode (eager first).

    Threads become part of the key only when one condition was timed with more than one
    thread count in this file.
    """
    found: dict[tuple[str | None, str, int, str, str], set] = {}
    for cell in ok_cells(doc):
        for e in cell.latency:
            threads = found.setdefault((e.machine, *e.condition), set())
            if e.ok and e.threads is not None:
                threads.add(e.threads)  # a failed timing may not record its threads
    keys = []
    for (machine, device, batch, pass_name, mode), thread_set in found.items():
        if len(thread_set) > 1:
            keys += [LatencyKey(device, batch, t, pass_name, mode, machine) for t in thread_set]
        else:
            keys.append(LatencyKey(device, batch, None, pass_name, mode, machine))
    return sorted(keys, key=lambda k: (k.machine or "", k.device != "cpu", k.device, k.batch,
                                       k.pass_name != "inference", k.mode != "eager",
                                       k.threads or 0))


def latency_entry(cell: Cell, key: LatencyKey) -> LatencyEntry | None:
    for entry in cell.latency:
        if entry.machine == key.machine \
                and entry.condition == (key.device, key.batch, key.pass_name, key.mode) and (
            key.threads is None or entry.threads in (key.threads, None)
        ):
            return entry
    return None


def builds(entry: LatencyEntry) -> bool:
    """Whether the entry's mode builds once per run: it recorded a build, or this install
    says the mode builds (a mode it does not know builds only if a build was recorded)."""
    if entry.build is not None:
        return True
    mode = _modes.MODES.get(entry.mode)
    return mode is not None and mode.builds


def failed_latency(doc: ResultsDocument) -> list[tuple[Cell, LatencyEntry]]:
    """(cell, entry) for every timing that failed in a cell whose counting succeeded."""
    return [(cell, entry) for cell in ok_cells(doc) for entry in cell.latency if not entry.ok]


# -- the one-row-per-cell table -----------------------------------------------------------------


def delta_pct(value: float | None, base: float | None) -> float | None:
    """``(value - base) / base`` in percent; ``None`` when either is missing or base is 0."""
    if value is None or base is None or not _finite(value) or not _finite(base) or base == 0:
        return None
    return (value - base) / base * 100.0


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any) -> float | None:
    return float(x) if _finite(x) else None


def baselines(doc: ResultsDocument) -> dict[tuple[str, str], Cell]:
    """The ok ``none`` cell of each (backbone, setting) that has one."""
    return {(c.backbone, c.setting): c for c in ok_cells(doc) if c.is_baseline}


def latency_delta(
    cell: Cell, base: Cell | None, key: LatencyKey
) -> tuple[float | None, tuple[float, float] | None]:
    """Δ latency % and its 95% CI: the recorded paired ratio, else from the medians (no CI)."""
    entry = latency_entry(cell, key)
    if entry is None or not entry.ok:
        return None, None
    if cell.is_baseline:
        return 0.0, None
    ratio = entry.ratio
    if ratio is not None and _finite(ratio.delta_pct):
        ci = ratio.delta_ci95_pct
        interval = (float(ci[0]), float(ci[1])) if ci and all(map(_finite, ci)) else None
        return float(ratio.delta_pct), interval
    base_entry = latency_entry(base, key) if base else None
    if base_entry is None or not base_entry.ok:
        return None, None
    return delta_pct(_num(entry.median_ms), _num(base_entry.median_ms)), None


def cell_frame(doc: ResultsDocument) -> pd.DataFrame:
    """One row per cell, numbers only (no formatting), with the unit in every numeric column.

    Columns (named by :mod:`attnprof.report.columns`): ``id, backbone, setting, variant,
    attention, status``; ``params_count``, ``params_delta_pct``, ``attention_params_count``; per
    convention ``<conv>_<unit>``, ``<conv>_delta_pct``, ``<conv>_attention_<unit>`` (and, for
    each convention that declares it counts bytes, such as ``full``, ``<conv>_bytes``, their Δ,
    ``<conv>_attention_bytes`` and the arithmetic intensity of the whole model and of the
    attention alone); per timing condition ``<device>_b<batch>_median_ms``, ``_iqr_ms``,
    ``_ci95_lo_ms``, ``_ci95_hi_ms``, ``_delta_pct``, ``_delta_ci95_lo_pct``,
    ``_delta_ci95_hi_pct``, ``_images_per_s``, ``_peak_mem_bytes``, and what stands behind the
    interval: ``_ci_over`` (processes or rounds), ``_processes_count``, ``_rounds_count`` (in
    all), ``_disagreement_pvalue`` (Kruskal-Wallis across processes) and ``_stopped`` (why no
    more processes were taken), with what the mode built once per run: ``_build_s`` and
    ``_output_check``; finally, where any cell's output was not finite, ``nonfinite_output``
    (where it first held NaN or inf on the profiling input, empty for the finite ones), and
    ``error``. Failed cells carry only their identity and error.
    """
    return cell_table(doc)[0]


def cell_table(doc: ResultsDocument) -> tuple[pd.DataFrame, tuple[Column, ...]]:
    """:func:`cell_frame` and its columns' contract (:class:`~attnprof.report.columns.Column`),
    in the frame's order."""
    names = conventions(doc)
    units = {name: convention_unit(doc, name) for name in names}
    moved = set(byte_conventions(doc))
    own_params = {name for name in names for cell in ok_cells(doc)
                  if (record := cell.profile.counts.get(name)) is not None
                  and record.reported_params is not None}
    keys = latency_keys(doc)
    base_of = baselines(doc)
    trained = any(c.profile.training is not None for c in ok_cells(doc))
    flagged = any(c.profile.nonfinite is not None for c in ok_cells(doc))
    built = {key for key in keys for cell in ok_cells(doc)
             if (entry := latency_entry(cell, key)) is not None and builds(entry)}
    rows = [_row(cell, base_of.get((cell.backbone, cell.setting)), names, units, keys, trained,
                 moved, flagged, built, own_params)
            for cell in ordered_cells(doc)]
    contract = tuple(column for column, _ in rows[0]) if rows else (
        columns.ID, columns.BACKBONE, columns.SETTING, columns.VARIANT, columns.STATUS)
    frame = pd.DataFrame([{column.key: value for column, value in row} for row in rows],
                         columns=[column.key for column in contract])
    for column in contract:
        if column.numeric:
            frame[column.key] = pd.to_numeric(frame[column.key],
                                              errors="coerce").astype("float64")
    return frame, contract


def _row(cell: Cell, base: Cell | None, names: list[str], units: dict[str, str],
         keys: list[LatencyKey], trained: bool = False,
         moved: set[str] = frozenset(), flagged: bool = False,
         built: set[LatencyKey] = frozenset(), own_params: set[str] = frozenset()
         ) -> list[tuple[Column, Any]]:
    row: list[tuple[Column, Any]] = [
        (columns.ID, cell.id), (columns.BACKBONE, cell.backbone),
        (columns.SETTING, cell.setting), (columns.VARIANT, cell.variant),
        (columns.ATTENTION, cell.attention or cell.variant), (columns.STATUS, cell.status),
    ]
    put = row.append
    profile = cell.profile
    base_profile = base.profile if base is not None and cell.ok else None
    params = _num(profile.params) if profile else None
    put((columns.PARAMS, params))
    put((columns.PARAMS_DELTA,
         delta_pct(params, _num(base_profile.params) if base_profile else None)))
    put((columns.ATTENTION_PARAMS, _num(profile.attention_params) if profile else None))
    counts = profile.counts if profile else {}
    base_counts = base_profile.counts if base_profile else {}
    for name in names:
        unit = units[name]
        record, base_record = counts.get(name), base_counts.get(name)
        value = _num(record.value) if record else None
        put((columns.count(name, unit), value))
        base_value = _num(base_record.value) if base_record else None
        put((columns.count_delta(name), delta_pct(value, base_value)))
        attention = _num(record.attention) if record else None
        put((columns.attention_count(name, unit), attention))
        if name in own_params:  # the convention's tool reports a parameter count of its own
            put((columns.reported_params(name), _num(record.reported_params) if record else None))
        if name in moved:  # the convention declares that it counts bytes
            traffic = _num(record.bytes) if record else None
            attention_traffic = _num(record.attention_bytes) if record else None
            put((columns.bytes_moved(name), traffic))
            put((columns.bytes_delta(name),
                 delta_pct(traffic, _num(base_record.bytes) if base_record else None)))
            put((columns.attention_bytes(name), attention_traffic))
            put((columns.intensity(name, unit), _ratio(value, traffic)))
            put((columns.attention_intensity(name, unit), _ratio(attention, attention_traffic)))
    if trained:
        row += _training_columns(profile, base_profile)
    for key in keys:
        row += _timing_columns(cell, base, key, key in built)
    if flagged:
        nonfinite = profile.nonfinite if profile else None
        put((columns.NONFINITE, nonfinite.describe() if nonfinite else None))
    put((columns.ERROR, cell.failure.error if cell.failure else _latency_errors(cell) or None))
    return row


def _timing_columns(cell: Cell, base: Cell | None, key: LatencyKey, built: bool = False
                    ) -> list[tuple[Column, Any]]:
    """One timing condition's columns of one row (:func:`columns.timing`); what the mode
    built only where ``built`` (some cell's mode builds under ``key``)."""
    entry = latency_entry(cell, key) if cell.ok else None
    record = entry.record if entry is not None and entry.ok else None
    ci = (record.ci95_ms if record else None) or (None, None)
    delta, delta_ci = latency_delta(cell, base, key) if cell.ok else (None, None)
    ratio = entry.ratio if record else None
    build = entry.build if entry is not None else None
    check = build.check if build is not None else None
    c = columns.timing(key)
    made = [
        (c.build, _num(build.build_s) if build is not None else None),
        (c.check, None if check is None else "ok" if check.ok else "failed"),
    ] if built else []
    return [
        (c.median, _num(record.median_ms) if record else None),
        (c.iqr, _num(record.iqr_ms) if record else None),
        (c.ci_lo, _num(ci[0])),
        (c.ci_hi, _num(ci[1])),
        (c.delta, delta),
        (c.delta_lo, delta_ci[0] if delta_ci else None),
        (c.delta_hi, delta_ci[1] if delta_ci else None),
        (c.throughput, _num(record.images_per_s) if record else None),
        (c.peak_memory, _num(record.peak_mem_bytes) if record else None),
        (c.ci_over, ratio.ci_over if ratio else None),
        (c.processes, ratio.processes if ratio else None),
        (c.rounds, len(ratio.values) if ratio else None),
        (c.disagreement, ratio.disagreement_p if ratio else None),
        (c.stopped, ratio.stopped if ratio else None),
        *made,
    ]


def _training_columns(profile, base_profile) -> list[tuple[Column, Any]]:
    """The training step's columns of one row: each figure, and its Δ% where it has one."""
    training = profile.training if profile else None
    base = base_profile.training if base_profile else None
    row: list[tuple[Column, Any]] = []
    for column, read in columns.TRAINING.items():
        value = _num(read(training)) if training else None
        row.append((column, value))
        if column in columns.TRAINING_DELTAS:
            base_value = _num(read(base)) if base else None
            row.append((columns.TRAINING_DELTAS[column], delta_pct(value, base_value)))
    row.append((columns.TRAIN_RATIO, training.backward_ratio if training else None))
    return row


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _latency_errors(cell: Cell) -> str:
    return "; ".join(
        f"latency {LatencyKey(e.device, e.batch, None, e.pass_name, e.mode, e.machine).label}: "
        f"{e.failure.error}" for e in cell.latency if not e.ok
    )


def row_value(row: dict, key: str) -> float | None:
    """A frame row's figure, ``None`` where it is missing (NaN or absent)."""
    found = row.get(key)
    if found is None or (isinstance(found, float) and pd.isna(found)):
        return None
    return float(found)


def delta_ms(row: dict, base: dict | None, key: LatencyKey) -> float | None:
    """A variant's Δ latency in ms under ``key``: the baseline's median times the paired Δ%,
    so it keeps the pairing's robustness to drift (``None`` where either is missing)."""
    if base is None:
        return None
    timing = columns.timing(key)
    base_ms, delta = row_value(base, timing.median.key), row_value(row, timing.delta.key)
    return None if base_ms is None or delta is None else base_ms * delta / 100.0


def group_frame(frame: pd.DataFrame, backbone: str, setting: str) -> pd.DataFrame:
    """The rows of one backbone and setting, in suite order."""
    return frame[(frame["backbone"] == backbone) & (frame["setting"] == setting)]
