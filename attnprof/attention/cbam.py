"""Convolutional Block Attention Module (CBAM).

Paper: Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", arXiv:1807.06521.

Channel gate, then spatial gate, applied one after the other:

- channel: one shared MLP ``Linear(C, C/r) -> ReLU -> Linear(C/r, C)`` (with biases) applied
  to the average-pooled and to the max-pooled vector; the two outputs are summed, passed
  through a sigmoid and scale ``x`` per channel;
- spatial: ``concat[max over channels, mean over channels]`` -> ``Conv2d(2, 1, 7x7, padding 3,
  no bias)`` -> ``BatchNorm2d(1)`` -> sigmoid, scaling every position.

Parameters ``C^2/8 + C + C/16 + 100`` per module at ``r = 16`` (98 conv weights + 2 BN).

The pools are ``nn.AdaptiveAvgPool2d`` / ``nn.AdaptiveMaxPool2d`` modules and the MLP is called
twice, as in the official code, so a module-hook counter counts them as the published counter
did; the channel-wise max and mean of the spatial gate are plain ``torch`` calls (free under the
paper convention, as in the official code).

Deviations and choices:

- NOTE: the spatial BatchNorm uses ``momentum=0.01`` like the official code (this only affects
  how fast its running statistics move in training).
- NOTE: the official CBAM-ResNet constructor zero-initialises the spatial BatchNorm's weight
  (so the spatial gate starts at 0.5); that is a backbone-level init and is not replicated:
  the weight starts at PyTorch's default 1.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.attention.checks import check_int, reduced_width
from attnprof.errors import AttnprofError


class CBAM(nn.Module):
    """CBAM for a ``(N, C, H, W)`` feature map.

    Args:
        channels: number of channels ``C``.
        reduction: the channel MLP's bottleneck ratio ``r``; hidden width ``C // r``.
        kernel_size: the spatial conv's (odd) kernel size, 7 in the paper.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = reduced_width("cbam", channels, reduction)
        check_int("cbam", "kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise AttnprofError(
                f"cbam: kernel_size must be odd so the spatial map keeps its size, "
                f"got {kernel_size}; use e.g. {kernel_size - 1} or {kernel_size + 1}"
            )
        self.channels = channels
        self.reduction = reduction
        self.kernel_size = kernel_size
        # Channel gate.
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        self.channel_gate = nn.Sigmoid()
        # Spatial gate.
        self.spatial_conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1, momentum=0.01)
        self.spatial_gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        logits = self.mlp(self.avg_pool(x).reshape(n, c)) + self.mlp(self.max_pool(x).reshape(n, c))
        x = x * self.channel_gate(logits).reshape(n, c, 1, 1)
        descriptor = torch.cat(
            [torch.max(x, dim=1, keepdim=True)[0], torch.mean(x, dim=1, keepdim=True)], dim=1
        )
        return x * self.spatial_gate(self.spatial_bn(self.spatial_conv(descriptor)))

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, reduction={self.reduction}, kernel_size={self.kernel_size}"
        )
