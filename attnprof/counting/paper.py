"""The ``paper`` convention: the classic per-module MAC counter of the SGE and SA-Net tables.

Caveat first: this counter prices only a handful of layer *modules*, each time one is called, and
counts everything else as 0: sigmoid, softmax, BatchNorm1d, LayerNorm, GroupNorm, Conv1d,
functional calls, element-wise products and sums, the residual add. That is how the published
"GFLOPs" (really GMACs) were counted, so it reproduces them, and it is why the papers could call
their modules almost free. What ran and counted 0 is listed under ``uncounted`` (module types
and functional aten ops that did arithmetic), so nothing is hidden.

The rules (:data:`PAPER_RULES`, by module type; a subclass takes its nearest listed base's rule):

- Conv2d: k*k * (C_in / groups) * C_out * H_out * W_out per sample, + C_out * H_out * W_out
  when it has a bias;
- Linear: in * out per row (the bias is not counted);
- BatchNorm2d: 2 per element when affine (1 otherwise);
- ReLU family (ReLU, ReLU6, LeakyReLU, PReLU, ELU): 1 per output element;
- max/avg pooling, adaptive ones included: 1 per input element;
- Upsample: 1 per output element.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from torch import nn

from attnprof.counting.breakdown import make as make_breakdown
from attnprof.counting.conventions import CONVENTIONS
from attnprof.counting.tracing import LeafCall, attention_paths, trace_leaf_calls
from attnprof.results.counts import ConventionCount

SPEC = CONVENTIONS["paper"]

ModuleRule = Callable[[nn.Module, int, int], int]
"""``rule(module, input_elements, output_elements) -> MACs`` for one call."""


def _conv2d(module: nn.Conv2d, in_numel: int, out_numel: int) -> int:
    # out_numel = N * C_out * H_out * W_out; each output element is a dot product of length
    # k_h * k_w * C_in / groups, plus one add for the bias.
    kernel = math.prod(module.kernel_size)
    macs = out_numel * kernel * (module.in_channels // module.groups)
    return macs + (out_numel if module.bias is not None else 0)


def _linear(module: nn.Linear, in_numel: int, out_numel: int) -> int:
    return out_numel * module.in_features  # rows * in * out, bias not counted


def _batch_norm2d(module: nn.BatchNorm2d, in_numel: int, out_numel: int) -> int:
    return in_numel * (2 if module.affine else 1)


def _per_output(module: nn.Module, in_numel: int, out_numel: int) -> int:
    return out_numel


def _per_input(module: nn.Module, in_numel: int, out_numel: int) -> int:
    return in_numel


PAPER_RULES: dict[type, ModuleRule] = {
    nn.Conv2d: _conv2d,
    nn.Linear: _linear,
    nn.BatchNorm2d: _batch_norm2d,
    nn.ReLU: _per_output,
    nn.ReLU6: _per_output,
    nn.LeakyReLU: _per_output,
    nn.PReLU: _per_output,
    nn.ELU: _per_output,
    nn.MaxPool1d: _per_input,
    nn.MaxPool2d: _per_input,
    nn.MaxPool3d: _per_input,
    nn.AvgPool1d: _per_input,
    nn.AvgPool2d: _per_input,
    nn.AvgPool3d: _per_input,
    nn.AdaptiveMaxPool1d: _per_input,
    nn.AdaptiveMaxPool2d: _per_input,
    nn.AdaptiveMaxPool3d: _per_input,
    nn.AdaptiveAvgPool1d: _per_input,
    nn.AdaptiveAvgPool2d: _per_input,
    nn.AdaptiveAvgPool3d: _per_input,
    nn.Upsample: _per_output,
}


def paper_rule(module: nn.Module) -> ModuleRule | None:
    """The rule for ``module``'s type or its nearest listed base class, or None (counts 0)."""
    for cls in type(module).__mro__:
        if cls in PAPER_RULES:
            return PAPER_RULES[cls]
    return None


def call_macs(call: LeafCall) -> int:
    rule = paper_rule(call.module)
    return 0 if rule is None else int(rule(call.module, call.in_numel, call.out_numel))


def count_paper(
    model: nn.Module, shape: Sequence[int], attention: Iterable[str] | None = None,
    breakdown: bool = False,
) -> ConventionCount:
    """Count ``model`` on an input of ``shape`` under the ``paper`` convention (see
    :func:`attnprof.counting.count`); cheap on the meta device."""
    names = attention_paths(model, attention)
    trace, _ = trace_leaf_calls(model, shape, names)
    total = attention_total = 0
    by_module: Counter = Counter()
    by_type: Counter = Counter()
    for call in trace.calls:
        macs = call_macs(call)
        total += macs
        by_module[call.name] += macs
        by_type[type(call.module).__name__] += macs
        if call.in_attention:
            attention_total += macs
    return ConventionCount(
        convention=SPEC.name,
        unit=SPEC.unit,
        value=total,
        attention=attention_total,
        uncounted=trace.uncounted(lambda call: paper_rule(call.module) is not None),
        description=SPEC.description,
        breakdown=make_breakdown(by_module, by_type, model, names) if breakdown else None,
    )
