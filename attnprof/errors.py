"""The one error type attnprof raises for bad input, and the remedies it suggests.

Library code raises :class:`AttnprofError` with a message that names the problem, the offending
value and what would be valid. Only the command line turns it into a message on stderr and an
exit code; from Python it is an ordinary exception (a ``ValueError``, so callers that already
catch those keep working).

Caveat first: a remedy such as "give channels_arg" is written differently where the user is:
``channels_arg="none"`` in Python, ``-o channels_arg=none`` on the command line,
``channels_arg = "none"`` in a suite file's options table. So a remedy travels as a
:class:`Hint` (structured data) inside the error's message parts, and whoever knows where the
user is renders it (:meth:`AttnprofError.rendered`): ``str(error)`` speaks Python, the command
line renders ``"cli"``, and a suite file's loader marks its errors ``"toml"``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

SYNTAXES = ("python", "cli", "toml")
"""Where a user writes options: Python keywords, ``-o KEY=VALUE``, a suite file."""


@dataclass(frozen=True)
class Placeholder:
    """A value the user must choose (``VALUE``, ``NAME``), shown as written, in quotes where
    the syntax quotes strings when ``string``."""

    text: str
    string: bool = False

    def quoted(self) -> str:
        return json.dumps(self.text) if self.string else self.text


@dataclass(frozen=True)
class Hint:
    """An option (``kind="option"``) or a profile argument (``kind="argument"``, such as
    ``insert_after``) that a remedy suggests setting to ``value``."""

    name: str
    value: Any
    kind: str = "option"

    def render(self, syntax: str) -> str:
        if syntax == "cli":
            if self.kind == "argument":
                return f"--{self.name.replace('_', '-')} {shlex.quote(_cli_value(self.value))}"
            return f"-o {shlex.quote(f'{self.name}={_cli_value(self.value)}')}"
        if syntax == "toml":
            return f"{self.name} = {_toml_value(self.value)}"
        return f"{self.name}={_python_value(self.value)}"


def _python_value(value: Any) -> str:
    if isinstance(value, Placeholder):
        return value.quoted()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python_value(v) for v in value) + "]"
    return repr(value)


def _cli_value(value: Any) -> str:
    """What ``-o KEY=VALUE`` reads back as ``value`` (:func:`attnprof.option_values.parse`):
    a string that reads back as itself stays bare, others are written as literals."""
    from attnprof.option_values import parse

    if isinstance(value, Placeholder):
        return value.text
    if isinstance(value, str):
        same = value.lower() == "none" or parse(value) == value
        return value if same and value.strip() == value and value else json.dumps(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python_value(v) for v in value) + "]"
    return repr(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, Placeholder):
        return value.quoted()
    if value is None:
        return '"none"'  # TOML has no null; attnprof's own options read "none" as None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


class AttnprofError(ValueError):
    """Invalid input or an unmet requirement, with an actionable message.

    The message is given as parts: strings and :class:`Hint` remedies, joined when rendered.
    ``syntax`` says where the user is when the raiser knows it (a suite file's loader: ``toml``);
    ``str()`` renders in that syntax, else in Python's.
    """

    def __init__(self, *parts: Any, syntax: str | None = None):
        super().__init__(*parts)
        self.parts = tuple(parts)
        self.syntax = syntax

    def __str__(self) -> str:
        return self.rendered(self.syntax or "python")

    def __reduce__(self):  # keeps the hints and the syntax across processes
        return (_rebuild, (self.parts, self.syntax))

    def rendered(self, syntax: str) -> str:
        """The message with every hint written as ``syntax`` (one of :data:`SYNTAXES`)."""
        return "".join(p.render(syntax) if isinstance(p, Hint) else str(p) for p in self.parts)

    @property
    def hints(self) -> tuple[Hint, ...]:
        return tuple(part for part in self.parts if isinstance(part, Hint))

    def prefixed(self, prefix: str, *, syntax: str | None = None) -> AttnprofError:
        """The same error with ``prefix`` in front (where it happened), hints kept; raise it
        ``from`` the original's cause."""
        return AttnprofError(prefix, *self.parts, syntax=syntax or self.syntax)


def _rebuild(parts: tuple, syntax: str | None) -> AttnprofError:
    return AttnprofError(*parts, syntax=syntax)


def choices(values) -> str:
    """Render a collection of valid values for an error message: ``a, b, c``."""
    return ", ".join(str(v) for v in values)
