"""Spatial Group-wise Enhance (SGE).

Paper: Li, Hu, Yang, "Spatial Group-wise Enhance: Improving Semantic Feature Learning in
Convolutional Networks", arXiv:1905.09646.

The channels are split into ``G`` groups. In each group, every spatial position's feature
vector is dotted with the group's global average vector; that ``H x W`` map is normalised
(subtract its mean, divide by its *unbiased* standard deviation plus 1e-5), passed through a
per-group affine ``t = w_g * map + b_g``, and the group's features are scaled by
``sigmoid(t)``. Parameters: ``2G`` (``w`` and ``b``), initialised ``w = 0``, ``b = 1`` as in the
official release (one public copy initialises ``b = 0``; that is not the official one).

The average pool and the sigmoid are ``nn.Module`` s so that a module-hook counter sees the
same layers as the published counter; the product, the sum and the normalisation are plain
tensor ops, as in the official code.

Deviations and choices:

- NOTE: with a 1 x 1 feature map the unbiased standard deviation of a single value is
  undefined and the output is NaN, exactly as in the official code. It is kept that way
  (a shape check would break profiling at tiny resolutions); use ``H * W >= 2``.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.attention.checks import check_int, divisors_text
from attnprof.errors import AttnprofError

EPS = 1e-5
"""Added to the unbiased standard deviation, as in the official code."""


class SGE(nn.Module):
    """Spatial Group-wise Enhance for a ``(N, C, H, W)`` feature map.

    Args:
        channels: number of channels ``C``; must be divisible by ``groups``.
        groups: number of groups ``G`` (64 in the paper).
    """

    def __init__(self, channels: int, groups: int = 64) -> None:
        super().__init__()
        check_int("sge", "channels", channels)
        check_int("sge", "groups", groups)
        if channels % groups:
            valid = [g for g in range(1, channels + 1) if channels % g == 0]
            raise AttnprofError(
                f"sge: channels ({channels}) must be divisible by groups ({groups}); "
                f"valid groups for {channels} channels: {divisors_text(valid)}"
            )
        self.channels = channels
        self.groups = groups
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        grouped = x.reshape(n * g, c // g, h, w)
        # Similarity of each position with the group's mean feature vector.
        similarity = (grouped * self.pool(grouped)).sum(dim=1)  # (N*G, H, W)
        flat = similarity.reshape(n * g, h * w)
        centred = flat - flat.mean(dim=1, keepdim=True)
        normalised = centred / (centred.std(dim=1, keepdim=True) + EPS)
        t = normalised.reshape(n, g, h, w) * self.weight + self.bias
        scale = self.gate(t).reshape(n * g, 1, h, w)
        return (grouped * scale).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
