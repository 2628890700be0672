"""Efficient Channel Attention (ECA).

Paper: Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel Attention for Deep
Convolutional Neural Networks", arXiv:1910.03151.

Global average pool -> ``Conv1d(1, 1, k, padding (k-1)/2, no bias)`` sliding across the channel
axis -> sigmoid -> scale ``x`` per channel. ``k`` parameters per module.

Choosing ``k`` (first match wins):

1. ``kernel_size`` given as an odd integer: used as is;
2. ``kernel_size="adaptive"``: the paper's rule (below), whatever the stage;
3. ``stage`` given (0-based stage, passed by the backbone because ECA is registered as
   stage-aware): the sizes of the authors' released ECA-ResNet-50, ``k = 3, 5, 5, 7`` for the
   four stages (80 parameters in all, ECA-ResNet-50 25,557,112); with
   ``backbone="mobilenet_v2"`` (which the backbone also passes) the sizes of the authors'
   ECA-MobileNetV2 instead, ``k = 1`` for blocks of at most 96 output channels and 3 above,
   i.e. ``1, 1, 1, 1, 1, 3, 3`` for its seven stages (16, 24, 32, 64, 96, 160, 320 channels);
   any other ``backbone`` (or none) uses the ResNet sizes;
4. otherwise the paper's adaptive rule ``t = floor((log2(C) + 1) / 2)``, ``k = t`` if ``t`` is
   odd else ``t + 1`` (5, 5, 5, 7 for 256, 512, 1024, 2048 channels).

Deviations and choices:

- NOTE: the per-stage default is the released ResNet-50's ``3, 5, 5, 7`` for every depth.
  The authors' released ResNet-101/152 weights use ``3, 3, 5, 7`` and their code's default is
  ``3, 3, 3, 3``; pass ``kernel_size`` to profile those.
- The pool, the Conv1d and the sigmoid are modules, as in the official code (a Conv1d costs 0
  under the paper's MAC convention, which counts Conv2d only).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnprof.attention.checks import check_int
from attnprof.errors import AttnprofError

RESNET_STAGE_KERNELS = (3, 5, 5, 7)
"""Kernel sizes of the released ECA-ResNet-50, one per stage."""

MOBILENET_V2_STAGE_KERNELS = (1, 1, 1, 1, 1, 3, 3)
"""Kernel sizes of the authors' ECA-MobileNetV2, one per stage (row of the MobileNetV2 table):
1 up to 96 output channels, 3 above."""

STAGE_KERNELS = {"mobilenet_v2": MOBILENET_V2_STAGE_KERNELS}
"""Per-stage sizes by backbone name; other backbones get :data:`RESNET_STAGE_KERNELS`."""


def adaptive_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's rule: the odd integer nearest above ``|log2(C) + b| / gamma``."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


def resolve_kernel_size(channels: int, kernel_size=None, stage=None, backbone=None) -> int:
    """Pick ``k`` from an explicit size, ``"adaptive"``, a stage index of ``backbone`` (default:
    a ResNet), or the adaptive rule."""
    table = STAGE_KERNELS.get(backbone, RESNET_STAGE_KERNELS)
    host = backbone if backbone in STAGE_KERNELS else "ResNet"
    if stage is not None and (
        isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < len(table)
    ):
        raise AttnprofError(
            f"eca: stage must be a 0-based {host} stage index 0-{len(table) - 1} "
            f"or None, got {stage!r}"
        )
    if kernel_size is None:
        if stage is not None:
            return table[stage]
        return adaptive_kernel_size(channels)
    if kernel_size == "adaptive":
        return adaptive_kernel_size(channels)
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise AttnprofError(
            f"eca: kernel_size must be an odd integer >= 1, 'adaptive' or None, got {kernel_size!r}"
        )
    if kernel_size % 2 == 0:
        raise AttnprofError(
            f"eca: kernel_size must be odd so the 1-D conv keeps one weight per channel, "
            f"got {kernel_size}; use {kernel_size - 1} or {kernel_size + 1}, or 'adaptive'"
        )
    return kernel_size


class ECA(nn.Module):
    """Efficient Channel Attention for a ``(N, C, H, W)`` feature map.

    Args:
        channels: number of channels ``C``.
        kernel_size: odd int, ``"adaptive"``, or ``None`` (per-stage size, else adaptive).
        stage: 0-based stage the module sits in (ResNet: 0-3), or ``None``.
        backbone: the host's name; picks the per-stage sizes (``"mobilenet_v2"``: its own,
            anything else: ResNet's). Only used with ``stage``.
    """

    def __init__(self, channels: int, kernel_size=None, stage=None, backbone=None) -> None:
        super().__init__()
        check_int("eca", "channels", channels)
        k = resolve_kernel_size(channels, kernel_size, stage, backbone)
        self.channels = channels
        self.kernel_size = k
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        pooled = self.pool(x).reshape(n, 1, c)  # channels become the 1-D sequence
        weights = self.gate(self.conv(pooled))
        return x * weights.reshape(n, c, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}"
