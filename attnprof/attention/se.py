"""Squeeze-and-Excitation (SE).

Paper: Hu, Shen, Albanie, Sun, Wu, "Squeeze-and-Excitation Networks", arXiv:1709.01507.

The gate: global average pool -> Linear(C, C/r) -> ReLU -> Linear(C/r, C) -> sigmoid, and the
input is scaled per channel. Both linears carry a bias, as in the official model (dropping them
gives 28,071,976 parameters for SE-ResNet-50 instead of the published 28,088,024).

Every step is an ``nn.Module`` (pool, linears, ReLU, sigmoid) so that a module-hook MAC counter
sees the same layers the published counter saw.

Deviations and choices:

- The hidden width is ``channels // reduction`` exactly as in the official code; a reduction
  that leaves no hidden unit is refused instead of silently rounded up.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.attention.checks import reduced_width


class SE(nn.Module):
    """Squeeze-and-Excitation gate for a ``(N, C, H, W)`` feature map.

    Args:
        channels: number of input (and output) channels ``C``.
        reduction: the bottleneck ratio ``r``; the hidden layer has ``C // r`` units.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = reduced_width("se", channels, reduction)
        self.channels = channels
        self.reduction = reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        squeezed = self.pool(x).reshape(n, c)
        weights = self.gate(self.fc2(self.relu(self.fc1(squeezed))))
        return x * weights.reshape(n, c, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"
