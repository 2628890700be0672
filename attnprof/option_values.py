"""Option values typed as text (``-o KEY=VALUE``), read as the Python literals they spell.

Caveat first: a value that reads as a literal is that literal, so ``-o kernels=3,5`` is the
tuple ``(3, 5)`` and ``-o name=7`` the integer 7; quote a string that looks like a literal
(``-o name="'7'"``). Everything that is not a literal stays the text as typed
(``-o insert=layer*.*.bn2``, ``-o place=stages:0,1,2``).

    >>> [parse(t) for t in ("32", "0.5", "1e-4", "true", "none", "[3, 5]", "sigmoid")]
    [32, 0.5, 0.0001, True, None, [3, 5], 'sigmoid']

``true``/``false`` and ``none``/``null`` are read in any case, as a shell user writes them.
Only values a results file can hold are accepted (numbers, booleans, ``None``, strings, lists,
tuples and tables of them); a set or bytes literal, or a number too large to be finite
(``1e999``), is refused with what to write instead; ``nan`` and ``inf`` stay text.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from attnprof.errors import AttnprofError

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse(text: str) -> Any:
    """The value ``text`` spells (see the module doc)."""
    stripped = text.strip()
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text  # ``nan`` and ``inf`` too: no results file holds them as numbers
    bad = _unstorable(value)
    if bad is not None:
        raise AttnprofError(
            f"option value {text!r} reads as a {bad}, which a results file cannot hold; use "
            "a number, true/false, none, a string, or a list such as [3, 5]"
        )
    return value


def _unstorable(value: Any) -> str | None:
    """The type name of the first part of ``value`` that JSON cannot hold, else ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "number that is not finite"  # 1e999; JSON has no infinity
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, (list, tuple)):
        return next((bad for v in value if (bad := _unstorable(v)) is not None), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "table with keys that are not strings"
        return next((bad for v in value.values() if (bad := _unstorable(v)) is not None), None)
    return type(value).__name__
