"""Frozen dataclasses to JSON objects and back, read from their fields' type hints.

:func:`encode` writes tuples as lists and a nested record through its ``to_dict``;
:func:`decode` rebuilds tuples (items typed as the tuple's first item type), nested records
(through their ``from_dict``) and ``X | None``, and takes any other value as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import MISSING, fields, is_dataclass
from types import NoneType, UnionType
from typing import Any, Self, Union, get_args, get_origin, get_type_hints

from attnprof.errors import AttnprofError


def encode(record: Any, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The JSON object of a dataclass instance: its fields, or ``keys`` in that order."""
    names = [f.name for f in fields(record)] if keys is None else keys
    return {name: _plain(getattr(record, name)) for name in names}


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return value.to_dict() if hasattr(value, "to_dict") else encode(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def decode(cls: type, data: Any, what: str | None = None) -> Any:
    """An instance of the dataclass ``cls`` from its JSON object; keys it has no field for are
    ignored. ``what`` names the record in errors (default: from the class name)."""
    what = what or re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()
    if not isinstance(data, dict):
        raise AttnprofError(f"{what} must be a mapping, got {type(data).__name__}")
    missing = sorted(
        f.name for f in fields(cls)
        if f.name not in data and f.default is MISSING and f.default_factory is MISSING
    )
    if missing:
        raise AttnprofError(f"{what} lacks fields: {', '.join(missing)}")
    hints = _hints(cls)
    return cls(**{name: _typed(hints[name], data[name]) for name in hints if name in data})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _typed(hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        if value is None:
            return None
        hint = next(arg for arg in get_args(hint) if arg is not NoneType)
        origin = get_origin(hint)
    if isinstance(hint, type) and isinstance(value, hint):  # already decoded
        return value
    if origin is tuple:
        return tuple(_typed(get_args(hint)[0], v) for v in value)
    if origin is dict:
        return dict(value)
    if hasattr(hint, "from_dict"):
        return hint.from_dict(value)
    return decode(hint, value) if is_dataclass(hint) else value


class JsonRecord:
    """``to_dict`` / ``from_dict`` for a frozen dataclass of JSON values and other records."""

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return decode(cls, data)
