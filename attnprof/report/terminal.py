"""The rich summary printed at the end of ``attnprof run``: report.md's verdict tables, one
row per cell.

Built from the same verdict tables as report.md, with the headers and formats of the same
columns (:mod:`attnprof.report.columns`), so the two always agree; the terminal adds the
backbone and setting of each row and the cell's status (``ok``, ``partial`` when a timing
failed, ``failed``). With more timing conditions than one table holds, one table per part,
as in report.md.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from attnprof.report import columns as c
from attnprof.report.model import Report
from attnprof.report.tables import LatencyKey
from attnprof.report.verdict import VerdictRow

STATUS = {"ok": "ok", "partial": "[yellow]partial[/yellow]", "failed": "[red]failed[/red]"}


def summary_table(report: Report) -> Table | Group:
    """Variant, Δ params, Δ MACs (claims convention), Δ bytes, Δ latency [95% CI] per timing
    and the verdict, per backbone and setting; a :class:`~rich.console.Group` of tables when
    report.md splits its verdicts in parts."""
    parts = list(dict.fromkeys(t.part for t in report.verdicts)) or [""]
    tables = [_table(report, part) for part in parts]
    return tables[0] if len(tables) == 1 else Group(*tables)


def _table(report: Report, part: str) -> Table:
    claims, unit = report.thresholds, report.claims_unit
    moved = report.byte_conventions[0] if report.byte_conventions else None
    verdicts = [t for t in report.verdicts if t.part == part]
    found = {k for t in verdicts for k in t.keys}
    keys: list[LatencyKey] = [k for k in report.latency_keys if k in found]
    columns = [c.GROUP, c.VARIANT, c.VERDICT_PARAMS, c.verdict_count(claims.convention, unit)]
    columns += [c.bytes_delta(moved)] if moved else []
    columns += [c.verdict_latency(k) for k in keys]
    columns += [c.VERDICT, c.STATUS]
    title = f"{report.suite.name}: cost against the plain backbone"
    table = Table(title=title + (f" ({part})" if part else ""))
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for verdict in verdicts:
        for row in verdict.rows:
            values = [f"{verdict.backbone} · {verdict.setting}", row.variant,
                      *_judged(row, keys, moved is not None),
                      row.verdict(verdict.keys, unit), STATUS[row.status]]
            table.add_row(*(column.show(value) if column is not c.STATUS else value
                            for column, value in zip(columns, values, strict=True)))
    return table


def _judged(row: VerdictRow, keys: list[LatencyKey], bytes_shown: bool) -> list:
    if row.status == "failed" or row.baseline:
        word = None if row.status == "failed" else "baseline"
        return [word] * (2 + bytes_shown + len(keys))
    values = [row.params, row.macs]
    values += [row.bytes_pct] if bytes_shown else []
    return values + [row.latency.get(k) for k in keys]
