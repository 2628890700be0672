"""Selective Kernel convolution (SK), in the variant the SGE paper compares against.

Papers: Li, Wang, Hu, Yang, "Selective Kernel Networks", arXiv:1903.06586 (the idea);
Li, Hu, Yang, "Spatial Group-wise Enhance", arXiv:1905.09646 (the variant built here, from the
SGE authors' public SK-ResNet).

SK replaces a bottleneck's 3x3 conv *together with its BatchNorm and ReLU*
(``placement="conv"``): ``SKConv(in_channels, out_channels, stride)`` maps
``(N, in, H, W)`` to ``(N, out, H/stride, W/stride)``. With ``P = out_channels``:

- branch 1: plain ``Conv2d(in, P, 3x3, stride, no bias)`` -> BN -> ReLU;
- branch 2: ``Conv2d(in, P, 3x3, stride, groups=32, no bias)`` -> BN -> ReLU;
- fuse: global average pool of the branches' sum -> ``Conv2d(P, P/16, 1x1, no bias)`` ->
  BN -> ReLU -> ``Conv2d(P/16, 2P, 1x1, no bias)`` -> softmax across the two branches ->
  ``a1 * branch1 + a2 * branch2``.

Replacing conv2 + bn2 of every ResNet-50 bottleneck adds ``15/32 P^2 + 2P + P/8`` parameters
per block (SK-ResNet-50: 26,154,496).

Deviations and choices:

- NOTE: this is not the SKNet paper's SK unit: SKNet uses a dilated second branch, groups in
  both branches and a fuse width ``max(P/r, 32)``; the SGE authors' variant (built here) uses a
  plain first branch, an undilated grouped second branch and width ``P/16``.
- NOTE: the branches are summed first and pooled once, ``GAP(U1 + U2)`` as in the SKNet paper.
  The SGE authors' public code pools each branch and sums the two vectors: the same numbers,
  but one more pass over the feature map, and a classic counter then gives 4.187 GMAC for
  SK-ResNet-50 where the SGE paper prints 4.185; pooling the sum reproduces the printed figure.
- NOTE: the fuse ReLU and the softmax are function calls, as in the SGE authors' code, so a
  module-hook counter counts the same layers as the published one.
- Like any BatchNorm on a ``(N, d, 1, 1)`` tensor, the fuse BN cannot run in training mode on a
  batch of one sample; profile in eval mode or with a batch of at least 2.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnprof.attention.checks import check_int, divisors_text, reduced_width
from attnprof.errors import AttnprofError


class SKConv(nn.Module):
    """Two-branch selective-kernel 3x3 conv with its own BN and ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels ``P``.
        stride: stride of both 3x3 convs.
        groups: groups of the second branch's conv; must divide both channel counts.
        reduction: fuse bottleneck ratio; fuse width ``out_channels // reduction``.
    """

    attnprof_placement = "conv"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 32,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        check_int("sk", "in_channels", in_channels)
        check_int("sk", "out_channels", out_channels)
        check_int("sk", "stride", stride)
        check_int("sk", "groups", groups)
        if in_channels % groups or out_channels % groups:
            common = math.gcd(in_channels, out_channels)
            valid = [g for g in range(1, common + 1) if common % g == 0]
            raise AttnprofError(
                f"sk: groups ({groups}) must divide in_channels ({in_channels}) and "
                f"out_channels ({out_channels}); valid groups: {divisors_text(valid)}"
            )
        hidden = reduced_width("sk", out_channels, reduction)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.groups = groups
        self.reduction = reduction
        self.conv_plain = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn_plain = nn.BatchNorm2d(out_channels)
        self.relu_plain = nn.ReLU(inplace=True)
        self.conv_grouped = nn.Conv2d(
            in_channels, out_channels, 3, stride, 1, groups=groups, bias=False
        )
        self.bn_grouped = nn.BatchNorm2d(out_channels)
        self.relu_grouped = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc_reduce = nn.Conv2d(out_channels, hidden, 1, bias=False)
        self.bn_fuse = nn.BatchNorm2d(hidden)
        self.fc_expand = nn.Conv2d(hidden, 2 * out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = self.relu_plain(self.bn_plain(self.conv_plain(x)))
        grouped = self.relu_grouped(self.bn_grouped(self.conv_grouped(x)))
        summary = self.pool(plain + grouped)  # (N, P, 1, 1); see the module docstring
        # NOTE: functional ReLU and softmax, as in the SGE authors' code (see module docstring).
        z = torch.relu(self.bn_fuse(self.fc_reduce(summary)))
        n = x.shape[0]
        attention = torch.softmax(self.fc_expand(z).reshape(n, 2, self.out_channels, 1, 1), dim=1)
        return plain * attention[:, 0] + grouped * attention[:, 1]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
            f"groups={self.groups}, reduction={self.reduction}"
        )
