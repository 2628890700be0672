"""The one place the command line makes its rich consoles, so that output works in logs.

Caveat first: rich asks the terminal for its width and falls back to 80 columns when there is
none (a pipe, a file, a CI log), and then squeezes, wraps or cuts wide tables with "…". A log
has no width to respect, so there every table is printed at its natural width, whole, with no
colour or cursor codes. An explicit ``COLUMNS`` still wins (``COLUMNS=120 attnprof list |
less``), and on a terminal nothing changes.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

LOG_WIDTH = 10_000
"""Wide enough for any table: rich lays a table out at its natural width (tables are not
expanded to the console), so this only removes the limit."""


def console(file: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console writing to ``file`` (default: stdout, or stderr with ``stderr=True``)."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if _is_terminal(stream):
        return Console(file=stream, highlight=False)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else LOG_WIDTH
    return Console(file=stream, width=width, highlight=False, no_color=True,
                   force_terminal=False, soft_wrap=False)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: treat as a log
        return False
