"""The rich summary table printed at the end of ``attnprof run``: the headline Δ per variant.

Built from the same frame as the Markdown and CSV reports, so the three always agree.
"""

from __future__ import annotations

from rich.table import Table

from attnprof.report.markdown import DASH, is_missing
from attnprof.report.model import Report


def _pct(value) -> str:
    return DASH if is_missing(value) else f"{value:+.2f}"


def summary_table(report: Report) -> Table:
    """Variant, Δ params %, Δ MACs % (claims convention), Δ latency % [95% CI] per timing."""
    convention, unit, keys = report.thresholds.convention, report.claims_unit, report.latency_keys
    table = Table(title=f"{report.suite.name}: cost against the plain backbone (Δ %)")
    table.add_column("backbone · setting")
    table.add_column("variant")
    table.add_column("Δ params (%)", justify="right")
    table.add_column(f"Δ {convention} {unit} (%)", justify="right")
    for key in keys:
        table.add_column(f"Δ latency {key.column} (%) [95% CI]", justify="right")
    table.add_column("status")
    for cell, row in zip(report.cells, report.frame.to_dict("records"), strict=True):
        cells = [f"{cell.backbone} · {cell.setting}", cell.variant]
        partial = any(not entry.ok for entry in cell.latency)  # counted, but a timing failed
        if not cell.ok:
            cells += ["—", "—"] + ["—"] * len(keys) + ["[red]failed[/red]"]
            table.add_row(*cells)
            continue
        if cell.is_baseline:
            cells += ["baseline"] * (2 + len(keys)) + ["partial" if partial else "ok"]
            table.add_row(*cells)
            continue
        cells += [_pct(row.get("params_delta_pct")), _pct(row.get(f"{convention}_delta_pct"))]
        for key in keys:
            p = key.column
            delta = row.get(f"{p}_delta_pct")
            lo, hi = row.get(f"{p}_delta_ci95_lo_pct"), row.get(f"{p}_delta_ci95_hi_pct")
            ci = f" [{_pct(lo)}, {_pct(hi)}]" if not is_missing(lo) else ""
            cells.append(_pct(delta) + ci)
        cells.append("[yellow]partial[/yellow]" if partial else "ok")
        table.add_row(*cells)
    return table
