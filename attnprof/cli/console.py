"""The one place the command line makes its rich consoles, so that its tables survive logs.

Caveat first: rich asks the terminal for its width and, when there is none (a pipe, a file, a
CI log), falls back to 80 columns, then squeezes, wraps or cuts wide tables with "…". A log has
no width to respect, so off a terminal :func:`console` gives a console

- as wide as :data:`LOG_WIDTH`, rather than one measured to fit each renderable: rich lays a
  table out at its natural width and expands it to the console only when asked (no table of
  attnprof's is), so a very large width only lifts the limit, costs nothing, and holds for
  every renderable printed later without measuring each one;
- without colour, cursor or style codes, whatever ``FORCE_COLOR`` or ``TTY_COMPATIBLE`` say: a
  log is read with grep and diff, and the progress display of ``attnprof run`` (which asks
  :attr:`rich.console.Console.is_terminal`) must not draw into it;
- that honours an explicit ``COLUMNS`` (``COLUMNS=120 attnprof list | less``): someone chose
  that width, as rich and argparse let them on a terminal. A CI system that exports
  ``COLUMNS=80`` therefore gets 80-column tables again; unset it there.

On a terminal nothing changes: rich reads the width (and ``COLUMNS``) and the colours itself.
Every console has rich's automatic highlighting of numbers and quotes off, as ``attnprof
compare`` always had: the tables style what they mean to style.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

LOG_WIDTH = 10_000
"""The width of a console that writes to a log: wider than any table attnprof prints."""


def console(file: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console writing to ``file`` (default: stdout, or stderr with ``stderr=True``): rich's
    own on a terminal, a plain one of :func:`log_width` columns elsewhere."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if _is_terminal(stream):
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=log_width(), highlight=False, no_color=True,
                   force_terminal=False, soft_wrap=False)


def log_width() -> int:
    """``COLUMNS`` when it is set to a positive whole number, else :data:`LOG_WIDTH`."""
    columns = os.environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else LOG_WIDTH


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream: treat it as a log
        return False
