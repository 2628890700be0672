"""Published figures beside measured ones, and a note for every row that does not match.

Caveat first: a paper prints rounded numbers, so "matches" means *matches to the printed
digits*: the measured parameters rounded to 2 decimals of a million, and the measured MACs
under the ``paper`` convention (the classic per-module counter the tables were made with)
rounded to 3 decimals of a GMAC, equal the printed figures. A published row is compared with
every setting of its backbone and variant in the results; a detection table should be read
against the detection setting it was counted in.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnprof.report.tables import ordered_cells
from attnprof.results import Cell, ResultsDocument

PARAMS_DIGITS = 2
"""Published parameters are printed to 2 decimals of a million."""

GMAC_DIGITS = 3
"""Published GMACs (the papers' "GFLOPs") are printed to 3 decimals."""

CONVENTION = "paper"
"""The convention the published tables were counted in."""


@dataclass(frozen=True)
class PublishedComparison:
    """One published row against one measured cell (or the reason there is none)."""

    backbone: str
    variant: str
    source: str
    published_params_m: float
    published_gmac: float
    setting: str | None = None
    measured_params_m: float | None = None
    measured_gmac: float | None = None
    problem: str | None = None  # why nothing (or only part) could be compared

    @property
    def params_diff_m(self) -> float | None:
        return _diff(self.measured_params_m, self.published_params_m)

    @property
    def gmac_diff(self) -> float | None:
        return _diff(self.measured_gmac, self.published_gmac)

    @property
    def params_match(self) -> bool | None:
        return _match(self.measured_params_m, self.published_params_m, PARAMS_DIGITS)

    @property
    def gmac_match(self) -> bool | None:
        return _match(self.measured_gmac, self.published_gmac, GMAC_DIGITS)

    @property
    def matches(self) -> bool:
        """True only when both figures were measured and both match to the printed digits."""
        return bool(self.params_match and self.gmac_match)

    def notes(self) -> list[str]:
        """One sentence per figure that does not match (or could not be compared)."""
        where = f"{self.backbone} {self.variant}" + (f" ({self.setting})" if self.setting else "")
        out = []
        if self.problem:
            out.append(f"{where}: {self.problem}.")
        if self.params_match is False:
            out.append(
                f"{where}: measured {round(self.measured_params_m * 1e6):,} parameters "
                f"({_printed(self.measured_params_m, PARAMS_DIGITS)} M); "
                f"{self.source or 'the paper'} prints "
                f"{_printed(self.published_params_m, PARAMS_DIGITS)} M "
                f"({signed(self.params_diff_m, 3)} M, "
                f"{_pct(self.params_diff_m, self.published_params_m)})."
            )
        if self.gmac_match is False:
            out.append(
                f"{where}: measured {_printed(self.measured_gmac, GMAC_DIGITS)} GMAC "
                f"({CONVENTION} convention); {self.source or 'the paper'} prints "
                f"{_printed(self.published_gmac, GMAC_DIGITS)} GMAC "
                f"({signed(self.gmac_diff, 3)} GMAC, {_pct(self.gmac_diff, self.published_gmac)})."
            )
        return out


def _printed(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _diff(measured: float | None, published: float) -> float | None:
    return None if measured is None else measured - published


def _match(measured: float | None, published: float, digits: int) -> bool | None:
    """Whether ``measured`` equals ``published`` to the printed digits (``None``: unmeasured)."""
    return None if measured is None else _printed(measured, digits) == _printed(published, digits)


def signed(value: float, digits: int) -> str:
    """``+0.003``; a difference that rounds to zero is ``+0.000``, never ``-0.000``."""
    value = 0.0 if round(value, digits) == 0 else value
    return f"{value:+.{digits}f}"


def _pct(diff: float, published: float) -> str:
    return f"{signed(diff / published * 100, 2)}%" if published else "n/a"


def compare_published(doc: ResultsDocument) -> list[PublishedComparison]:
    """Every published row of the suite against what was measured, in the suite's order."""
    cells = ordered_cells(doc)
    out = []
    for row in doc.suite.published:
        base = dict(
            backbone=row.backbone,
            variant=row.variant,
            source=row.source or "",
            published_params_m=float(row.params_m),
            published_gmac=float(row.gmac),
        )
        matching = [c for c in cells if (c.backbone, c.variant) == (row.backbone, row.variant)]
        if not matching:
            out.append(PublishedComparison(**base, problem="not in these results"))
            continue
        for cell in matching:
            out.append(_compare(base, cell))
    return out


def _compare(base: dict, cell: Cell) -> PublishedComparison:
    setting = cell.setting
    if not cell.ok:
        return PublishedComparison(
            **base, setting=setting, problem=f"not measured: the cell failed ({cell.failure.error})"
        )
    params_m = cell.profile.params / 1e6
    record = cell.profile.counts.get(CONVENTION)
    if not record or record.unit != "MAC":
        why = f"count is in {record.unit}, not MAC" if record else "convention was not counted"
        return PublishedComparison(**base, setting=setting, measured_params_m=params_m,
                                   problem=f"MACs not compared: the {CONVENTION!r} {why}")
    return PublishedComparison(
        **base, setting=setting, measured_params_m=params_m, measured_gmac=record.value / 1e9
    )
