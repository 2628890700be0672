"""Each timed cell against the roofline of the machine it ran on.

Caveats first: the roofline bound is drawn from the counts of the first convention that counts
FLOPs and bytes (``full``): those of eager, unfused execution (every op reads its inputs and
writes its output). A compiler or runtime that fuses ops moves fewer bytes than counted, so a
compiled model can come closer to (or, measured against the eager count, beat) the bound. The
machine's limits are what the probe measured on this run's machine with its thread count
(:mod:`attnprof.machine`), not a datasheet. Counts are for the suite's counted batch, so only
timings at that batch size get a row: a bound from another batch's counts would be wrong. A
Δ latency in ms is the baseline's median times the paired Δ%, so it keeps the pairing's
robustness to drift; the Δ its extra bytes alone would cost is Δ bytes / bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from attnprof.machine import MachineLimits, bytes_time_s, roofline
from attnprof.report import columns as c
from attnprof.report.tables import (
    LatencyKey,
    byte_conventions,
    convention_unit,
    delta_ms,
    row_value,
)
from attnprof.results import ResultsDocument
from attnprof.suite.config import BASELINE


@dataclass(frozen=True)
class LimitRow:
    """One timed cell against the roofline of the machine it ran on.

    ``bound_ms`` is max(FLOPs / peak, bytes / bandwidth) from the counts (the training
    step's for a train pass); ``achieved_*`` divide the same counts by the measured median.
    For a variant, ``delta_ms`` is its measured Δ latency in ms and ``bytes_alone_ms`` what
    its extra bytes alone would cost at the measured bandwidth.
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


Limits = tuple[tuple[str | None, MachineLimits], ...]


def machine_limits(doc: ResultsDocument) -> Limits:
    """The limits the run probed, one per device (and dtype) it timed, each with the label of
    its machine in a document merged from several (``None`` for the document's own)."""
    if doc.machines:
        return tuple((run.label, m) for run in doc.machines for m in run.provenance.machine_limits)
    provenance = doc.provenance
    return tuple((None, m) for m in provenance.machine_limits) if provenance is not None else ()


def limits_for(limits: Limits, machine: str | None, device: str, dtype: str
               ) -> MachineLimits | None:
    """The probed limits of ``device`` on ``machine`` (its label; ``None``: the document's
    own), if probed."""
    cuda = device if device != "cuda" else "cuda:0"
    return next((m for label, m in limits
                 if label == machine and m.device in (device, cuda) and m.dtype == dtype), None)


def roofline_source(doc: ResultsDocument) -> str | None:
    """The first convention that declares it counts bytes and counts in FLOPs (``full``
    unless a suite declares another first): the machine's peak is in FLOP/s, and a MAC is
    never converted."""
    return next((name for name in byte_conventions(doc)
                 if convention_unit(doc, name) == "FLOP"), None)


def _work(row: dict, key: LatencyKey, source: str | None) -> tuple[float | None, float | None]:
    """(FLOPs, bytes) behind one timed call: the training step's (under ``full``), or the
    forward's under ``source``, the convention that counts FLOPs and bytes."""
    if key.train:
        return row_value(row, c.TRAIN_FLOP.key), row_value(row, c.TRAIN_BYTES.key)
    if source is None:
        return None, None
    return row_value(row, c.count(source, "FLOP").key), row_value(row, c.bytes_moved(source).key)


def other_batches(doc: ResultsDocument, keys: tuple[LatencyKey, ...]) -> tuple[int, ...]:
    """The timed batch sizes that were not counted (so no roofline row can be drawn)."""
    return tuple(sorted({k.batch for k in keys if k.batch != doc.suite.count_batch}))


def limit_rows(doc: ResultsDocument, frame: pd.DataFrame,
               keys: tuple[LatencyKey, ...]) -> list[LimitRow]:
    """Every timed cell with FLOP and byte counts at its batch size, against its device's
    probed limits."""
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
        machine = limits_for(limits, key.machine, key.device, dtype)
        if machine is None or key.batch != doc.suite.count_batch:
            continue
        median = c.timing(key).median.key
        for row in records:
            measured = row_value(row, median)
            flops, moved = _work(row, key, source)
            if row["status"] != "ok" or measured is None or flops is None or moved is None:
                continue
            line = roofline(flops, moved, machine)
            extra = {}
            base = baseline.get((row["backbone"], row["setting"]))
            if base is not None and row["variant"] != BASELINE:
                base_bytes = _work(base, key, source)[1]
                if base_bytes is not None:
                    extra["delta_bytes"] = moved - base_bytes
                    extra["bytes_alone_ms"] = math.copysign(  # a variant may move less
                        1000.0 * bytes_time_s(abs(moved - base_bytes), machine),
                        moved - base_bytes)
                found = delta_ms(row, base, key)
                if found is not None:
                    extra["delta_ms"] = found
            rows.append(LimitRow(
                row["backbone"], row["setting"], row["variant"], key, measured,
                1000.0 * line.bound_s, line.bound, flops / (measured / 1000.0),
                moved / (measured / 1000.0), **extra,
            ))
    return rows
