"""The answer first: per backbone and setting, each variant's Δ params, Δ MACs, Δ bytes and Δ
latency in every pass, mode and runtime, each judged against the claim, and the verdict.

Caveats first: a count's verdict is exact, a latency's rests on its 95% interval
(:mod:`attnprof.report.claims`); and an interval is only as good as what stands behind it, so
every latency cell carries how many fresh processes (of how many rounds) it comes from and why
no more were taken (:data:`attnprof.latency.records.STOP_REASONS`; unknown in files written
before it was recorded).

A verdict table stays narrow: at most :data:`MAX_LATENCY_COLUMNS` timing conditions in one
table. With more, a backbone and setting gets one table per machine, device, threads and
batch size, and one of those still too wide one per pass (:func:`split_conditions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from attnprof.latency.stats import disagree
from attnprof.report import columns as c
from attnprof.report.claims import CellClaims, ClaimCheck, Outcome
from attnprof.report.tables import LatencyKey, latency_entry, row_value
from attnprof.results import Cell
from attnprof.suite.config import BASELINE

MAX_LATENCY_COLUMNS = 5
"""The most timing conditions one verdict table shows (its other columns are five)."""

NONFINITE_MARK = "⚠"
"""Beside a variant whose output was not finite on the profiling input."""
DISAGREE_MARK = "‡"
"""Beside an interval whose processes disagree beyond their rounds' noise."""


@dataclass(frozen=True)
class LatencyCell:
    """One variant's timing in one condition: its judged Δ (``None`` when it has none) and
    what stands behind it."""

    check: ClaimCheck | None
    processes: int | None = None
    rounds_per_process: tuple[int, ...] = ()
    design: str | None = None
    stopped: str | None = None
    disagree: bool = False
    failed: bool = False

    @property
    def failed_text(self) -> str:
        return "timing failed" if self.failed else ""

    @property
    def behind(self) -> str:
        """``6 proc. × 2 rounds · decided``; ``1 proc. × 6 rounds``; ``failed``."""
        if self.failed:
            return "failed"
        if self.processes is None:
            return "—"
        rounds = sorted(set(self.rounds_per_process))
        if len(rounds) == 1:
            text = f"{self.processes} proc. × {rounds[0]} rounds"
        else:
            text = f"{self.processes} proc., {sum(self.rounds_per_process)} rounds"
        if self.stopped:
            text += f" · {self.stopped}"
        return text + (f" {DISAGREE_MARK}" if self.disagree else "")


@dataclass(frozen=True)
class VerdictRow:
    """One variant of one backbone and setting (the baseline too: its status shows)."""

    cell_id: str
    variant: str
    baseline: bool
    status: str
    """``ok``, ``partial`` (counted, but a timing failed) or ``failed``."""
    params: ClaimCheck | None = None
    macs: ClaimCheck | None = None
    bytes_pct: float | None = None
    latency: dict[LatencyKey, LatencyCell] = field(default_factory=dict)
    nonfinite: bool = False

    @property
    def label(self) -> str:
        label = self.variant + (" (baseline)" if self.baseline else "")
        label += " (failed)" if self.status == "failed" else ""
        return label + (f" {NONFINITE_MARK} non-finite output" if self.nonfinite else "")

    def verdict(self, keys: Sequence[LatencyKey], unit: str) -> str:
        """Over this row's counts and the timings of ``keys``: ``holds``, ``refuted: params,
        latency 2/3``, ``refuted: params; inconclusive: latency``, ``holds (counts; not timed)``,
        ``timing failed 1/3`` beside the rest when a timing failed; ``baseline``, ``failed``."""
        if self.status == "failed":
            return "failed"
        if self.baseline:
            return "baseline"
        timed = [cell.check for k in keys if (cell := self.latency.get(k)) and cell.check]
        judged = (("params", [self.params]), (f"{unit}s", [self.macs]), ("latency", timed))
        said: dict[Outcome, list[str]] = {Outcome.REFUTED: [], Outcome.INCONCLUSIVE: []}
        anything = False
        for name, checks in judged:
            found = [x for x in checks if x is not None and x.outcome is not Outcome.NOT_MEASURED]
            anything = anything or bool(found)
            for outcome, names in said.items():
                hits = sum(x.outcome is outcome for x in found)
                if hits:
                    names.append(name if hits == len(found) else f"{name} {hits}/{len(found)}")
        parts = [f"{outcome.value}: {', '.join(names)}" for outcome, names in said.items()
                 if names]
        failed = [k for k in keys if (cell := self.latency.get(k)) and cell.failed]
        if failed:  # never "holds" over a timing that did not happen
            parts.append("timing failed" + ("" if len(failed) == len(keys)
                                            else f" {len(failed)}/{len(keys)}"))
        if parts:
            return "; ".join(parts)
        if not anything:
            return "—"
        return "holds" if timed else "holds (counts; not timed)"


@dataclass(frozen=True)
class VerdictTable:
    """The verdict of one backbone and setting over some of its timing conditions."""

    backbone: str
    setting: str
    keys: tuple[LatencyKey, ...]
    rows: tuple[VerdictRow, ...]
    part: str = ""
    """What this table's conditions share when a backbone and setting needed several
    (``cpu b1``); empty when one table holds them all."""


def split_conditions(keys: Sequence[LatencyKey]) -> list[tuple[str, tuple[LatencyKey, ...]]]:
    """``keys`` in tables of at most :data:`MAX_LATENCY_COLUMNS`: all in one when they fit,
    else one per machine, device, threads and batch, then per pass, then in runs."""
    keys = tuple(keys)
    if len(keys) <= MAX_LATENCY_COLUMNS:
        return [("", keys)]
    out = []
    where = dict.fromkeys((k.machine, k.device, k.threads, k.batch) for k in keys)
    for machine, device, threads, batch in where:
        same = tuple(k for k in keys if (k.machine, k.device, k.threads, k.batch)
                     == (machine, device, threads, batch))
        head = LatencyKey(device, batch, threads, machine=machine).label
        if len(same) <= MAX_LATENCY_COLUMNS:
            out.append((head, same))
            continue
        for pass_name in dict.fromkeys(k.pass_name for k in same):
            run = tuple(k for k in same if k.pass_name == pass_name)
            for start in range(0, len(run), MAX_LATENCY_COLUMNS):
                out.append((f"{head} {pass_name}", run[start:start + MAX_LATENCY_COLUMNS]))
    return out


def _latency_cell(cell: Cell, key: LatencyKey, check: ClaimCheck | None) -> LatencyCell | None:
    entry = latency_entry(cell, key)
    if entry is None:
        return None
    if not entry.ok:
        return LatencyCell(None, failed=True)
    ratio = entry.ratio
    if ratio is None:
        return LatencyCell(check)
    return LatencyCell(check, ratio.processes, tuple(ratio.rounds_per_process), ratio.design,
                       ratio.stopped, disagree(ratio.disagreement_p))


def verdict_tables(frame: pd.DataFrame, cells: dict[str, Cell], claims: Sequence[CellClaims],
                   keys: Sequence[LatencyKey], bytes_convention: str | None
                   ) -> list[VerdictTable]:
    """One or more :class:`VerdictTable` per backbone and setting, in suite order."""
    judged = {claim.id: claim for claim in claims}
    records = frame.to_dict("records")
    out = []
    for backbone, setting in dict.fromkeys((r["backbone"], r["setting"]) for r in records):
        group = [r for r in records if (r["backbone"], r["setting"]) == (backbone, setting)]
        timed = [k for k in keys if any(latency_entry(cells[r["id"]], k) is not None
                                        for r in group)]
        rows = tuple(_row(r, cells[r["id"]], judged.get(r["id"]), timed, bytes_convention)
                     for r in group)
        for part, some in split_conditions(timed):
            out.append(VerdictTable(backbone, setting, some, rows, part))
    return out


def _row(row: dict, cell: Cell, claim: CellClaims | None, keys: Sequence[LatencyKey],
         bytes_convention: str | None) -> VerdictRow:
    if not cell.ok:
        return VerdictRow(cell.id, cell.variant, cell.is_baseline, "failed")
    partial = any(not entry.ok for entry in cell.latency)
    checks = dict(claim.latency) if claim is not None else {}
    latency = {k: found for k in keys
               if (found := _latency_cell(cell, k, checks.get(k))) is not None}
    moved = (row_value(row, c.bytes_delta(bytes_convention).key)
             if bytes_convention is not None and row["variant"] != BASELINE else None)
    return VerdictRow(
        cell.id, cell.variant, cell.is_baseline, "partial" if partial else "ok",
        claim.params if claim else None, claim.macs if claim else None, moved, latency,
        cell.profile.nonfinite is not None,
    )
