"""A figure as a paper printed it: its digits, scale and unit, so it is compared at that precision.

Caveat first: a printed figure is a rounded one, and TOML or JSON numbers forget trailing
zeros (``4.130`` reads back as ``4.13``), so a published figure is kept as the text it was
printed as: ``"4.130 GMAC"``, ``"300 M MAC"``, ``"25.56 M"`` (parameters). "Reproduces" then
means one thing: the measured value, in the same scale, rounded to the same number of decimals,
prints the same digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from attnprof.errors import AttnprofError

SCALES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNIT_WORDS = {"mac": "MAC", "macs": "MAC", "madd": "MAC", "madds": "MAC", "flop": "FLOP",
               "flops": "FLOP", "param": "params", "params": "params"}
_FIGURE = re.compile(r"^\s*(\d+(?:\.(\d+))?)\s*([kKMGT]?)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class PrintedFigure:
    """``digits`` as printed (``"4.130"``), in ``scale`` (``"G"``) of ``unit`` (``MAC``,
    ``FLOP`` or ``params``)."""

    digits: str
    scale: str
    unit: str

    @classmethod
    def parse(cls, text: str, unit: str | None = None, where: str = "figure") -> PrintedFigure:
        """Read ``"4.130 GMAC"``; ``unit`` is what the figure must be (``params`` may omit it)."""
        found = _FIGURE.match(text) if isinstance(text, str) else None
        word = found.group(4).lower() if found else ""
        named = _UNIT_WORDS.get(word) if word else unit if unit == "params" else None
        if found is None or named is None or (unit is not None and named != unit):
            example = '"25.56 M"' if unit == "params" else '"4.130 GMAC" or "300 M FLOP"'
            raise AttnprofError(
                f"{where}: {text!r} is not a printed figure; write the number exactly as "
                f"printed with its scale (K, M, G, T) and unit, such as {example}"
            )
        return cls(found.group(1), found.group(3).upper(), named)

    @property
    def decimals(self) -> int:
        return len(self.digits.partition(".")[2])

    @property
    def value(self) -> float:
        """The figure in plain units (``4.13e9``)."""
        return float(self.digits) * SCALES[self.scale]

    def render(self, measured: float) -> str:
        """``measured`` written as this figure was printed: same scale, same decimals."""
        return f"{measured / SCALES[self.scale]:.{self.decimals}f}"

    def reproduced_by(self, measured: float) -> bool:
        return self.render(measured) == self.digits

    def unit_text(self) -> str:
        """``"GMAC"``, ``"M params"``."""
        return f"{self.scale} params".strip() if self.unit == "params" else f"{self.scale}{self.unit}"

    def __str__(self) -> str:
        return f"{self.digits} {self.unit_text()}"
