"""Where the attention cost sits: per stage of the backbone, and its heaviest operators."""

from __future__ import annotations

from attnprof.report import columns as c
from attnprof.report.formats import DASH
from attnprof.report.md.table import table, title
from attnprof.report.model import Report


def _per_stage(values: dict[str, int]) -> str:
    return " · ".join(f"{stage}: {value / 1e6:.3g}" for stage, value in values.items()) or DASH


def attention_section(report: Report) -> str:
    places = report.attention
    if not places:
        return ""
    unit = places[0].unit
    convention = places[0].convention
    moved = next((p.bytes_convention for p in places if p.bytes_convention), None)
    out = ["## Where the attention cost sits", "",
           f"Each attention variant's own part, summed per stage of the backbone (0 is the "
           f"first): {unit}s under `{convention}`"
           + (f", and the bytes it moves under `{moved}` with the operators that move most "
              "(share of the attention bytes)." if moved else ".")]
    columns = [c.VARIANT, c.attention_total(unit), c.per_stage(unit)]
    if moved:
        columns += [c.ATTENTION_PLACE_MB, c.PER_STAGE_MB, c.HEAVIEST_BYTES]
    for backbone, setting in dict.fromkeys((p.backbone, p.setting) for p in places):
        body = []
        for p in (p for p in places if (p.backbone, p.setting) == (backbone, setting)):
            row = [p.variant, p.total, _per_stage(p.by_stage)]
            if moved:
                row += [p.bytes_total, _per_stage(p.bytes_by_stage or {}),
                        ", ".join(f"{op.removeprefix('aten::')} {share:.0%}"
                                  for op, share in p.heaviest_ops) or DASH]
            body.append(row)
        out += ["", title(backbone, setting), "", table(columns, body)]
    return "\n".join(out)
