"""Render a :class:`~attnprof.compare.judge.Comparison`: rich tables for people, JSON for tools.

The notes come first, then every difference between the two machines (one line each, as
``--json`` lists them under ``machine_differences``), then one table per metric, one unit per
table (latency rows say per value whether it is a ratio ``x`` or an absolute time in ms), with
the rule that decided the verdicts in the caption.
"""

from __future__ import annotations

import json

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from attnprof.compare.judge import Change, Comparison
from attnprof.compare.stats import Verdict

_STYLE = {
    Verdict.REGRESSION: "bold red",
    Verdict.CHANGED: "bold red",
    Verdict.IMPROVEMENT: "green",
    Verdict.UNCHANGED: "",
    Verdict.NOT_SIGNIFICANT: "yellow",
    Verdict.UNTESTABLE: "yellow",
    Verdict.INFO: "dim",
    Verdict.UNPAIRED: "yellow",
}


def to_json(comparison: Comparison) -> str:
    """The comparison as a JSON document (``attnprof compare --json``)."""
    return json.dumps(comparison.to_dict(), indent=2, allow_nan=False)


def summary(comparison: Comparison) -> str:
    """One line: how many rows were flagged, and which."""
    flagged = comparison.flagged
    unpaired = sum(1 for c in comparison.changes if c.verdict is Verdict.UNPAIRED)
    warning = (f"; {unpaired} slowdown(s) on absolute times only warn (--fail-unpaired)"
               if unpaired else "")
    if not flagged:
        judged = sum(1 for c in comparison.changes if c.verdict is not Verdict.INFO)
        return (f"no confirmed regression ({judged} quantities compared, threshold "
                f"{comparison.threshold:.0%}, alpha {comparison.alpha:g}){warning}")
    shown = "; ".join(_describe(c) for c in flagged[:5])
    more = f"; ... ({len(flagged) - 5} more)" if len(flagged) > 5 else ""
    return f"{len(flagged)} flagged: {shown}{more}{warning}"


def _describe(change: Change) -> str:
    if change.metric == "latency":
        return (f"{change.cell} {change.quantity} {_percent(change.change)} "
                f"(p={change.pvalue:.2g}, beyond threshold p={change.pvalue_margin:.2g})")
    if change.metric == "status":
        return f"{change.cell} {change.detail}"
    return f"{change.cell} {change.quantity} {_count(change.base)} -> {_count(change.new)}"


def render(comparison: Comparison, console: Console) -> None:
    """Print the header, the notes, one table per metric and the summary to ``console``."""
    console.print(_header(comparison))
    for note in comparison.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if comparison.machine_differences:
        console.print(Text("machine differences (BASE vs NEW):", style="yellow"))
        for line in comparison.machine_differences:
            console.print(Text(f"  - {line}", style="yellow"))
    status = comparison.by_metric("status")
    if status:
        console.print(_status_table(status))
    for metric in comparison.metrics:
        rows = comparison.by_metric(metric)
        if not rows:
            continue
        if metric == "latency":
            console.print(_latency_table(rows, comparison))
        else:
            console.print(_count_table(metric, rows))
    style = "bold red" if comparison.failed else "bold green"
    console.print(Text(summary(comparison), style=style))


def _header(comparison: Comparison) -> Group:
    lines = []
    for side, source in (("BASE", comparison.base), ("NEW ", comparison.new)):
        commit = f" @ {source.commit[:12]}" if source.commit else ""
        when = f", {source.utc}" if source.utc else ""
        lines.append(Text(f"{side} {source.path}: {source.label}{commit}{when}; {source.machine}"))
    return Group(*lines)


def _status_table(rows) -> Table:
    table = Table(title="Cells that failed to run", title_justify="left")
    table.add_column("cell")
    table.add_column("verdict")
    table.add_column("detail", overflow="fold")
    for row in rows:
        table.add_row(row.cell, _verdict(row.verdict), row.detail)
    return table


def _latency_table(rows, comparison: Comparison) -> Table:
    threshold = f"{comparison.threshold:.0%}"
    table = Table(
        title=(
            "Latency: median per-round ratio to the reference measured in the same run "
            "(x; ms where there is no reference)"
        ),
        caption=(
            f"flagged iff slower by more than {threshold} AND one-sided Mann-Whitney U "
            f"p < {comparison.alpha:g} on the samples (one per fresh process, or per round for a "
            "one-process file), both against BASE (p) and "
            f"against BASE x (1 + {threshold}) (p > {threshold}); abs. ms: absolute medians, "
            "for context only"
        ),
        title_justify="left",
        caption_justify="left",
    )
    for name, justify in (("cell", "left"), ("on", "left"), ("base", "right"), ("new", "right"),
                          ("change", "right"), ("p", "right"), (f"p > {threshold}", "right"),
                          ("n", "right"), ("abs. ms", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for row in rows:
        rounds = (f"{row.n_base}/{row.n_new} {'proc.' if row.sample_unit == 'process' else 'rds'}"
                  if row.n_base is not None else "")
        table.add_row(
            row.cell,
            row.quantity,
            _sample(row.base, row.unit),
            _sample(row.new, row.unit),
            _percent(row.change),
            f"{row.pvalue:.2g}" if row.pvalue is not None else "",
            f"{row.pvalue_margin:.2g}" if row.pvalue_margin is not None else "",
            rounds,
            _abs_ms(row.base_ms, row.new_ms),
            _verdict(row.verdict, row.detail if row.verdict is not Verdict.UNCHANGED else ""),
        )
    return table


def _count_table(metric: str, rows) -> Table:
    title = {
        "params": "Parameters (exact: any difference is reported)",
        "macs": "MACs/FLOPs per counting convention (exact: any difference is reported)",
    }[metric]
    table = Table(title=title, title_justify="left")
    table.add_column("cell", overflow="fold")
    table.add_column("params" if metric == "params" else "convention")
    table.add_column("unit")
    for name in ("base", "new", "change"):
        table.add_column(name, justify="right")
    table.add_column("verdict", overflow="fold")
    for row in rows:
        table.add_row(
            row.cell,
            row.quantity,
            row.unit,
            _count(row.base),
            _count(row.new),
            _percent(row.change, digits=3) if row.change else "",
            _verdict(row.verdict, row.detail if row.verdict is not Verdict.UNCHANGED else ""),
        )
    return table


def _verdict(verdict: Verdict, detail: str = "") -> Text:
    text = Text(verdict.value, style=_STYLE[verdict])
    if detail:
        text.append(f": {detail}", style="dim" if verdict is Verdict.INFO else "")
    return text


def _sample(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:.4g} ms" if unit == "ms" else f"{value:.4g}x"


def _abs_ms(base: float | None, new: float | None) -> str:
    if base is None and new is None:
        return ""
    show = [f"{v:.3g}" if v is not None else "-" for v in (base, new)]
    return f"{show[0]} -> {show[1]}"


def _percent(change: float | None, digits: int = 1) -> str:
    return "" if change is None else f"{change * 100:+.{digits}f}%"


def _count(value) -> str:
    return "-" if value is None else f"{int(value):,}"
