"""results.csv: one row per cell, the numbers of the report's frame (its ``cell_frame``).

Every numeric column carries its unit as a suffix (``params_count``, ``paper_MAC``,
``full_FLOP``, ``full_bytes``, ``cpu_b1_median_ms``, ``params_delta_pct``, ...). Counts are
written as integers; percentages and times are rounded to 4 decimals (far below measurement
noise) so the file stays readable and stable. A missing number is an empty field.
"""

from __future__ import annotations

import pandas as pd

from attnprof.report.model import Report

_INTEGER_SUFFIXES = ("_count", "_MAC", "_FLOP", "_bytes")
_DECIMALS = {"_pct": 4, "_ms": 4, "_images_per_s": 3, "_per_byte": 4}


def frame_for_csv(report: Report) -> pd.DataFrame:
    """The cell frame with counts as (nullable) integers and measurements rounded."""
    frame = report.frame.copy()
    for column in frame.columns:
        if column.endswith(_INTEGER_SUFFIXES) and not column.endswith("_per_byte"):
            values = frame[column]
            if ((values.dropna() % 1) == 0).all():
                frame[column] = values.round().astype("Int64")
            continue
        for suffix, digits in _DECIMALS.items():
            if column.endswith(suffix):
                frame[column] = frame[column].round(digits)
                break
    return frame


def render(report: Report) -> str:
    """The CSV text (``\\n`` line ends, header first)."""
    return frame_for_csv(report).to_csv(index=False, lineterminator="\n")
