"""Reading an aten op's arguments, positional or by keyword: shared by the rule tables."""

from __future__ import annotations


def arg(args: tuple, kwargs: dict, index: int, name: str, default=None):
    """The op's argument at position ``index``, else its keyword ``name``, else ``default``."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)
