"""Bottleneck Attention Module (BAM).

Paper: Park, Woo, Lee, Kweon, "BAM: Bottleneck Attention Module", arXiv:1807.06514.

Placed between ResNet stages (after stages 1, 2 and 3), not inside blocks. Output
``x * (1 + sigmoid(Mc * Ms))`` with, at reduction ``r = 16`` and dilation ``d = 4``:

- ``Mc`` (channel branch, ``(N, C, 1, 1)``): global average pool -> ``Linear(C, C/r)`` ->
  ``BatchNorm1d`` -> ReLU -> ``Linear(C/r, C)``;
- ``Ms`` (spatial branch, ``(N, 1, H, W)``): ``Conv2d(C, C/r, 1x1)`` -> BN -> ReLU ->
  2 x [``Conv2d(C/r, C/r, 3x3, dilation d, padding d)`` -> BN -> ReLU] -> ``Conv2d(C/r, 1, 1x1)``.

All convs and linears carry a bias. BAM-ResNet-50 (C = 256, 512, 1024) has 25,915,099
parameters.

Deviations and choices:

- NOTE: the channel branch's global average pool is a plain mean over ``H, W``, not a pooling
  module. The official code pools with the functional ``avg_pool2d`` (kernel = H, which also
  assumes a square map), so the published module-hook counter never saw it; a plain mean keeps
  the paper-convention count identical to the published one and is correct for non-square
  maps such as the 800 x 1333 detection input.
- Like any BatchNorm1d, the channel branch cannot run in training mode on a batch of one
  sample; profile in eval mode or with a batch of at least 2.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.attention.checks import check_int, reduced_width


class BAM(nn.Module):
    """Bottleneck Attention Module for a ``(N, C, H, W)`` feature map.

    Args:
        channels: number of channels ``C``.
        reduction: bottleneck ratio ``r`` of both branches; hidden width ``C // r``.
        dilation: dilation (and padding) of the spatial branch's two 3x3 convs.
    """

    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4) -> None:
        super().__init__()
        hidden = reduced_width("bam", channels, reduction)
        check_int("bam", "dilation", dilation)
        self.channels = channels
        self.reduction = reduction
        self.dilation = dilation
        self.channel_branch = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
        )
        layers: list[nn.Module] = [
            nn.Conv2d(channels, hidden, 1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        ]
        for _ in range(2):
            layers += [
                nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(hidden, 1, 1))
        self.spatial_branch = nn.Sequential(*layers)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        channel = self.channel_branch(x.mean(dim=(2, 3))).reshape(n, c, 1, 1)
        spatial = self.spatial_branch(x)
        return x * (1 + self.gate(channel * spatial))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, dilation={self.dilation}"
