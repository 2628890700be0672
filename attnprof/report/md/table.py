"""GitHub Markdown tables from the column contract: headers, alignment and formats come from
each :class:`~attnprof.report.columns.Column`; a row gives the values, never the text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attnprof.report.columns import Column


def table(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> str:
    """A table of ``rows`` (one value per column, formatted by the column's ``text``)."""
    header = [column.header for column in columns]
    body = [[column.show(value) for column, value in zip(columns, row, strict=True)]
            for row in rows]
    return text_table(header, body, "".join(column.align for column in columns))


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A table of text already formatted. ``align`` has one letter per column, ``l`` or
    ``r``; by default the first column is left-aligned (a name) and the rest right-aligned."""
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[_escape(h) for h in header], *([_escape(v) for v in row] for row in rows)]
    lines = ["| " + " | ".join(cells[0]) + " |"]
    lines.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def title(backbone: str, setting: str, extra: str = "") -> str:
    """``### resnet50 · fc@224x224`` (`` · cpu b1`` with ``extra``)."""
    return f"### {backbone} · {setting}" + (f" · {extra}" if extra else "")
