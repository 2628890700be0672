"""The counts per convention: each variant's parameters and its MACs or FLOPs under every
convention, and, for each convention that counts bytes, the bytes moved and the arithmetic
intensity."""

from __future__ import annotations

from attnprof.report import columns as c
from attnprof.report.md.table import table, title
from attnprof.report.model import Report
from attnprof.report.tables import group_frame
from attnprof.suite.config import BASELINE


def _label(row: dict) -> str:
    return (row["variant"] + (" (baseline)" if row["variant"] == BASELINE else "")
            + (" (failed)" if row["status"] != "ok" else ""))


def counts_section(report: Report) -> str:
    if not report.groups:
        return ""
    names, units, moved = report.conventions, report.units, report.byte_conventions
    counted = [c.VARIANT, c.PARAMS, c.PARAMS_DELTA]
    for name in names:
        counted += [c.count(name, units[name]), c.count_delta(name)]
    said = len(moved) > 1  # one convention counts bytes: the text names it
    traffic = [c.VARIANT]
    for name in moved:
        traffic += [c.bytes_moved(name, said), c.bytes_delta(name, said),
                    c.intensity(name, units[name], said),
                    c.attention_intensity(name, units[name], said)]
    out = ["## Counts per convention", "",
           "Parameters and the cost of one forward under every convention"
           + (", then the bytes it moves and its arithmetic intensity under "
              + ", ".join(f"`{name}`" for name in moved) if moved else "") + "."]
    for backbone, setting in report.groups:
        records = group_frame(report.frame, backbone, setting).to_dict("records")
        out += ["", title(backbone, setting), "", _table(counted, records)]
        if moved:
            out += ["", _table(traffic, records)]
    return "\n".join(out)


def _table(columns, records) -> str:
    rows = []
    for row in records:
        base = row["variant"] == BASELINE
        rows.append([_label(row), *(None if base and column.key.endswith("_delta_pct")
                                    else row.get(column.key) for column in columns[1:])])
    return table(columns, rows)
