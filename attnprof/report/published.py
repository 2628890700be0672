"""Published figures beside measured ones, at the precision they were printed with.

Caveat first: a paper prints rounded numbers, so "reproduces" means *prints the same digits*:
the measured value in the figure's scale, rounded to its decimals, equals it (``4.130 GMAC``
is reproduced by 4,129,959,344 MACs, not by 4,131,000,000). A cost is judged under the
convention the suite says it was counted in, and also checked against every other counted
convention in the same unit, so the report can say which conventions reproduce which figures;
a FLOP figure is never compared with a MAC count. A published row is compared with every
setting of its backbone and variant in the results.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnprof.report.formats import signed
from attnprof.report.tables import ordered_cells
from attnprof.results import Cell, ResultsDocument
from attnprof.results.printed import PrintedFigure


@dataclass(frozen=True)
class FigureCheck:
    """One printed figure against one measured value (``None``: not measured)."""

    figure: PrintedFigure
    measured: float | None
    convention: str | None = None  # None for parameters

    @property
    def reproduced(self) -> bool | None:
        return None if self.measured is None else self.figure.reproduced_by(self.measured)

    @property
    def measured_printed(self) -> str | None:
        """The measured value written as the figure was printed (same scale and decimals)."""
        return None if self.measured is None else self.figure.render(self.measured)

    @property
    def diff_pct(self) -> float | None:
        if self.measured is None or not self.figure.value:
            return None
        return (self.measured - self.figure.value) / self.figure.value * 100


@dataclass(frozen=True)
class PublishedComparison:
    """One published row against one measured cell (or the reason there is none).

    ``cost`` is judged under the row's convention; ``alternatives`` check the same printed
    cost under every other convention counted in its unit.
    """

    backbone: str
    variant: str
    source: str
    setting: str | None = None
    params: FigureCheck | None = None
    cost: FigureCheck | None = None
    alternatives: tuple[FigureCheck, ...] = ()
    why: str = ""
    problem: str | None = None  # why nothing (or only part) could be compared

    @property
    def checks(self) -> list[FigureCheck]:
        return [check for check in (self.params, self.cost) if check is not None]

    @property
    def matches(self) -> bool:
        """True only when every published figure was measured and prints the same digits."""
        return not self.problem and all(check.reproduced for check in self.checks)

    def reproducing(self) -> list[str]:
        """The conventions whose count prints the published cost's digits."""
        return [check.convention for check in (self.cost, *self.alternatives)
                if check is not None and check.reproduced]

    def notes(self) -> list[str]:
        """One sentence per figure that does not reproduce (or could not be compared)."""
        where = f"{self.backbone} {self.variant}" + (f" ({self.setting})" if self.setting else "")
        paper = self.source or "the paper"
        out = [f"{where}: {self.problem}."] if self.problem else []
        for check in self.checks:
            if check.reproduced is not False:
                continue
            how = "" if check.convention is None else f" under {check.convention}"
            sentence = (
                f"{where}: {paper} prints {check.figure}; measured{how}, printed the same way: "
                f"{check.measured_printed} {check.figure.unit_text()} "
                f"({_signed_pct(check.diff_pct)})."
            )
            if check is self.cost:
                others = self.reproducing()
                sentence += (f" Reproduced by {', '.join(others)} instead." if others else
                             " No counted convention reproduces it.")
            if self.why:
                sentence += f" Known: {self.why}"
            out.append(sentence)
        return out


def _signed_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{signed(value, 2)}%"


def compare_published(doc: ResultsDocument) -> list[PublishedComparison]:
    """Every published row of the suite against what was measured, in the suite's order."""
    cells = ordered_cells(doc)
    out = []
    for row in doc.suite.published:
        base = dict(backbone=row.backbone, variant=row.variant, source=row.source or "",
                    why=row.why)
        matching = [c for c in cells if (c.backbone, c.variant) == (row.backbone, row.variant)]
        if not matching:
            out.append(PublishedComparison(**base, problem="not in these results"))
        for cell in matching:
            out.append(_compare(base, row, cell))
    return out


def _compare(base: dict, row, cell: Cell) -> PublishedComparison:
    setting = cell.setting
    params = row.params_figure
    cost = row.cost_figure
    if not cell.ok:
        return PublishedComparison(
            **base, setting=setting,
            problem=f"not measured: the cell failed ({cell.failure.error})",
            params=None if params is None else FigureCheck(params, None),
            cost=None if cost is None else FigureCheck(cost, None, row.convention),
        )
    counts = cell.profile.counts
    params_check = None if params is None else FigureCheck(params, float(cell.profile.params))
    if cost is None:
        return PublishedComparison(**base, setting=setting, params=params_check)
    record = counts.get(row.convention)
    problem = None
    if record is None or record.unit != cost.unit:
        why = f"count is in {record.unit}" if record else "convention was not counted here"
        problem = f"{cost} not compared: the {row.convention!r} {why}"
    cost_check = FigureCheck(cost, None if problem else float(record.value), row.convention)
    alternatives = tuple(
        FigureCheck(cost, float(count.value), name) for name, count in counts.items()
        if name != row.convention and count.unit == cost.unit
    )
    return PublishedComparison(**base, setting=setting, params=params_check, cost=cost_check,
                               alternatives=alternatives, problem=problem)
