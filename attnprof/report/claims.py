"""Does "almost no extra parameters or FLOPs" hold? One verdict per quantity, with its numbers.

Caveat first: a count is exact, so a count's verdict is a plain comparison (Δ% <= threshold
holds). A latency is a measurement, so its verdict needs the 95% confidence interval of the
paired Δ%: the claim is *refuted* only when even the interval's lower bound exceeds the
threshold, *holds* only when its upper bound is below the threshold, and is *inconclusive*
otherwise (including a timing recorded without an interval). Thresholds are the suite's
``[claims]``: Δparams% <= ``params_pct``, ΔMACs% under ``convention`` <= ``macs_pct``,
Δlatency% <= ``latency_pct``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from attnprof.report.tables import LatencyKey
from attnprof.suite.config import BASELINE, Claims


class Outcome(StrEnum):
    """What a claim check concluded."""

    HOLDS = "holds"
    REFUTED = "refuted"
    INCONCLUSIVE = "inconclusive"  # the CI straddles the threshold, or there is no CI
    NOT_MEASURED = "not measured"  # no number to judge (convention not counted, not timed)


@dataclass(frozen=True)
class ClaimCheck:
    """One claim about one quantity of one cell, with the numbers it was decided on."""

    quantity: str  # "parameters", "MACs (paper)", "latency (cpu b1)"
    threshold_pct: float
    outcome: Outcome
    delta_pct: float | None = None
    ci95_pct: tuple[float, float] | None = None

    def describe(self) -> str:
        """``+9.90% > 1% → refuted``; ``+3.0% [-1.0, +7.0] vs 5% → inconclusive``."""
        if self.delta_pct is None:
            return f"{self.quantity}: {self.outcome.value}"
        threshold = f"{self.threshold_pct:g}%"
        if self.ci95_pct is not None:
            lo, hi = self.ci95_pct
            claim = f"{self.delta_pct:+.1f}% [95% CI {lo:+.1f}, {hi:+.1f}] vs {threshold}"
        elif self.outcome is Outcome.INCONCLUSIVE:
            claim = f"{self.delta_pct:+.1f}% (no 95% CI) vs {threshold}"
        else:
            sign = "≤" if self.outcome is Outcome.HOLDS else ">"
            claim = f"{self.delta_pct:+.2f}% {sign} {threshold}"
        return f"{self.quantity}: {claim} → {self.outcome.value}"


def count_verdict(quantity: str, delta: float | None, threshold: float) -> ClaimCheck:
    """An exact count: holds when ``delta <= threshold``, refuted otherwise."""
    if delta is None:
        return ClaimCheck(quantity, threshold, Outcome.NOT_MEASURED)
    outcome = Outcome.HOLDS if delta <= threshold else Outcome.REFUTED
    return ClaimCheck(quantity, threshold, outcome, delta)


def interval_verdict(
    quantity: str, delta: float | None, ci95: tuple[float, float] | None, threshold: float
) -> ClaimCheck:
    """A measurement: refuted when the CI's low end > threshold, holds when its high end is
    below it, inconclusive otherwise (or when there is no CI)."""
    if delta is None:
        return ClaimCheck(quantity, threshold, Outcome.NOT_MEASURED)
    if ci95 is None:
        return ClaimCheck(quantity, threshold, Outcome.INCONCLUSIVE, delta)
    lo, hi = ci95
    if lo > threshold:
        outcome = Outcome.REFUTED
    elif hi < threshold:
        outcome = Outcome.HOLDS
    else:
        outcome = Outcome.INCONCLUSIVE
    return ClaimCheck(quantity, threshold, outcome, delta, (lo, hi))


@dataclass(frozen=True)
class CellClaims:
    """The verdicts of one attention variant on one backbone and setting."""

    id: str
    backbone: str
    setting: str
    variant: str
    params: ClaimCheck
    macs: ClaimCheck
    latency: tuple[tuple[LatencyKey, ClaimCheck], ...]


def evaluate_claims(
    frame: pd.DataFrame, claims: Claims, unit: str, keys: list[LatencyKey]
) -> list[CellClaims]:
    """A :class:`CellClaims` for every counted non-baseline cell (failed cells have none).

    ``frame`` is :func:`~attnprof.report.tables.cell_frame`; ``unit`` is the unit of the
    claims' convention; ``keys`` the timing conditions to judge.
    """
    macs_column = f"{claims.convention}_delta_pct"
    out = []
    for row in frame.to_dict("records"):
        if row["status"] != "ok" or row["variant"] == BASELINE:
            continue
        latency = []
        for key in keys:
            delta = _get(row, f"{key.column}_delta_pct")
            lo = _get(row, f"{key.column}_delta_ci95_lo_pct")
            hi = _get(row, f"{key.column}_delta_ci95_hi_pct")
            if delta is None:
                continue  # not timed in this condition (e.g. a head the suite does not time)
            ci = (lo, hi) if lo is not None and hi is not None else None
            verdict = interval_verdict(f"latency ({key.label})", delta, ci, claims.latency_pct)
            latency.append((key, verdict))
        params = count_verdict("parameters", _get(row, "params_delta_pct"), claims.params_pct)
        macs = count_verdict(
            f"{unit}s ({claims.convention})", _get(row, macs_column), claims.macs_pct
        )
        out.append(CellClaims(row["id"], row["backbone"], row["setting"], row["variant"],
                              params, macs, tuple(latency)))
    return out


def _get(row: dict, column: str) -> float | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) else float(value)


@dataclass(frozen=True)
class Gap:
    """Median Δ count against median Δ latency over the same cells, for one timing condition."""

    key: LatencyKey
    cells: int
    median_macs_pct: float
    median_latency_pct: float

    @property
    def factor(self) -> float | None:
        """How many times the MAC increase the latency increase is (None if MACs did not grow)."""
        if self.median_macs_pct <= 0:
            return None
        return self.median_latency_pct / self.median_macs_pct


def gap_summary(verdicts: list[CellClaims]) -> list[Gap]:
    """Per timing condition, over the cells with both a Δ MACs and a Δ latency: the medians."""
    pairs: dict[LatencyKey, list[tuple[float, float]]] = {}
    for claim in verdicts:
        if claim.macs.delta_pct is None:
            continue
        for key, verdict in claim.latency:
            pairs.setdefault(key, []).append((claim.macs.delta_pct, verdict.delta_pct))
    return [
        Gap(
            key,
            len(values),
            statistics.median(m for m, _ in values),
            statistics.median(t for _, t in values),
        )
        for key, values in pairs.items()
    ]


def tally(verdicts: list[ClaimCheck]) -> dict[Outcome, int]:
    """How many verdicts reached each outcome (every outcome present, zeros included)."""
    counts = dict.fromkeys(Outcome, 0)
    for verdict in verdicts:
        counts[verdict.outcome] += 1
    return counts
