"""Find where a model's output stops being finite, on the input it is profiled with.

Caveat first: this runs the model for real (a CPU forward with initialised weights), the one
step of counting that computes values, so it costs one forward at the counted batch size; the
input is what the latency timer feeds (standard normal, seed 0). A NaN or an infinity there is
not a counting problem, and counts stay as they are, but the model is broken on this input
(SGE on a 1x1 map divides by the unbiased standard deviation of one element; a softmax taken
over the batch), and a latency measured on such data need not be the latency of real data.

What is flagged is the model's output; a NaN that a later op hides (``torch.where``,
``nan_to_num``) is not. Where a flagged output started is found in a second forward, with hooks on
every module that see each output as the module finishes: the first non-finite output is the
innermost module where it appeared; one that turns non-finite in functional code between
modules is found at the module that encloses it (the model itself at worst, named ``""``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from attnprof.counting.breakdown import attention_owner
from attnprof.counting.tracing import hooked
from attnprof.results.counts import NonFinite

SEED = 0


def profiling_input(shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """The input a model is profiled on: standard normal values of ``shape``, seed 0."""
    generator = torch.Generator().manual_seed(SEED)
    return torch.randn(tuple(shape), generator=generator).to(device)


def _not_finite(output) -> tuple[bool, bool]:
    """``(has NaN, has inf)`` over the floating-point tensors in ``output``."""
    nan = inf = False
    for value in tree_leaves(output):
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and value.device.type != "meta" and not bool(torch.isfinite(value).all()):
            nan = nan or bool(torch.isnan(value).any())
            inf = inf or bool(torch.isinf(value).any())
    return nan, inf


def first_nonfinite(
    model: nn.Module, shape: Sequence[int], attention: Sequence[str] = ()
) -> NonFinite | None:
    """Run ``model`` (on real tensors) on :func:`profiling_input` and return where its output
    first held NaN or inf, or ``None`` when the output is finite. ``attention`` names the
    attention modules, so the record says which one the module lies in.

    One plain forward decides (a single pass over the output); only a model whose output is
    not finite runs a second time, with hooks on every module, to find where it started.
    """
    device = next((t.device for t in (*model.parameters(), *model.buffers())), "cpu")
    x = profiling_input(shape, device)
    with torch.no_grad():
        if not any(_not_finite(model(x))):
            return None
    names = {id(module): name for name, module in model.named_modules()}
    found: list[tuple[str, nn.Module, bool, bool]] = []

    def leave(module, args, output):
        if not found:
            nan, inf = _not_finite(output)
            if nan or inf:
                found.append((names.get(id(module), "?"), module, nan, inf))

    with hooked(list(model.modules()), lambda module, args: None, leave), torch.no_grad():
        model(x)
    name, module, nan, inf = found[0]
    return NonFinite(name, type(module).__name__, attention_owner(name, attention) if name else
                     None, nan, inf, tuple(int(v) for v in shape))
