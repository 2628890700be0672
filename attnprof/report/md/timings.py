"""The timings themselves: each variant's median ± IQR and throughput in every condition."""

from __future__ import annotations

from attnprof.report import columns as c
from attnprof.report.md.table import table, title
from attnprof.report.model import Report
from attnprof.report.tables import group_frame, latency_entry
from attnprof.report.verdict import split_conditions
from attnprof.suite.config import BASELINE


def timings_section(report: Report) -> str:
    if not report.latency_keys:
        return ""
    cells = {cell.id: cell for cell in report.cells}
    out = ["## Timings", "",
           "The median time per call (a forward, or a training step) over all rounds, ± its "
           "interquartile range, and the images per second at the median."]
    for backbone, setting in report.groups:
        records = group_frame(report.frame, backbone, setting).to_dict("records")
        timed = [k for k in report.latency_keys
                 if any(latency_entry(cells[r["id"]], k) is not None for r in records)]
        for part, keys in split_conditions(timed):
            columns = [c.VARIANT]
            for k in keys:
                columns += [c.median_iqr(k), c.throughput(k)]
            rows = []
            for row in records:
                cell = cells[row["id"]]
                values = [row["variant"] + (" (baseline)" if row["variant"] == BASELINE else "")
                          + (" (failed)" if not cell.ok else "")]
                for k in keys:
                    entry = latency_entry(cell, k) if cell.ok else None
                    if entry is not None and not entry.ok:
                        values += ["failed", None]
                        continue
                    t = c.timing(k)
                    values += [(row.get(t.median.key), row.get(t.iqr.key)),
                               row.get(t.throughput.key)]
                rows.append(values)
            out += ["", title(backbone, setting, part), "", table(columns, rows)]
    return "\n".join(out)
