"""Counting the cost of a model under named conventions.

A figure is meaningless without its convention, so attnprof never prints one without the other:

- ``paper``  (MAC): the classic per-module counter behind the published tables;
- ``fvcore`` (MAC): ``fvcore.nn.FlopCountAnalysis`` as it is (jit trace, real tensors: slow);
- ``thop``   (MAC): ``thop.profile`` as it is (with its own, sometimes wrong, parameter count);
- ``full``   (FLOP): every aten op priced by attnprof's rule table, nothing silently 0, with the
  bytes each op moves;
- ``conv-linear`` (MAC): multiply-adds of convolutions and linear layers only (the MobileNet
  papers' MAdds);
- and any convention a user declares (:func:`register_convention`, or a suite file).

Conventions are data (:mod:`~attnprof.counting.conventions`): the rules conventions are counted
by one engine (:mod:`~attnprof.counting.engine`), fvcore and thop by wrappers of their own.
:func:`count` returns a :class:`ConventionCount`.
:func:`attnprof.profiling.profile` builds the models and gathers the counts into a
:class:`ProfileRecord`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from attnprof.counting.conventions import (
    CONVENTIONS,
    DEFAULT_CONVENTIONS,
    UNITS,
    Convention,
    get_convention,
    register_convention,
)
from attnprof.results.counts import ConventionCount, ProfileRecord


def count(
    model: nn.Module,
    shape: Sequence[int],
    convention: str | Convention = "full",
    *,
    attention: Iterable[str] | None = None,
    breakdown: bool = False,
) -> ConventionCount:
    """Count ``model`` on an input of ``shape`` (``(N, C, H, W)``) under ``convention``.

    ``attention`` names the modules whose share to report (default:
    ``model.attention_modules()`` where the model has it, else none). Build the model on the
    meta device for every convention but ``fvcore``, which materialises a meta model on the CPU
    itself (with uninitialised weights). ``breakdown`` adds where the count sits, per module
    and per operator (:class:`~attnprof.results.counts.Breakdown`).
    """
    return get_convention(convention).count(model, tuple(shape), attention, breakdown=breakdown)


__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTIONS",
    "UNITS",
    "Convention",
    "ConventionCount",
    "ProfileRecord",
    "count",
    "get_convention",
    "register_convention",
]
