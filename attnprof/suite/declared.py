"""Counting conventions a suite file declares, ``[conventions.NAME]``: read, checked, stored.

Caveat first: a suite's convention exists for that suite only (it is not registered for the
process), so two suites may declare different conventions without meeting; its declaration is
stored in the results file, so a report or a comparison made later describes it like a
built-in without needing the suite file. The format, rule texts only (see
:mod:`attnprof.counting.rule_text`)::

    [conventions.paper-sigmoid]
    unit = "MAC"
    description = "paper, plus one MAC per sigmoid output element"
    summary = "..."                     # optional: the sentence reports show
    base = "paper"                      # optional: start from a rules convention's tables
    bytes = false                       # optional: also count the bytes every op moves
    modules = { Sigmoid = "output" }    # a rule per module type
    ops = { "aten::sigmoid" = "output" }  # a rule per aten op
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attnprof.counting.conventions import (
    CONVENTIONS,
    Convention,
    check_convention,
    get_convention,
)
from attnprof.errors import AttnprofError, choices

KEYS = ("unit", "description", "summary", "base", "bytes", "modules", "ops")


def parse_declarations(raw: Any, source: Path | str) -> tuple[Convention, ...]:
    """Every ``[conventions.NAME]`` table of a suite file, each validated completely."""
    if not isinstance(raw, dict):
        raise AttnprofError(f"{source}: conventions must be tables, [conventions.NAME]")
    found = []
    for name, table in raw.items():
        where = f"{source}: conventions.{name}"
        if not isinstance(table, dict):
            raise AttnprofError(f"{where}: expected a table with keys {choices(KEYS)}")
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise AttnprofError(f"{where}: unknown key {unknown[0]!r}; valid keys: "
                                f"{choices(KEYS)}")
        if name in CONVENTIONS:
            raise AttnprofError(
                f"{where}: {name!r} is already a convention; declare yours under another "
                f"name (taken: {choices(CONVENTIONS)})"
            )
        for key in ("modules", "ops"):
            rules = table.get(key, {})
            if not isinstance(rules, dict) or not all(isinstance(r, str) for r in rules.values()):
                raise AttnprofError(
                    f"{where}: {key} must be a table of rule texts, such as "
                    "{ Sigmoid = \"output\" }"
                )
        if not isinstance(table.get("bytes", False), bool):
            raise AttnprofError(f"{where}: bytes = {table['bytes']!r}; expected true or false")
        found.append(check_convention(from_data(name, table, str(source)), where))
    return tuple(found)


def lookup(declared: tuple[Convention, ...], name: str) -> Convention:
    """The convention ``name``: a suite's own declaration, else the registry's."""
    return next((c for c in declared if c.name == name), None) or get_convention(name)


def from_data(name: str, table: dict[str, Any], origin: str) -> Convention:
    """A :class:`Convention` from its stored declaration (not validated: see
    :func:`parse_declarations`)."""
    return Convention(
        name=name,
        unit=table.get("unit", ""),
        description=table.get("description", ""),
        summary=table.get("summary", ""),
        modules=dict(table.get("modules") or {}),
        ops=dict(table.get("ops") or {}),
        base=table.get("base"),
        bytes=bool(table.get("bytes", False)),
        origin=origin,
        data={key: table[key] for key in KEYS if key in table},
    )
