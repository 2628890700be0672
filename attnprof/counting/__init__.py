"""Counting the cost of a model under named conventions.

A figure is meaningless without its convention, so attnprof never prints one without the other:

- ``paper``  (MAC): the classic per-module counter behind the published tables;
- ``fvcore`` (MAC): ``fvcore.nn.FlopCountAnalysis`` as it is (jit trace, real tensors: slow);
- ``thop``   (MAC): ``thop.profile`` as it is (with its own, sometimes wrong, parameter count);
- ``full``   (FLOP): every aten op priced by attnprof's rule table, nothing silently 0, with the
  bytes each op moves.

The table of conventions is :mod:`~attnprof.counting.conventions`; each counter lives in its
own module, and :func:`count` dispatches to them and returns a :class:`ConventionCount`.
:func:`attnprof.profiling.profile` builds the models and gathers the counts into a
:class:`ProfileRecord`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import nn

from attnprof.counting.conventions import CONVENTIONS, DEFAULT_CONVENTIONS, UNITS, Convention
from attnprof.errors import AttnprofError, choices
from attnprof.results.counts import ConventionCount, ProfileRecord


def get_convention(name: str) -> Convention:
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in CONVENTIONS:
        raise AttnprofError(
            f"unknown counting convention {name!r}; valid conventions: {choices(CONVENTIONS)}"
        )
    return CONVENTIONS[key]


def count(
    model: nn.Module,
    shape: Sequence[int],
    convention: str = "full",
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
    return get_convention(convention).counter(model, tuple(shape), attention,
                                              breakdown=breakdown)


__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTIONS",
    "UNITS",
    "Convention",
    "ConventionCount",
    "ProfileRecord",
    "count",
    "get_convention",
]
