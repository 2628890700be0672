"""The cost beyond an eager forward: the training step, compiled execution, the machine's limits.

Caveats first: the roofline bound is drawn from the ``full`` counts, which are those of eager,
unfused execution (every op reads its inputs and writes its output): a compiler that fuses
ops moves fewer bytes than counted, so a compiled model can come closer to (or, measured
against the eager count, beat) the bound. The machine's limits are what the probe measured
on this run's machine with its thread count (:mod:`attnprof.machine`), not a datasheet. A Δ
latency in ms is the baseline's median times the paired Δ%, so it keeps the pairing's
robustness to drift; the Δ its extra bytes alone would cost is Δ bytes / bandwidth.

Everything here reads the one-row-per-cell frame (:func:`attnprof.report.tables.cell_frame`)
and the results document; the renderers only format it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pandas as pd

from attnprof.machine import MachineLimits, bytes_time_s, roofline
from attnprof.report.tables import (
    LatencyKey,
    byte_conventions,
    convention_unit,
    latency_entry,
    ok_cells,
)
from attnprof.results import Cell, ResultsDocument
from attnprof.suite.config import BASELINE


def _value(row: dict, column: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return float(value)


@dataclass(frozen=True)
class TrainingRow:
    """One cell's training step under ``full``, with its Δ against the baseline."""

    backbone: str
    setting: str
    variant: str
    flops: float | None
    flops_delta_pct: float | None
    backward_ratio: float | None
    bytes: float | None
    bytes_delta_pct: float | None
    activation_bytes: float | None
    activation_delta_pct: float | None
    attention_activation_bytes: float | None


def training_rows(frame: pd.DataFrame) -> list[TrainingRow]:
    """A row per counted cell with a training step; none when no cell counted one."""
    if "train_FLOP" not in frame.columns:
        return []
    rows = []
    for row in frame.to_dict("records"):
        if row["status"] != "ok" or _value(row, "train_FLOP") is None:
            continue
        rows.append(TrainingRow(
            row["backbone"], row["setting"], row["variant"],
            _value(row, "train_FLOP"), _value(row, "train_delta_pct"),
            _value(row, "train_backward_per_forward_ratio"),
            _value(row, "train_bytes"), _value(row, "train_bytes_delta_pct"),
            _value(row, "train_activation_bytes"),
            _value(row, "train_activation_bytes_delta_pct"),
            _value(row, "train_attention_activation_bytes"),
        ))
    return rows


# -- eager and compiled -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeRow:
    """One variant's Δ latency eager and compiled, in one pass, device and batch size.

    ``recovered_pct`` is the share of the eager overhead the compiled model no longer pays,
    ``100 * (1 - Δ compiled / Δ eager)``, given only where the eager overhead is established
    (its 95% interval above 0): a ratio to a Δ that may be 0 would be noise.
    ``compile_s`` is the median over processes of the compiled model's first call
    (compilation and one run), recorded apart from the timings.
    """

    backbone: str
    setting: str
    variant: str
    device: str
    batch: int
    pass_name: str
    eager_pct: float | None
    eager_ci: tuple[float, float] | None
    compiled_pct: float | None
    compiled_ci: tuple[float, float] | None
    compile_s: float | None

    @property
    def recovered_pct(self) -> float | None:
        if self.eager_pct is None or self.compiled_pct is None or self.eager_ci is None \
                or self.eager_ci[0] <= 0:
            return None
        return 100.0 * (1.0 - self.compiled_pct / self.eager_pct)


def _delta(row: dict, key: LatencyKey) -> tuple[float | None, tuple[float, float] | None]:
    p = key.column
    delta = _value(row, f"{p}_delta_pct")
    lo, hi = _value(row, f"{p}_delta_ci95_lo_pct"), _value(row, f"{p}_delta_ci95_hi_pct")
    return delta, (lo, hi) if lo is not None and hi is not None else None


def first_call_s(cell: Cell, key: LatencyKey) -> float | None:
    """The compile time: the build's, when the mode built once per run; else (files written
    before builds were recorded) the median first call over processes, if recorded."""
    entry = latency_entry(cell, key)
    if entry is None or not entry.ok:
        return None
    if entry.build is not None:
        return entry.build.build_s
    calls = entry.record.first_call_s
    return statistics.median(calls) if calls else None


def mode_rows(frame: pd.DataFrame, cells: dict[str, Cell],
              keys: tuple[LatencyKey, ...]) -> list[ModeRow]:
    """Eager beside compiled for every condition timed both ways; none when no such pair."""
    pairs = [(key, compiled) for key in keys if key.mode == "eager"
             for compiled in keys
             if compiled.mode == "compile"
             and (compiled.machine, compiled.device, compiled.batch, compiled.threads,
                  compiled.pass_name)
             == (key.machine, key.device, key.batch, key.threads, key.pass_name)]
    rows = []
    records = frame.to_dict("records")
    for eager, compiled in pairs:
        for row in records:
            if row["status"] != "ok" or latency_entry(cells[row["id"]], compiled) is None:
                continue  # this backbone and setting was not compiled
            e, e_ci = _delta(row, eager)
            c, c_ci = _delta(row, compiled)
            rows.append(ModeRow(row["backbone"], row["setting"], row["variant"], eager.device,
                                eager.batch, eager.pass_name, e, e_ci, c, c_ci,
                                first_call_s(cells[row["id"]], compiled)))
    return rows


# -- the machine's limits -----------------------------------------------------------------------


@dataclass(frozen=True)
class LimitRow:
    """One timed cell against the roofline of the machine it ran on.

    ``bound_ms`` is max(FLOPs / peak, bytes / bandwidth) from the ``full`` counts (the
    training step's for a train pass); ``achieved_*`` divide the same counts by the measured
    median. For a variant, ``delta_ms`` is its measured Δ latency in ms and
    ``bytes_alone_ms`` what its extra bytes alone would cost at the measured bandwidth.
    """

    backbone: str
    setting: str
    variant: str
    key: LatencyKey
    measured_ms: float
    bound_ms: float
    bound: str
    achieved_flops_per_s: float
    achieved_bytes_per_s: float
    delta_bytes: float | None = None
    bytes_alone_ms: float | None = None
    delta_ms: float | None = None

    @property
    def of_bound_pct(self) -> float:
        """How close the measured time comes to the bound: 100% is at the limit."""
        return 100.0 * self.bound_ms / self.measured_ms

    @property
    def over_bytes_alone(self) -> float | None:
        """Measured Δ over the Δ the extra bytes alone cost: 1 is bandwidth-bound (given
        where both are positive: a variant that ran faster or moved less has no such ratio)."""
        if self.delta_ms is None or not self.bytes_alone_ms or self.delta_ms <= 0 \
                or self.bytes_alone_ms <= 0:
            return None
        return self.delta_ms / self.bytes_alone_ms


def machine_limits(doc: ResultsDocument) -> tuple[tuple[str | None, MachineLimits], ...]:
    """The limits the run probed, one per device (and dtype) it timed, each with the label of
    its machine in a document merged from several (``None`` for the document's own)."""
    if doc.machines:
        return tuple((run.label, m) for run in doc.machines for m in run.provenance.machine_limits)
    provenance = doc.provenance
    return tuple((None, m) for m in provenance.machine_limits) if provenance is not None else ()


def limits_for(limits: tuple[tuple[str | None, MachineLimits], ...], key: LatencyKey,
               dtype: str) -> MachineLimits | None:
    """The limits of the machine and device ``key`` was timed on, if probed."""
    device = key.device if key.device != "cuda" else "cuda:0"
    return next((m for label, m in limits
                 if label == key.machine and m.device in (key.device, device)
                 and m.dtype == dtype), None)


def _work(row: dict, key: LatencyKey, source: str | None) -> tuple[float | None, float | None]:
    """(FLOPs, bytes) behind one timed call: the training step's (under ``full``), or the
    forward's under ``source``, the convention that counts FLOPs and bytes."""
    if key.train:
        return _value(row, "train_FLOP"), _value(row, "train_bytes")
    if source is None:
        return None, None
    return _value(row, f"{source}_FLOP"), _value(row, f"{source}_bytes")


def roofline_source(doc: ResultsDocument) -> str | None:
    """The first convention that declares it counts bytes and counts in FLOPs (``full``
    unless a suite declares another first): the machine's peak is in FLOP/s, and a MAC is
    never converted."""
    return next((name for name in byte_conventions(doc)
                 if convention_unit(doc, name) == "FLOP"), None)


def limit_rows(doc: ResultsDocument, frame: pd.DataFrame,
               keys: tuple[LatencyKey, ...]) -> list[LimitRow]:
    """Every timed cell with FLOP and byte counts, against its device's probed limits."""
    limits = machine_limits(doc)
    if not limits:
        return []
    source = roofline_source(doc)
    dtype = doc.suite.latency.dtype
    records = frame.to_dict("records")
    baseline = {(r["backbone"], r["setting"]): r for r in records
                if r["variant"] == BASELINE and r["status"] == "ok"}
    rows = []
    for key in keys:
        machine = limits_for(limits, key, dtype)
        if machine is None:
            continue
        p = key.column
        for row in records:
            measured = _value(row, f"{p}_median_ms")
            flops, moved = _work(row, key, source)
            if row["status"] != "ok" or measured is None or flops is None or moved is None:
                continue
            line = roofline(flops, moved, machine)
            extra = {}
            base = baseline.get((row["backbone"], row["setting"]))
            if base is not None and row["variant"] != BASELINE:
                base_ms = _value(base, f"{p}_median_ms")
                base_bytes = _work(base, key, source)[1]
                delta = _value(row, f"{p}_delta_pct")
                if base_bytes is not None:
                    extra["delta_bytes"] = moved - base_bytes
                    extra["bytes_alone_ms"] = math.copysign(  # a variant may move less
                        1000.0 * bytes_time_s(abs(moved - base_bytes), machine),
                        moved - base_bytes)
                if base_ms is not None and delta is not None:
                    extra["delta_ms"] = base_ms * delta / 100.0
            rows.append(LimitRow(
                row["backbone"], row["setting"], row["variant"], key, measured,
                1000.0 * line.bound_s, line.bound, flops / (measured / 1000.0),
                moved / (measured / 1000.0), **extra,
            ))
    return rows


def timed_cells(doc: ResultsDocument) -> dict[str, Cell]:
    return {cell.id: cell for cell in ok_cells(doc)}
