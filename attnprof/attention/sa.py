"""Shuffle Attention (SA).

Paper: Zhang, Yang, "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks",
ICASSP 2021, arXiv:2102.00240.

The map is viewed as ``(N*G, C/G, H, W)`` and each group's channels are split into two halves
of ``C/(2G)`` channels:

- channel half: global average pool ``p``, gate ``sigmoid(cw * p + cb)``;
- spatial half: GroupNorm with one group per channel (``C/(2G)`` groups over ``C/(2G)``
  channels, weight 1, bias 0 at init) giving ``n``, gate ``sigmoid(sw * n + sb)``.

Each half is scaled by its gate, the halves are concatenated, reshaped back to ``(N, C, H, W)``
and the channels are shuffled with 2 groups: output channel ``2i + k`` is channel
``k * C/2 + i`` before the shuffle. ``cw`` and ``sw`` start at 0, ``cb`` and ``sb`` at 1, so at
initialisation the module returns the shuffled ``x * sigmoid(1)``. Parameters: ``3C/G``;
``C`` must be divisible by ``2G``.

The pool, the GroupNorm and the sigmoid are ``nn.Module`` s, as in the official code, so a
module-hook counter sees the same layers as the published one.

Deviations and choices: none in the computation.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.attention.checks import check_int, divisors_text
from attnprof.errors import AttnprofError


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: ``(N, g*m, H, W)`` -> channel ``i*g + k`` is ``k*m + i``."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SA(nn.Module):
    """Shuffle Attention for a ``(N, C, H, W)`` feature map.

    Args:
        channels: number of channels ``C``; must be divisible by ``2 * groups``.
        groups: number of groups ``G`` (64 in the paper).
    """

    def __init__(self, channels: int, groups: int = 64) -> None:
        super().__init__()
        check_int("sa", "channels", channels)
        check_int("sa", "groups", groups)
        if channels % (2 * groups):
            valid = [g for g in range(1, channels + 1) if channels % (2 * g) == 0]
            raise AttnprofError(
                f"sa: channels ({channels}) must be divisible by 2*groups ({2 * groups}); "
                f"valid groups for {channels} channels: {divisors_text(valid)}"
            )
        self.channels = channels
        self.groups = groups
        half = channels // (2 * groups)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.cweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.norm = nn.GroupNorm(half, half)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        grouped = x.reshape(n * self.groups, c // self.groups, h, w)
        x_channel, x_spatial = grouped.chunk(2, dim=1)
        channel_gate = self.gate(self.cweight * self.pool(x_channel) + self.cbias)
        spatial_gate = self.gate(self.sweight * self.norm(x_spatial) + self.sbias)
        out = torch.cat([x_channel * channel_gate, x_spatial * spatial_gate], dim=1)
        return channel_shuffle(out.reshape(n, c, h, w), 2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
