"""The one error type attnprof raises for bad input.

Library code raises :class:`AttnprofError` with a message that names the problem, the offending
value and what would be valid. Only the command line turns it into a message on stderr and an
exit code; from Python it is an ordinary exception (a ``ValueError``, so callers that already
catch those keep working).
"""

from __future__ import annotations


class AttnprofError(ValueError):
    """Invalid input or an unmet requirement, with an actionable message."""


def choices(values) -> str:
    """Render a collection of valid values for an error message: ``a, b, c``."""
    return ", ".join(str(v) for v in values)
