"""Option checks shared by the attention modules: one wording for one kind of mistake."""

from __future__ import annotations

from attnprof.errors import AttnprofError, choices


def check_int(module: str, name: str, value, minimum: int = 1) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AttnprofError(f"{module}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def reduced_width(module: str, channels: int, reduction: int) -> int:
    """``channels // reduction``, refusing a reduction that leaves no hidden unit."""
    check_int(module, "channels", channels)
    check_int(module, "reduction", reduction)
    hidden = channels // reduction
    if hidden < 1:
        raise AttnprofError(
            f"{module}: reduction ({reduction}) is too large for {channels} channels: "
            f"channels // reduction must be >= 1; use a reduction between 1 and {channels}"
        )
    return hidden


def divisors_text(values) -> str:
    """Render a list of valid values, or ``none`` when there is no valid value."""
    values = list(values)
    return choices(values) if values else "none"
