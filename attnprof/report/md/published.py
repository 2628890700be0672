"""Published figures beside measured ones, each at the precision it was printed with."""

from __future__ import annotations

from attnprof.report.formats import DASH, signed
from attnprof.report.md.table import text_table
from attnprof.report.model import Report

HEADER = ("backbone", "variant", "setting", "figure", "published", "measured, as printed",
          "difference (%)", "convention", "reproduces", "reproduced by", "source")
"""The table's columns: printed figures carry their own units, so the cells are text."""


def published_section(report: Report) -> str:
    comparisons = report.published
    if not comparisons:
        return ""
    rows = []
    for c in comparisons:
        where = [c.backbone, c.variant, c.setting or DASH]
        if not c.checks:
            rows.append([*where, DASH, DASH, DASH, DASH, DASH, DASH, DASH, c.source or DASH])
        for check in c.checks:
            is_cost = check is c.cost
            rows.append([
                *where,
                "cost" if is_cost else "params",
                str(check.figure),
                DASH if check.measured is None
                else f"{check.measured_printed} {check.figure.unit_text()}",
                DASH if check.diff_pct is None else signed(check.diff_pct, 2),
                check.convention or DASH,
                _yes_no(check.reproduced),
                (", ".join(c.reproducing()) or "none") if is_cost and check.measured is not None
                else DASH,
                c.source or DASH,
            ])
    out = [
        "## Published vs measured",
        "",
        "Each figure is compared at the precision it was printed with: the measured value in "
        "the same scale, rounded to the same decimals, must print the same digits. A cost is "
        "judged under the convention it was counted in; *reproduced by* lists every counted "
        "convention in its unit that prints the same digits.",
        "",
        text_table(HEADER, rows, align="lllll" + "rr" + "llll"),
        "",
    ]
    notes = [note for c in comparisons for note in c.notes()]
    if notes:
        out += ["Figures that do not reproduce:", ""]
        out += [f"- {note}" for note in notes]
    else:
        out.append("Every published figure is reproduced to the printed digits.")
    return "\n".join(out)


def _yes_no(value: bool | None) -> str:
    return DASH if value is None else "yes" if value else "no"
