"""The ``paper`` convention: the classic per-module MAC counter of the SGE and SA-Net tables.

Caveat first: this counter prices only a handful of layer *modules*, each time one is called, and
counts everything else as 0: sigmoid, softmax, BatchNorm1d, LayerNorm, GroupNorm, Conv1d,
functional calls, element-wise products and sums, the residual add. That is how the published
"GFLOPs" (really GMACs) were counted, so it reproduces them, and it is why the papers could call
their modules almost free. What ran and counted 0 is listed under ``uncounted`` (module types
and functional aten ops that did arithmetic), so nothing is hidden.

The rules (:data:`PAPER_RULES`, by module type; a subclass takes its nearest listed base's rule;
the convention is declared in :mod:`~attnprof.counting.conventions` and counted by
:mod:`~attnprof.counting.engine`):

- Conv2d: k*k * (C_in / groups) * C_out * H_out * W_out per sample, + C_out * H_out * W_out
  when it has a bias (``"macs + bias"``);
- Linear: in * out per row (the bias is not counted);
- BatchNorm2d: 2 per element when affine (1 otherwise);
- ReLU family (ReLU, ReLU6, LeakyReLU, PReLU, ELU): 1 per output element;
- max/avg pooling, adaptive ones included: 1 per input element;
- Upsample: 1 per output element.
"""

from __future__ import annotations

from torch import nn


def _batch_norm2d(module: nn.BatchNorm2d, in_numel: int, out_numel: int) -> int:
    """2 per element when affine (scale and shift), 1 otherwise."""
    return in_numel * (2 if module.affine else 1)


_POOLING = [f"{kind}{dims}d" for kind in ("MaxPool", "AvgPool", "AdaptiveMaxPool",
                                          "AdaptiveAvgPool") for dims in (1, 2, 3)]

PAPER_RULES: dict = {
    "Conv2d": "macs + bias",
    "Linear": "macs",  # rows * in * out: the bias is not counted
    "BatchNorm2d": _batch_norm2d,
    **{relu: "output" for relu in ("ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU")},
    **{pool: "input" for pool in _POOLING},
    "Upsample": "output",
}
"""The ``paper`` convention's module rules: rule texts (see :mod:`~attnprof.counting.rule_text`)
and one function, where the count depends on the module's setting."""
