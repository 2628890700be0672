"""Numbers to text: one format per kind of figure, shared by every text renderer.

Caveat first: these only format; which unit a column is in, and so which format it takes, is
said once in :mod:`attnprof.report.columns`. A missing number (``None`` or NaN) is always
:data:`DASH`, never 0. Signed differences that round to zero print as ``+0.00``, never
``-0.00``.
"""

from __future__ import annotations

import math

DASH = "—"


def is_missing(value) -> bool:
    """``None`` or NaN: a number the report shows as a dash."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def signed(value: float, digits: int) -> str:
    """``+0.003``; a difference that rounds to zero is ``+0.000``, never ``-0.000``."""
    value = 0.0 if round(value, digits) == 0 else value
    return f"{value:+.{digits}f}"


def fmt_millions(value) -> str:
    """Parameters (or MACs, FLOPs) in M, 3 decimals: ``25.557``."""
    return DASH if is_missing(value) else f"{value / 1e6:.3f}"


def fmt_giga(value) -> str:
    """GMAC or GFLOP: 3 decimals (``4.122``), 4 significant digits below 1 G (``0.1495``)."""
    if is_missing(value):
        return DASH
    giga = value / 1e9
    digits = 3 if abs(giga) >= 1 or giga == 0 else 3 - math.floor(math.log10(abs(giga)))
    return f"{giga:.{digits}f}"


def fmt_mb(value) -> str:
    """Bytes in MB (10^6 bytes), 1 decimal."""
    return DASH if is_missing(value) else f"{value / 1e6:.1f}"


def fmt_pct(value, digits: int = 2) -> str:
    """A signed percentage without the % sign (the header says %): ``+0.19``."""
    return DASH if is_missing(value) else signed(value, digits)


def fmt_ms(value, like=None) -> str:
    """Milliseconds with 3-4 significant digits (as many decimals as ``like`` would get)."""
    if is_missing(value):
        return DASH
    scale = abs(value if is_missing(like) else like)
    digits = 1 if scale >= 100 else 2 if scale >= 1 else 3
    return f"{value:.{digits}f}"


def fmt_signed_ms(value) -> str:
    """A difference in milliseconds, signed, 3-4 significant digits: ``+1.09``."""
    if is_missing(value):
        return DASH
    scale = abs(value)
    digits = 1 if scale >= 100 else 2 if scale >= 1 else 3
    return signed(value, digits)


def fmt_plain(value, digits: int = 1) -> str:
    return DASH if is_missing(value) else f"{value:.{digits}f}"


def fmt_interval(delta, lo, hi) -> str:
    """``+20.0 [+15.0, +25.0]``; just the point when there is no interval."""
    if is_missing(delta):
        return DASH
    if is_missing(lo) or is_missing(hi):
        return signed(delta, 1)
    return f"{signed(delta, 1)} [{signed(lo, 1)}, {signed(hi, 1)}]"


def fmt_error(value) -> str:
    """A small error (an output check's): 2 significant digits, ``3.1e-06``."""
    return DASH if is_missing(value) else f"{value:.2g}"


def fmt_share(value) -> str:
    """A share given as a fraction, in percent without the sign: ``0.42`` -> ``42``."""
    return DASH if is_missing(value) else f"{100.0 * value:.0f}"
