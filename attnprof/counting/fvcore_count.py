"""The ``fvcore`` convention: ``fvcore.nn.FlopCountAnalysis`` as it is.

Caveats first: fvcore counts "one fused multiply-add as one flop" (so its unit is the MAC) for
the ops it has handles for: convolutions, matrix products, normalisations, adaptive average
pooling, upsampling. Ops it knows to be cheap (relu, max, views, ...) it ignores outright; every
other op (sigmoid, mul, mean, softmax, ...) is "unsupported" and counts 0. attnprof reports
fvcore's total unchanged and the unsupported ops, with how often each ran, under
``uncounted``.

fvcore traces the model with ``torch.jit.trace``, so it needs real tensors: this is the slow
convention. Its warnings and log lines are silenced; their content is in the record instead.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

from attnprof.blame import one_line
from attnprof.counting.breakdown import exclusive
from attnprof.counting.breakdown import make as make_breakdown
from attnprof.counting.conventions import CONVENTIONS
from attnprof.counting.tracing import attention_paths, input_like, model_device
from attnprof.counting.unregistered import census
from attnprof.errors import AttnprofError
from attnprof.results.counts import ConventionCount

SPEC = CONVENTIONS["fvcore"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence fvcore's logger and every Python warning (TracerWarning included)."""
    logger = logging.getLogger("fvcore")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


def analysis(model: nn.Module, shape: Sequence[int]):
    """A quiet ``FlopCountAnalysis`` of ``model`` on a zero input of ``shape``.

    A meta-device model is materialised on the CPU first (a copy, uninitialised weights).
    """
    with _quiet():
        from fvcore.nn import FlopCountAnalysis

    if model_device(model).type == "meta":
        model = copy.deepcopy(model).to_empty(device="cpu")
    return (
        FlopCountAnalysis(model, (input_like(model, shape),))
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
        .tracer_warnings("none")
    )


def count_fvcore(
    model: nn.Module, shape: Sequence[int], attention: Iterable[str] | None = None,
    breakdown: bool = False,
) -> ConventionCount:
    """Count ``model`` on an input of ``shape`` with fvcore (see :func:`attnprof.counting.count`);
    the attention share is taken from fvcore's ``by_module()``.

    A model that uses parameters it does not register (kept in a plain list) cannot be traced
    as it is: the tracer refuses to make a tensor that requires grad a constant. Those
    parameters are found (:mod:`attnprof.counting.unregistered`) and traced with
    ``requires_grad`` off, then restored; fvcore then counts their ops like any other.
    """
    names = attention_paths(model, attention)
    try:
        return _count(model, shape, names, breakdown)
    except AttnprofError as exc:
        if exc.__cause__ is None:
            raise
        frozen = _unregistered_parameters(model, shape)
        if not frozen:
            raise
    try:
        for param in frozen:
            param.requires_grad_(False)
        return _count(model, shape, names, breakdown)
    finally:
        for param in frozen:
            param.requires_grad_(True)


def _unregistered_parameters(model: nn.Module, shape: Sequence[int]) -> list[nn.Parameter]:
    """The unregistered parameters that require grad, found in one forward (none when the
    model cannot run here: the trace's own error then stands)."""
    if model_device(model).type == "meta":
        return []
    try:
        with census(model) as found, torch.no_grad():
            model(input_like(model, shape))
    except Exception:
        return []
    return [param for param, _ in found.parameters.values() if param.requires_grad]


def _count(model: nn.Module, shape: Sequence[int], names: list[str],
           breakdown: bool) -> ConventionCount:
    flops = analysis(model, shape)
    try:
        with _quiet(), torch.no_grad():
            total = flops.total()
            by_module = flops.by_module()
            by_operator = flops.by_operator() if breakdown else {}
            unsupported = flops.unsupported_ops()
    except AttnprofError:
        raise
    except Exception as exc:  # jit tracing can fail on any model code
        raise AttnprofError(f"fvcore could not trace the model: {one_line(exc)}") from exc
    return ConventionCount(
        convention=SPEC.name,
        unit=SPEC.unit,
        value=int(total),
        attention=int(sum(by_module.get(name, 0) for name in names)),
        uncounted=dict(sorted((str(op), int(n)) for op, n in unsupported.items())),
        description=SPEC.description,
        breakdown=make_breakdown(exclusive(by_module), by_operator, model, names)
        if breakdown else None,
    )
