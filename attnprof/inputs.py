"""Input sizes: one parser for ``--input``, a suite's ``models.input`` and the latency API.

Caveats first: only :func:`parse_input` reads text (``"800x1333"``: what a person types); the
latency API's :func:`parse_input_chw` refuses a string as a caller's mistake. A bool is never a
size, although Python counts ``True`` as 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from attnprof.errors import AttnprofError

IN_CHANNELS = 3
"""Channels of an input given by its size alone: RGB images."""

_TEXT = re.compile(r"^\s*(\d+)\s*(?:[x×X,]\s*(\d+)\s*)?$")


def parse_input(value: int | str | Sequence[int]) -> tuple[int, int]:
    """``(H, W)``: ``224`` or ``"224"`` is square, ``"800x1333"`` or ``(800, 1333)`` is H x W."""
    match = _TEXT.match(value) if isinstance(value, str) else None
    dims = _dims((int(match[1]), int(match[2] or match[1])) if match else value)
    if len(dims) != 2:
        raise AttnprofError(
            f"invalid input size {value!r}: use N for N x N or HxW, positive integers "
            "(e.g. 224 or 800x1333)"
        )
    return dims  # type: ignore[return-value]


def parse_input_chw(value: int | Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)``: ``S`` (square) or ``(H, W)`` with :data:`IN_CHANNELS`, or ``(C, H, W)``."""
    dims = _dims(value)
    if len(dims) not in (2, 3):
        raise AttnprofError(
            f"invalid input size {value!r}: use S, (H, W) or (C, H, W), positive integers"
        )
    return dims if len(dims) == 3 else (IN_CHANNELS, *dims)  # type: ignore[return-value]


def _dims(value: Any) -> tuple[int, ...]:
    """The positive integers of a number (twice: a square), a tuple or a list; else ``()``."""
    dims = (value, value) if isinstance(value, int) else value
    ok = isinstance(dims, (tuple, list)) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims
    )
    return tuple(dims) if ok else ()
