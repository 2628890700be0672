"""The ``thop`` convention: ``thop.profile`` (pytorch-OpCounter) as it is.

Caveats first: thop prices leaf modules by type with forward hooks, in MACs. It counts ReLU and
max pooling as 0, misses every functional call and every module type it has no rule for, and
its parameter count skips parameters that a module owns directly instead of through a child
layer (SGE's and SA's gates), so it under-reports those models. attnprof reports thop's figure
unchanged, lists what ran and counted 0 under ``uncounted``, and keeps thop's own parameter
count as ``reported_params`` beside the model's exact one.

thop registers ``total_ops``/``total_params`` buffers on every module and removes them only
from the modules it hooked; attnprof therefore runs it on a deep copy of the model, which it
throws away, so the model it was given is never touched. It runs on meta tensors and falls back
to CPU (uninitialised weights; values do not matter to a counter) if thop cannot.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

from attnprof.counting.breakdown import exclusive
from attnprof.counting.breakdown import make as make_breakdown
from attnprof.counting.conventions import CONVENTIONS
from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.tracing import attention_paths, input_like, model_device, trace_leaf_calls
from attnprof.counting.unregistered import census
from attnprof.errors import AttnprofError
from attnprof.results.counts import ConventionCount

SPEC = CONVENTIONS["thop"]


def _layer_ops(tree: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Flatten thop's nested ``{child: (ops, params, children)}`` into qualified names."""
    for name, (ops, _params, children) in tree.items():
        qualified = f"{prefix}{name}"
        yield qualified, ops
        yield from _layer_ops(children, qualified + ".")


def _run_thop(model: nn.Module, shape: Sequence[int]):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), dynamo_stand_in():
        warnings.simplefilter("ignore")  # thop imports distutils' deprecated LooseVersion
        from thop import profile

        return profile(model, inputs=(input_like(model, shape),), verbose=False,
                       ret_layer_info=True)


def count_thop(
    model: nn.Module, shape: Sequence[int], attention: Iterable[str] | None = None,
    breakdown: bool = False,
) -> ConventionCount:
    """Count ``model`` on an input of ``shape`` with thop, on a copy of the model (see
    :func:`attnprof.counting.count`); the attention share sums thop's per-module totals."""
    names = attention_paths(model, attention)
    # What thop leaves at 0: leaf calls that did arithmetic in modules whose thop total is 0,
    # and functional ops; this cheap pass on the untouched model finds them, and any module
    # that runs unregistered, which thop's hooks cannot see: refused, never a silent 0.
    attention_named = [(name, model.get_submodule(name)) for name in names]
    with census(model, attention_named, parameters=False) as found:
        trace, _ = trace_leaf_calls(model, shape, names)
    unseen = found.result()
    if unseen is not None and unseen.modules:
        kinds = ", ".join(f"{kind} x{n}" for kind, n in unseen.modules.items())
        raise AttnprofError(
            f"thop cannot count this model: {unseen.module_count} modules ({kinds}) run in "
            f"{unseen.where()} without being registered (a plain list or dict?), and thop's "
            "hooks sit on registered modules only, so its count would miss them; register "
            "them (nn.ModuleList, nn.ModuleDict), or leave thop out of the conventions"
        )
    work = copy.deepcopy(model)
    try:
        total, params, tree = _run_thop(work, shape)
    except Exception:  # any failure on meta: retry the documented way, on CPU
        if model_device(model).type != "meta":
            raise
        work = copy.deepcopy(model).to_empty(device="cpu")
        with torch.no_grad():
            total, params, tree = _run_thop(work, shape)
    del work
    per_module = dict(_layer_ops(tree))
    attention_ops = sum(per_module.get(name, 0.0) for name in names)
    return ConventionCount(
        convention=SPEC.name,
        unit=SPEC.unit,
        value=round(float(total)),
        attention=round(float(attention_ops)),
        uncounted=trace.uncounted(lambda call: per_module.get(call.name, 0.0) > 0),
        description=SPEC.description,
        reported_params=round(float(params)),
        breakdown=_breakdown(model, names, total, per_module) if breakdown else None,
    )


def _breakdown(model: nn.Module, names: list[str], total, per_module: dict):
    """thop's layer totals (a hooked module's own, the sum of its children's otherwise) as self
    counts per module, and per leaf module type."""
    self_counts = exclusive({"": total, **per_module})
    modules = dict(model.named_modules())
    by_type: Counter = Counter()
    for name, value in self_counts.items():
        by_type[type(modules[name]).__name__ if name in modules else "?"] += value
    return make_breakdown(self_counts, by_type, model, names)
