"""results.csv: one row per cell, the numbers of the report's frame (its ``cell_frame``).

Caveat first: the CSV holds every figure in its base unit (a count, MACs, FLOPs, bytes, ms, a
percentage), where report.md scales it (M, GMAC, MB); the header is the column contract's keys
(:mod:`attnprof.report.columns`), each ending in its unit (``params_count``, ``paper_MAC``,
``full_FLOP``, ``full_bytes``, ``cpu_b1_median_ms``, ``params_delta_pct``, ...). Counts are
written as integers; measurements are rounded as their column says (4 decimals for
percentages and times, far below measurement noise) so the file stays readable and stable. A
missing number is an empty field.
"""

from __future__ import annotations

import pandas as pd

from attnprof.report.model import Report


def frame_for_csv(report: Report) -> pd.DataFrame:
    """The cell frame under its contract's keys, counts as (nullable) integers, measurements
    rounded as each column says."""
    frame = report.frame[[column.key for column in report.columns]].copy()
    for column in report.columns:
        values = frame[column.key]
        if column.integer:
            if ((values.dropna() % 1) == 0).all():
                frame[column.key] = values.round().astype("Int64")
        elif column.digits is not None:
            frame[column.key] = values.round(column.digits)
    return frame


def render(report: Report) -> str:
    """The CSV text (``\\n`` line ends, header first)."""
    return frame_for_csv(report).to_csv(index=False, lineterminator="\n")
