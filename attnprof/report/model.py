"""What a report says, computed once from a results document and handed to every renderer.

Caveat first: the renderers (:mod:`.markdown`, :mod:`.csv`, :mod:`.plot`, :mod:`.terminal`)
compute nothing of their own; a number they show comes from here, and each column's name,
unit and format from the column contract (:mod:`.columns`), so report.md, results.csv, the
plot and the end-of-run summary can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from attnprof.machine import MachineLimits
from attnprof.report import columns
from attnprof.report.attention import AttentionPlace, attention_places
from attnprof.report.breakdown import GroupBreakdown, group_breakdowns
from attnprof.report.builds import BuildRow, build_rows
from attnprof.report.claims import CellClaims, Gap, evaluate_claims, gap_summary
from attnprof.report.columns import Column
from attnprof.report.published import PublishedComparison, compare_published
from attnprof.report.roofline import LimitRow, limit_rows, machine_limits
from attnprof.report.runtimes import RuntimeComparison, runtime_comparisons
from attnprof.report.tables import (
    LatencyKey,
    byte_conventions,
    cell_table,
    convention_unit,
    conventions,
    groups,
    latency_keys,
    ok_cells,
    ordered_cells,
    row_value,
)
from attnprof.report.training import TrainingRow, training_rows
from attnprof.report.verdict import VerdictTable, verdict_tables
from attnprof.results import Cell, ResultsDocument
from attnprof.suite.config import Claims, Suite


@dataclass(frozen=True)
class Point:
    """One (Δ count, Δ latency) pair: a variant on one backbone, setting and timing condition.

    ``bytes_pct`` is the Δ of the bytes moved under ``full`` behind one timed call (the
    training step's for a train pass), ``None`` where they were not counted.
    """

    variant: str
    group: str  # "resnet50 fc@224x224 cpu b1"
    macs_pct: float
    latency_pct: float
    ci95_pct: tuple[float, float] | None
    bytes_pct: float | None = None
    pass_name: str = "inference"
    mode: str = "eager"


@dataclass(frozen=True)
class Report:
    """Everything the renderers show. Build it with :func:`build_report`."""

    document: ResultsDocument
    cells: tuple[Cell, ...]
    """In suite order: backbone, setting, variant (the baseline first)."""
    frame: pd.DataFrame
    """:func:`~attnprof.report.tables.cell_frame`: one row per cell, units in the columns."""
    columns: tuple[Column, ...]
    """The frame's columns as the contract names them, in order (the CSV's header)."""
    conventions: tuple[str, ...]
    units: dict[str, str]
    latency_keys: tuple[LatencyKey, ...]
    groups: tuple[tuple[str, str], ...]
    claims: tuple[CellClaims, ...]
    gaps: tuple[Gap, ...]
    published: tuple[PublishedComparison, ...]
    points: tuple[Point, ...]
    attention: tuple[AttentionPlace, ...] = ()
    """Where each variant's attention cost sits, under the claims' convention."""
    verdicts: tuple[VerdictTable, ...] = ()
    """The leading tables: per backbone and setting, each variant's deltas and verdict."""
    training: tuple[TrainingRow, ...] = ()
    runtimes: tuple[RuntimeComparison, ...] = ()
    builds: tuple[BuildRow, ...] = ()
    breakdowns: tuple[GroupBreakdown, ...] = ()
    limits: tuple[LimitRow, ...] = ()
    machine: tuple[tuple[str | None, MachineLimits], ...] = ()
    """The probed limits of each timed device, with its machine's label in a merged document."""
    byte_conventions: tuple[str, ...] = ()
    """The conventions that declare they count bytes (``full``, or a suite's own)."""

    @property
    def suite(self) -> Suite:
        return self.document.suite

    @property
    def thresholds(self) -> Claims:
        return self.document.suite.claims

    @property
    def claims_unit(self) -> str:
        """The unit of the claims' convention: ``MAC`` or ``FLOP``."""
        return self.units.get(self.thresholds.convention) or convention_unit(
            self.document, self.thresholds.convention
        )

    def cell(self, cell_id: str) -> Cell:
        return next(cell for cell in self.cells if cell.id == cell_id)


def build_report(doc: ResultsDocument) -> Report:
    """Compute every table, verdict and point of the report of ``doc``, once."""
    names = conventions(doc)
    keys = latency_keys(doc)
    frame, contract = cell_table(doc)
    thresholds = doc.suite.claims
    claims = evaluate_claims(frame, thresholds, convention_unit(doc, thresholds.convention), keys)
    rows = {row["id"]: row for row in frame.to_dict("records")}
    moved = tuple(byte_conventions(doc))
    points = tuple(
        Point(c.variant, f"{c.backbone} {c.setting} {key.label}", c.macs.delta_pct,
              verdict.delta_pct, verdict.ci95_pct, _bytes_delta(rows.get(c.id, {}), key, moved),
              key.pass_name, key.mode)
        for c in claims
        if c.macs.delta_pct is not None
        for key, verdict in c.latency
    )
    cells = tuple(ordered_cells(doc))
    by_id = {cell.id: cell for cell in cells}
    probed = machine_limits(doc)
    return Report(
        document=doc,
        cells=cells,
        frame=frame,
        columns=contract,
        conventions=tuple(names),
        units={name: convention_unit(doc, name) for name in names},
        latency_keys=tuple(keys),
        groups=tuple(groups(doc)),
        claims=tuple(claims),
        gaps=tuple(gap_summary(claims)),
        published=tuple(compare_published(doc)),
        points=points,
        attention=tuple(attention_places(doc, thresholds.convention)),
        verdicts=tuple(verdict_tables(frame, by_id, claims, keys,
                                      moved[0] if moved else None)),
        training=tuple(training_rows(frame)),
        runtimes=tuple(runtime_comparisons(
            frame, {cell.id: cell for cell in ok_cells(doc)}, tuple(keys))),
        builds=tuple(build_rows(cells, tuple(keys))),
        breakdowns=tuple(group_breakdowns(doc.attributions, frame, keys, probed)),
        limits=tuple(limit_rows(doc, frame, tuple(keys))),
        machine=probed,
        byte_conventions=moved,
    )


def _bytes_delta(row: dict, key: LatencyKey, moved: tuple[str, ...]) -> float | None:
    """Δ bytes % behind one timed call of ``key``: the training step's (counted under
    ``full``), or the forward's under the first convention that counts bytes."""
    if key.train:
        return row_value(row, columns.TRAIN_BYTES_DELTA.key)
    return row_value(row, columns.bytes_delta(moved[0]).key) if moved else None
