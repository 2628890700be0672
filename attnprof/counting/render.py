"""Rich tables of a :class:`~attnprof.counting.records.ProfileRecord`: records in, tables out.

One unit per table, stated in every header: parameters in M params, MAC conventions in GMAC,
FLOP conventions in GFLOP, memory traffic in MB (10^6 bytes).
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from attnprof.results.counts import ConventionCount, ProfileRecord

_GIGA = 1e9
_MEGA = 1e6


def _title(record: ProfileRecord) -> str:
    shape = "x".join(str(v) for v in record.input)
    options = ", ".join(f"{k}={v!r}" for k, v in record.options.items())
    attention = record.attention + (f" ({options})" if options else "")
    return f"{record.backbone} + {attention}, input {shape} (NxCxHxW), head {record.head}"


def _uncounted(count: ConventionCount) -> str:
    if not count.uncounted:
        return "-"
    return ", ".join(f"{name} x{calls}" for name, calls in count.uncounted.items())


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}" if whole else "-"


def _table(title: str, first: str, *numbers: str, no_wrap: bool = True) -> Table:
    """A left-titled table: a label column, then right-aligned number columns."""
    table = Table(title=title, title_justify="left")
    table.add_column(first, no_wrap=no_wrap)
    for header in numbers:
        table.add_column(header, justify="right")
    return table


def params_table(record: ProfileRecord) -> Table:
    table = _table(f"Parameters: {_title(record)}", "Parameters", "Count (params)", "M params",
                   "Share of model (%)", no_wrap=False)
    table.add_row("model (exact)", f"{record.params:,}", f"{record.params / _MEGA:.3f}", "100.00")
    table.add_row(
        "inside attention modules",
        f"{record.attention_params:,}",
        f"{record.attention_params / _MEGA:.3f}",
        _share(record.attention_params, record.params),
    )
    for name, count in record.counts.items():
        reported = count.reported_params
        if reported is None:
            continue
        note = "" if reported == record.params else f" (misses {record.params - reported:,})"
        label = f"{name}'s own count{note}"
        if reported != record.params:
            label = f"[bold red]{label}[/]"
        table.add_row(
            label, f"{reported:,}", f"{reported / _MEGA:.3f}", _share(reported, record.params)
        )
    return table


_UNIT_TITLES = {
    "MAC": "Multiply-accumulates (1 GMAC = 10^9 MACs: the papers' \"GFLOPs\")",
    "FLOP": "Floating-point operations (1 GFLOP = 10^9 FLOPs; 1 MAC = 2 FLOPs)",
}


def count_table(record: ProfileRecord, unit: str) -> Table | None:
    """The conventions counting in ``unit`` (MAC or FLOP): one table per unit, never mixed;
    one total column per counted batch size."""
    rows = [c for c in record.counts.values() if c.unit == unit]
    if not rows:
        return None
    first = record.input[0]
    others = sorted(record.other_batches)
    totals = [f"Total N={first} (G{unit})", *(f"Total N={b} (G{unit})" for b in others)]
    at = f" N={first}" if others else ""
    if not others:
        totals = [f"Total (G{unit})"]
    table = _table(_UNIT_TITLES[unit], "Convention", *totals, f"Attention{at} (G{unit})",
                   "Attention (%)")
    for count in rows:
        more = [record.other_batches[b].get(count.convention) for b in others]
        table.add_row(
            count.convention,
            f"{count.value / _GIGA:.3f}",
            *("-" if c is None else f"{c.value / _GIGA:.3f}" for c in more),
            f"{count.attention / _GIGA:.4f}",
            _share(count.attention, count.value),
        )
    return table


def traffic_table(record: ProfileRecord, unit: str = "FLOP") -> Table | None:
    """The conventions that counted bytes (those that declare ``bytes``) in ``unit``: one
    table per unit, so an intensity column holds one unit per byte."""
    rows = [c for c in record.counts.values() if c.bytes is not None and c.unit == unit]
    if not rows:
        return None
    at = f" at batch N={record.input[0]}" if record.other_batches else ""
    counted = "" if unit == "FLOP" else f", {unit} conventions"
    table = _table(
        f"Memory traffic{at}{counted}, eager and unfused (1 MB = 10^6 bytes; B = byte)",
        "Convention", "Traffic (MB)", "Attention traffic (MB)", "Attention (%)",
        f"Intensity ({unit}/B)", f"Attention intensity ({unit}/B)",
    )
    for count in rows:
        table.add_row(
            count.convention,
            _megabytes(count.bytes),
            _megabytes(count.attention_bytes),
            _share(count.attention_bytes or 0, count.bytes or 0),
            _ratio(count.intensity),
            _ratio(count.attention_intensity),
        )
    return table


def uncounted_table(record: ProfileRecord) -> Table | None:
    """What each convention saw run and counted 0: module types and functional aten ops."""
    if not record.counts:
        return None
    table = Table(title="Ran but counted 0 (number of calls)", title_justify="left")
    table.add_column("Convention", no_wrap=True)
    table.add_column("Op or module type (calls)")
    for count in record.counts.values():
        table.add_row(count.convention, _uncounted(count))
    return table


def _megabytes(value: int | None) -> str:
    return "-" if value is None else f"{value / _MEGA:,.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_profile(record: ProfileRecord) -> Group:
    """The tables of one record: parameters, one table per unit, then what counted 0."""
    tables = [
        params_table(record),
        count_table(record, "MAC"),
        count_table(record, "FLOP"),
        traffic_table(record, "FLOP"),
        traffic_table(record, "MAC"),
        uncounted_table(record),
    ]
    return Group(*(table for table in tables if table is not None))


def _unit_of(count: ConventionCount) -> str:
    return f"M{count.unit}"


def breakdown_tables(record: ProfileRecord, depth: int | None = None, by_op: bool = False,
                     by_module: bool = True) -> Group:
    """Where each convention's count sits: a module tree down to ``depth`` (subtree totals,
    attention modules marked ◆ and summed per stage), and/or a table per operator."""
    from attnprof.counting.breakdown import (
        attention_owner,
        by_stage,
        collapse,
        depth_of,
        tree_order,
    )

    counts = {name: c for name, c in record.counts.items() if c.breakdown is not None}
    parts = []
    if by_module and counts:
        limit = depth if depth is not None else 2
        trees = {name: collapse(c.breakdown.by_module, limit) for name, c in counts.items()}
        attention = next(iter(counts.values())).breakdown.attention
        headers = [f"{name} ({_unit_of(c)})" for name, c in counts.items()]
        moved = {name: collapse(c.breakdown.bytes_by_module, limit)
                 for name, c in counts.items() if c.breakdown.bytes_by_module}
        headers += [f"{name}: bytes moved (MB)" for name in moved]
        table = _table(f"Per module, to depth {limit} (each row: the module and everything "
                       "inside it; ◆ attention)", "module", *headers)
        rows = tree_order([n for c in counts.values() for n in c.breakdown.by_module], limit)
        for row in rows:
            marked = attention_owner(row, attention) is not None
            label = ("  " * depth_of(row) + (row.rsplit(".", 1)[-1] if row else "(model)")
                     + (" ◆" if marked else ""))
            cells = [f"{trees[n].get(row, 0) / _MEGA:,.3f}" for n in counts]
            cells += [f"{tree.get(row, 0) / _MEGA:,.3f}" for tree in moved.values()]
            table.add_row(label, *cells)
        parts.append(table)
        stage_table = _table("Attention modules summed per stage", "stage",
                             *[f"{name} ({_unit_of(c)})" for name, c in counts.items()],
                             *[f"{name}: share of total (%)" for name in counts])
        sums = {name: by_stage(c.breakdown) for name, c in counts.items()}
        stages = sorted({s for per in sums.values() for s in per}, key=lambda s: (s is None, s))
        for stage in stages:
            stage_table.add_row(
                "?" if stage is None else str(stage),
                *[f"{sums[n].get(stage, 0) / _MEGA:,.3f}" for n in counts],
                *[_share(sums[n].get(stage, 0), c.value) for n, c in counts.items()],
            )
        if stages:
            parts.append(stage_table)
    if by_op:
        for name, c in counts.items():
            table = _table(f"{name}: per operator ({_unit_of(c)})", "operator",
                           _unit_of(c), "share (%)",
                           *(["bytes moved (MB)"] if c.breakdown.bytes_by_op else []))
            ops = sorted(set(c.breakdown.by_op) | set(c.breakdown.bytes_by_op or {}),
                         key=lambda op: -c.breakdown.by_op.get(op, 0))
            for op in ops:
                value = c.breakdown.by_op.get(op, 0)
                extra = ([f"{c.breakdown.bytes_by_op.get(op, 0) / _MEGA:,.3f}"]
                         if c.breakdown.bytes_by_op else [])
                table.add_row(op, f"{value / _MEGA:,.3f}", _share(value, c.value), *extra)
            parts.append(table)
    return Group(*parts)


def breakdown_csv(record: ProfileRecord) -> str:
    """One row per convention x module (self and subtree) and per convention x operator."""
    import csv
    import io

    from attnprof.counting.breakdown import attention_owner, depth_of, inclusive, tree_order

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["convention", "unit", "kind", "name", "depth", "attention", "stage",
                     "self", "subtree", "bytes_self", "bytes_subtree"])
    for name, c in record.counts.items():
        b = c.breakdown
        if b is None:
            continue
        subtree = inclusive(b.by_module)
        bytes_subtree = inclusive(b.bytes_by_module) if b.bytes_by_module else {}
        for module in tree_order(b.by_module):
            owner = attention_owner(module, b.attention)
            writer.writerow([name, c.unit, "module", module, depth_of(module),
                             owner is not None, "" if owner is None else b.attention[owner],
                             b.by_module.get(module, 0), subtree[module],
                             b.bytes_by_module.get(module, 0) if b.bytes_by_module else "",
                             bytes_subtree.get(module, "")])
        for op in sorted(set(b.by_op) | set(b.bytes_by_op or {})):
            writer.writerow([name, c.unit, "op", op, "", "", "", b.by_op.get(op, 0), "",
                             (b.bytes_by_op or {}).get(op, ""), ""])
    return out.getvalue()
