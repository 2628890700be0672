"""The training step under ``full``: one row per counted cell, with its Δ against the baseline.

Caveat first: these are counts of one training step (forward in train mode, the loss, the
backward; :mod:`attnprof.counting.training`), not timings; the training step's timing is a
pass like any other (:mod:`attnprof.report.runtimes`, :mod:`attnprof.report.verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from attnprof.report import columns as c
from attnprof.report.tables import row_value as value


@dataclass(frozen=True)
class TrainingRow:
    """One cell's training step under ``full``, with its Δ against the baseline."""

    backbone: str
    setting: str
    variant: str
    flops: float | None
    flops_delta_pct: float | None
    backward_ratio: float | None
    bytes: float | None
    bytes_delta_pct: float | None
    activation_bytes: float | None
    activation_delta_pct: float | None
    attention_activation_bytes: float | None


def training_rows(frame: pd.DataFrame) -> list[TrainingRow]:
    """A row per counted cell with a training step; none when no cell counted one."""
    if c.TRAIN_FLOP.key not in frame.columns:
        return []
    rows = []
    for row in frame.to_dict("records"):
        if row["status"] != "ok" or value(row, c.TRAIN_FLOP.key) is None:
            continue
        rows.append(TrainingRow(
            row["backbone"], row["setting"], row["variant"],
            *(value(row, column.key) for column in (
                c.TRAIN_FLOP, c.TRAIN_DELTA, c.TRAIN_RATIO, c.TRAIN_BYTES, c.TRAIN_BYTES_DELTA,
                c.TRAIN_ACTIVATIONS, c.TRAIN_ACTIVATIONS_DELTA, c.TRAIN_ATTENTION_ACTIVATIONS)),
        ))
    return rows
