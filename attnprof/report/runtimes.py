"""Each module's Δ in every mode and runtime beside its Δ eager, and what the runtime changed.

Caveats first: a Δ% is only comparable within its mode (each variant against the baseline
timed in the same mode and rounds), and a runtime that speeds up the backbone but not the
modules raises their Δ% with no change of their cost in ms. So the overhead is compared in ms
(the baseline's median times the paired Δ%): *recovered* is the share of the eager overhead
the mode no longer pays, ``1 − Δ ms in the mode / Δ ms eager``, given only where the eager
overhead is established (its 95% interval above 0): a ratio to a Δ that may be 0 is noise.
The baseline's speed-up is its eager median over its median in the mode.

Modes are read generically, keyed on their name: a results file may hold a mode this install
does not know (a runtime added later, or one not installed here); it is compared like any
other, with the description of :data:`attnprof.latency.modes.MODES` where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from attnprof.latency import modes as _modes
from attnprof.report import columns as c
from attnprof.report.tables import LatencyKey, delta_ms, latency_entry, row_value
from attnprof.results import Cell
from attnprof.suite.config import BASELINE


def mode_description(name: str) -> str | None:
    """What a mode runs, as this install describes it (``None``: a mode it does not know)."""
    mode = _modes.MODES.get(name)
    return mode.description if mode is not None else None


@dataclass(frozen=True)
class RuntimeRow:
    """One variant's Δ eager and Δ in the mode, in % (with intervals) and in ms."""

    variant: str
    eager_pct: float | None
    eager_ci: tuple[float, float] | None
    pct: float | None
    ci: tuple[float, float] | None
    eager_ms: float | None
    ms: float | None

    @property
    def recovered_pct(self) -> float | None:
        if self.eager_ms is None or self.ms is None or self.eager_ci is None \
                or self.eager_ci[0] <= 0 or self.eager_ms <= 0:
            return None
        return 100.0 * (1.0 - self.ms / self.eager_ms)


@dataclass(frozen=True)
class RuntimeComparison:
    """One backbone and setting, eager against one other mode in the same pass, device and
    batch size: the baseline's medians (ms) and every variant's row."""

    backbone: str
    setting: str
    eager: LatencyKey
    other: LatencyKey
    description: str | None
    baseline_eager_ms: float | None
    baseline_ms: float | None
    rows: tuple[RuntimeRow, ...]

    @property
    def speedup(self) -> float | None:
        """How many times faster the baseline runs in the mode than eager."""
        if not self.baseline_eager_ms or not self.baseline_ms:
            return None
        return self.baseline_eager_ms / self.baseline_ms


def _delta(row: dict, key: LatencyKey) -> tuple[float | None, tuple[float, float] | None]:
    t = c.timing(key)
    lo, hi = row_value(row, t.delta_lo.key), row_value(row, t.delta_hi.key)
    return row_value(row, t.delta.key), (lo, hi) if lo is not None and hi is not None else None


def pairs(keys: tuple[LatencyKey, ...]) -> list[tuple[LatencyKey, LatencyKey]]:
    """(eager, other) for every condition timed eager and in another mode."""
    return [(key, other) for key in keys if key.mode == "eager" for other in keys
            if other.mode != "eager"
            and (other.machine, other.device, other.batch, other.threads, other.pass_name)
            == (key.machine, key.device, key.batch, key.threads, key.pass_name)]


def runtime_comparisons(frame: pd.DataFrame, cells: dict[str, Cell],
                        keys: tuple[LatencyKey, ...]) -> list[RuntimeComparison]:
    """Eager beside every other mode, per backbone and setting; none without such a pair."""
    records = frame.to_dict("records")
    groups = list(dict.fromkeys((r["backbone"], r["setting"]) for r in records))
    out = []
    for backbone, setting in groups:
        rows = [r for r in records if (r["backbone"], r["setting"]) == (backbone, setting)
                and r["status"] == "ok"]
        base = next((r for r in rows if r["variant"] == BASELINE), None)
        for eager, other in pairs(keys):
            timed = [r for r in rows if latency_entry(cells[r["id"]], other) is not None]
            if not timed:
                continue  # this backbone and setting was not timed in the mode
            body = []
            for row in timed:
                if row["variant"] == BASELINE:
                    continue
                e, e_ci = _delta(row, eager)
                o, o_ci = _delta(row, other)
                body.append(RuntimeRow(row["variant"], e, e_ci, o, o_ci,
                                       delta_ms(row, base, eager), delta_ms(row, base, other)))
            out.append(RuntimeComparison(
                backbone, setting, eager, other, mode_description(other.mode),
                row_value(base, c.timing(eager).median.key) if base else None,
                row_value(base, c.timing(other).median.key) if base else None, tuple(body)))
    return out
