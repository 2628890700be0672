"""ResNet-18 to 152 in torchvision's layout, with an attention module at its documented place.

He et al., "Deep Residual Learning for Image Recognition", arXiv 1512.03385. The layout follows
torchvision's (the "ResNet v1.5" variant: the stride sits in the bottleneck's 3x3 conv, and a
1x1 projection + BN forms the shortcut wherever the shape changes), so the plain parameter
counts equal the published ones to the unit (ResNet-50: 25,557,032).

Where the attention goes (see the registry's placements):

- ``block`` modules sit on the residual branch after the block's last BatchNorm, before the add:
  ``out = relu(attention(bn_last(...)) + shortcut(x))``;
- ``stage`` modules (BAM) sit between stages, after stages 1, 2 and 3;
- ``conv`` modules (SK) replace the bottleneck's 3x3 conv together with its BN and ReLU (or, in
  a basic block, the first 3x3 conv with its BN and ReLU).

The ``head`` chooses what the network returns: ``fc`` class logits, ``pool`` the globally pooled
features (the fc removed: the published detection setting), ``none`` the last feature map (a
true detection backbone).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.attention.registry import AttentionSpec, get_attention_spec, instantiate
from attnprof.errors import AttnprofError, choices

HEADS = ("fc", "pool", "none")


@dataclass(frozen=True)
class ResNetConfig:
    """Depth configuration: block type and the number of blocks in each of the four stages."""

    block: str
    layers: tuple[int, int, int, int]


BACKBONES: dict[str, ResNetConfig] = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2)),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3)),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3)),
}


class _AttentionSlot:
    """Builds the attention module of one spec with the user's options, stage by stage."""

    def __init__(self, spec: AttentionSpec, options: dict):
        self.spec = spec
        self.options = options

    def _kwargs(self, stage: int) -> dict:
        kwargs = dict(self.options)
        if self.spec.stage_aware:
            kwargs["stage"] = stage
        return kwargs

    def block(self, channels: int, stage: int) -> nn.Module:
        if self.spec.placement != "block":
            return nn.Identity()
        return instantiate(self.spec, channels, **self._kwargs(stage))

    def between_stages(self, channels: int, stage: int) -> nn.Module | None:
        if self.spec.placement != "stage":
            return None
        return instantiate(self.spec, channels, **self._kwargs(stage))

    def conv(
        self, in_channels: int, out_channels: int, stride: int, stage: int
    ) -> nn.Module | None:
        if self.spec.placement != "conv":
            return None
        return instantiate(
            self.spec, in_channels, out_channels, stride=stride, **self._kwargs(stage)
        )


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34). ``attention`` sees ``bn2``'s output."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, slot: _AttentionSlot, stage: int):
        super().__init__()
        conv = slot.conv(inplanes, planes, stride, stage)
        if conv is None:
            self.conv1 = _conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
        else:
            self.conv1 = conv
            self.bn1 = nn.Identity()
            self.relu = nn.ReLU(inplace=True)
        self.has_conv_attention = conv is not None
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attention = slot.block(planes, stage)
        self.downsample = _shortcut(inplanes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv1(x)
        if not self.has_conv_attention:
            out = self.relu(self.bn1(out))
        out = self.bn2(self.conv2(out))
        out = self.attention(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4. ``attention`` sees ``bn3``'s output."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, slot: _AttentionSlot, stage: int):
        super().__init__()
        width = planes
        out_channels = planes * self.expansion
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        conv = slot.conv(width, width, stride, stage)
        if conv is None:
            self.conv2 = _conv3x3(width, width, stride)
            self.bn2 = nn.BatchNorm2d(width)
        else:
            self.conv2 = conv
            self.bn2 = nn.Identity()
        self.has_conv_attention = conv is not None
        self.conv3 = _conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.attention = slot.block(out_channels, stage)
        self.downsample = _shortcut(inplanes, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if not self.has_conv_attention:
            out = self.relu(self.bn2(out))
        out = self.bn3(self.conv3(out))
        out = self.attention(out)
        return self.relu(out + identity)


def _shortcut(inplanes: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == out_channels:
        return None
    return nn.Sequential(_conv1x1(inplanes, out_channels, stride), nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    """A ResNet with one kind of attention module. Build it with :func:`build_model`."""

    def __init__(self, config: ResNetConfig, slot: _AttentionSlot, head: str, num_classes: int):
        super().__init__()
        block = BasicBlock if config.block == "basic" else Bottleneck
        self.head = head
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for stage, (planes, blocks) in enumerate(
            zip((64, 128, 256, 512), config.layers, strict=False)
        ):
            stride = 1 if stage == 0 else 2
            layer = []
            for index in range(blocks):
                layer.append(block(inplanes, planes, stride if index == 0 else 1, slot, stage))
                inplanes = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
            # BAM after stages 1-3 only: nothing follows the last stage.
            between = slot.between_stages(inplanes, stage) if stage < 3 else None
            setattr(
                self, f"attention{stage + 1}", between if between is not None else nn.Identity()
            )
        self.out_channels = inplanes
        if head in ("fc", "pool"):
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if head == "fc":
            self.fc = nn.Linear(inplanes, num_classes)
        self._init_weights()

    def attention_modules(self) -> list[tuple[str, nn.Module]]:
        """The attention modules of this model, by qualified name (empty for a plain one).

        Block modules, the between-stage modules, and the convs that SK replaced.
        """
        found = []
        for name, module in self.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(module, nn.Identity):
                continue
            if (
                leaf == "attention"
                or (name.startswith("attention") and "." not in name)
                or (
                    leaf == "conv2"
                    and getattr(
                        self.get_submodule(name.rsplit(".", 1)[0]), "has_conv_attention", False
                    )
                )
            ):
                found.append((name, module))
        return found

    def _init_weights(self) -> None:
        # torchvision's initialisation for the backbone's own convs (its BN init, weight 1 and
        # bias 0, is PyTorch's default); attention modules keep the initial values their papers
        # prescribe, which they set themselves.
        inside_attention = {
            id(sub) for _, module in self.attention_modules() for sub in module.modules()
        }
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and id(module) not in inside_attention:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.attention1(self.layer1(x))
        x = self.attention2(self.layer2(x))
        x = self.attention3(self.layer3(x))
        x = self.layer4(x)
        if self.head == "none":
            return x
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x) if self.head == "fc" else x


def build_model(
    backbone: str,
    attention: str = "none",
    head: str = "fc",
    *,
    num_classes: int = 1000,
    device: str | torch.device | None = None,
    **options,
) -> ResNet:
    """Build ``backbone`` (``resnet18`` ... ``resnet152``) with ``attention`` wherever it goes.

    ``options`` reach the attention module (``build_model("resnet50", "sge", groups=32)``).
    ``device="meta"`` builds the model without allocating parameter memory, for counting.
    The model is returned in eval mode.
    """
    key = backbone.lower() if isinstance(backbone, str) else backbone
    if key not in BACKBONES:
        raise AttnprofError(f"unknown backbone {backbone!r}; valid backbones: {choices(BACKBONES)}")
    if head not in HEADS:
        raise AttnprofError(f"unknown head {head!r}; valid heads: {choices(HEADS)}")
    if not isinstance(num_classes, int) or num_classes <= 0:
        raise AttnprofError(f"num_classes must be a positive integer, got {num_classes!r}")
    spec = get_attention_spec(attention)
    if spec.placement == "none" and options:
        raise AttnprofError(f"attention {spec.name!r} takes no options, got {sorted(options)}")
    slot = _AttentionSlot(spec, options)
    with torch.device(device) if device is not None else nullcontext():
        model = ResNet(BACKBONES[key], slot, head, num_classes)
    return model.eval()
