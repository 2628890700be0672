"""Counting on meta tensors without importing ``torch._dynamo`` and sympy (over a second of a
cold start).

Caveat first: this stands in for two parts of torch, briefly, so read it before changing it.
On the meta device many ops run torch's Python kernels, and two things there import heavy
modules on first use for answers that are trivial while nothing is being compiled or traced
symbolically:

- torch wraps its Python reference kernels so that a compiler skips them
  (``torch._disable_dynamo``); the wrapper imports ``torch._dynamo`` only to fetch
  ``torch._dynamo.disable``, which, outside a compilation, simply calls the function;
- ``torch._check(cond)`` and the convolution's meta kernel import
  ``torch.fx.experimental.symbolic_shapes`` (and sympy) for ``expect_true``,
  ``guard_or_false``/``guard_or_true``/``guard_size_oblivious``/
  ``statically_known_true``, ``sym_and``/``sym_or``, ``sym_eq`` and, broadcasting,
  ``is_nested_int``, ``has_guarding_hint`` and ``guarding_hint_or_throw``: for plain ``bool``
  and ``int`` values (no symbols) the value itself, ``all``/``any``, ``==``, ``False``,
  ``True`` and the value.

Counting never compiles and its shapes are plain integers, so while a count runs
:func:`dynamo_stand_in` answers those two imports with stand-ins providing just these functions
(given anything but plain bools, they call the real ones), and undoes everything it
touched when the count ends (cached wrappers, module entries), so a later ``torch.compile`` in
the same process gets the real modules. Anything else asked of a stand-in imports the real
module and answers from it: at worst a count is as slow as before, never different. A module
already imported is left alone.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

DYNAMO = "torch._dynamo"
SYMBOLIC = "torch.fx.experimental.symbolic_shapes"
_CACHE = "__dynamo_disable"  # where torch's wrapper caches what disable() returned


class _StandIn(types.ModuleType):
    """A module answering a few names itself and every other one from the real module."""

    def __init__(self, name: str, functions: dict[str, Callable]):
        super().__init__(name)
        self.__dict__.update(functions)
        # ``from module import name`` asks every time whether the module is a package; answer
        # from the instance (an empty package path) instead of through __getattr__ below.
        self.__path__: list[str] = []

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_import_real(self.__name__), name)


def _parent(name: str):
    package, _, child = name.rpartition(".")
    return sys.modules.get(package), child


def _drop(name: str) -> None:
    """Remove the stand-in for ``name`` (if still there) from sys.modules and its package."""
    if isinstance(sys.modules.get(name), _StandIn):
        del sys.modules[name]
    parent, child = _parent(name)
    if parent is not None and isinstance(parent.__dict__.get(child), _StandIn):
        delattr(parent, child)


def _import_real(name: str):
    _drop(name)
    return importlib.import_module(name)


@contextmanager
def _standing_in(name: str, functions: dict[str, Callable]) -> Iterator[_StandIn | None]:
    parent, child = _parent(name)
    if name in sys.modules or parent is None:
        yield None
        return
    stand_in = _StandIn(name, functions)
    sys.modules[name] = stand_in
    setattr(parent, child, stand_in)
    try:
        yield stand_in
    finally:
        _drop(name)


def _identity_on_bool(name: str):
    """``expect_true``, ``guard_or_false``, ...: a plain bool is its own answer."""

    def function(value, *rest):
        if type(value) is bool:
            return value
        return getattr(_import_real(SYMBOLIC), name)(value, *rest)

    return function


def _on_ints(name: str, answer: Callable):
    """``is_nested_int``, ``has_guarding_hint``, ``guarding_hint_or_throw``: a plain int has no
    symbols (not nested, its own hint), so ``answer(value)``; else the real function."""

    def function(value, *rest):
        if type(value) is int:
            return answer(value)
        return getattr(_import_real(SYMBOLIC), name)(value, *rest)

    return function


def _plain(value) -> bool:
    """An int or bool, or a list or tuple of them: nothing symbolic."""
    if isinstance(value, (list, tuple)):
        return all(type(item) in (int, bool) for item in value)
    return type(value) in (int, bool)


def _sym_eq(x, y):
    """``sym_eq`` of plain values: ``==``, with lists and tuples compared item by item."""
    if not (_plain(x) and _plain(y)):
        return _import_real(SYMBOLIC).sym_eq(x, y)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(a == b for a, b in zip(x, y, strict=True))
    return x == y


def _on_bools(name: str, combine: Callable):
    """``sym_and`` / ``sym_or``: ``all`` / ``any`` of plain bools, else the real function."""

    def function(*values):
        if all(type(value) is bool for value in values):
            return combine(values)
        return getattr(_import_real(SYMBOLIC), name)(*values)

    return function


@contextmanager
def dynamo_stand_in() -> Iterator[None]:
    """While counting, answer torch's imports of ``torch._dynamo`` and of the symbolic-shapes
    module with stand-ins (see the module docstring)."""

    touched: list = []

    def disable(fn=None, recursive=True, wrapping=True):
        """Nothing is compiled while counting: disabling the compiler for ``fn`` is ``fn``."""
        touched.append(fn)
        return fn

    with ExitStack() as stack:
        stack.enter_context(_standing_in(DYNAMO, {"disable": disable}))
        stack.enter_context(_standing_in(SYMBOLIC, {
            **{name: _identity_on_bool(name)
               for name in ("expect_true", "guard_or_false", "guard_or_true",
                            "guard_size_oblivious", "statically_known_true",
                            "definitely_true")},
            "sym_and": _on_bools("sym_and", all),
            "sym_or": _on_bools("sym_or", any),
            "sym_eq": _sym_eq,
            "is_nested_int": _on_ints("is_nested_int", lambda value: False),
            "has_guarding_hint": _on_ints("has_guarding_hint", lambda value: True),
            "guarding_hint_or_throw": _on_ints("guarding_hint_or_throw", lambda value: value),
        }))
        try:
            yield
        finally:
            for fn in touched:
                if getattr(fn, _CACHE, None) is fn:
                    delattr(fn, _CACHE)
