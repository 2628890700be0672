"""Name the attention module (or the network) whose forward raised, in one line.

Caveat first: the hooks that find the module run only around counting, never around timing
(they would add Python calls to every attention module's forward and bias the latency Δ), so an
exception first raised while timing names the model and input but not the module.

A user's module that fails deep inside torch (``ZeroDivisionError: integer modulo by zero``
from a GroupNorm built with 0 groups) says nothing about where it sits. :func:`blamed` turns
such an exception into an :class:`~attnprof.errors.AttnprofError` naming the network, the
variant, the attention module's place, stage and channel count, the input shape and the
original error; the original stays chained (``__cause__``) for ``--debug`` and for the
traceback that results.json keeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from attnprof.errors import AttnprofError


def _shape(value) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(v) for v in shape)  # ints under a jit trace


def _text(shape: Sequence[int]) -> str:
    return "x".join(str(v) for v in shape)


MESSAGE_LIMIT = 300
"""The most characters of a user's exception or warning message that a line quotes."""


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line (runs of whitespace made one space), cut after ``limit``
    characters with how much was left out; the whole text stays in the exception or warning
    (``--debug`` prints it, results.json keeps the traceback)."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return f"{line[:limit]}... ({len(line) - limit:,} more characters: --debug shows them)"


def one_line(exc: BaseException) -> str:
    """``TypeName: first words of the message``, on one line, cut (:func:`cut`)."""
    try:
        message = cut(str(exc)) or "(no message)"
    except Exception:  # a user's exception whose __str__ fails
        message = "(its message cannot be shown)"
    return f"{type(exc).__name__}: {message}"


def _drop(running: list) -> None:  # a forward hook that returned a value would replace output
    running.pop()


@contextmanager
def blamed(
    label: str,
    input_shape: Sequence[int],
    modules: Sequence[tuple[str, nn.Module]] = (),
) -> Iterator[None]:
    """Re-raise an exception from inside the block as one AttnprofError line.

    ``label`` says what runs (``"mynet + se"``); ``modules`` are its attention modules by name:
    while one of them runs, a raised exception is blamed on it (the innermost one). An
    AttnprofError passes through unchanged, unless it wraps an exception raised while an
    attention module ran (fvcore's "could not trace"): that one is blamed on the module.
    """
    running: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []
    handles = []
    for name, module in modules:
        handles.append(module.register_forward_pre_hook(
            lambda m, args, name=name: running.append((name, m, _shape(args[0]) if args else None))
        ))
        handles.append(module.register_forward_hook(lambda m, args, out: _drop(running)))
    try:
        yield
    except Exception as caught:
        exc = caught
        if isinstance(caught, AttnprofError):  # a counter's own wrapping of the model's error
            if not running or caught.__cause__ is None or isinstance(
                caught.__cause__, AttnprofError
            ):
                raise
            exc = caught.__cause__
        if running:
            name, module, seen = running[-1]
            stage = getattr(module, "attnprof_stage", None)
            where = f"stage {stage}, " if isinstance(stage, int) else ""
            channels = f"{seen[1]} channels, " if seen and len(seen) > 1 else ""
            fed = _text(seen) if seen else "not a tensor"
            place = (
                f"attention module {name} ({type(module).__name__}, {where}{channels}"
                f"its input {fed})"
            )
        else:
            place = "the forward"
        raise AttnprofError(
            f"{label} (input {_text(input_shape)}): {place} raised {one_line(exc)}"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
