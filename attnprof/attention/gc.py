"""Global Context block (GC).

Paper: Cao, Xu, Lin, Wei, Hu, "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and
Beyond", arXiv:1904.11492.

Attention pooling, then a bottleneck transform added to every position:

- context: ``Conv2d(C, 1, 1x1, bias)`` gives one logit per position, softmax over the ``H*W``
  positions, and the context vector is the softmax-weighted sum of ``x``;
- transform: ``Conv2d(C, C*ratio, 1x1, bias) -> LayerNorm([C*ratio, 1, 1]) -> ReLU ->
  Conv2d(C*ratio, C, 1x1, bias)``, the last conv zero-initialised (weight and bias), so the
  block starts as the identity;
- output: ``x + transform(context)`` (the module returns the sum, not a gate).

Parameters ``C^2/8 + 2C + 3C/16 + 1`` at ``ratio = 1/16``.

Deviations and choices:

- NOTE: the mask conv is initialised Kaiming-normal (fan-in) with zero bias like the official
  code; the first transform conv keeps PyTorch's default init.
- The weighted sum is a ``matmul`` and the softmax an ``nn.Softmax``; both cost 0 under the
  paper's MAC convention, as in the published counts.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.attention.checks import check_int
from attnprof.errors import AttnprofError


class GC(nn.Module):
    """Global Context block for a ``(N, C, H, W)`` feature map; returns ``x + transform``.

    Args:
        channels: number of channels ``C``.
        ratio: bottleneck ratio; the transform's hidden width is ``int(C * ratio)``.
    """

    def __init__(self, channels: int, ratio: float = 1 / 16) -> None:
        super().__init__()
        check_int("gc", "channels", channels)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise AttnprofError(f"gc: ratio must be a number in (0, 1], got {ratio!r}")
        hidden = int(channels * ratio)
        if hidden < 1:
            raise AttnprofError(
                f"gc: ratio ({ratio}) is too small for {channels} channels: "
                f"int(channels * ratio) must be >= 1; use a ratio >= 1/{channels}"
            )
        self.channels = channels
        self.ratio = ratio
        self.mask = nn.Conv2d(channels, 1, 1)
        self.softmax = nn.Softmax(dim=2)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )
        if not self.mask.weight.is_meta:  # nothing to fill on meta, and slow to decompose there
            nn.init.kaiming_normal_(self.mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.mask.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        weights = self.softmax(self.mask(x).reshape(n, 1, h * w))  # (N, 1, HW)
        context = torch.matmul(x.reshape(n, c, h * w), weights.transpose(1, 2))  # (N, C, 1)
        return x + self.transform(context.reshape(n, c, 1, 1))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, ratio={self.ratio}"
