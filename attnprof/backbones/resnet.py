"""ResNet-18 to 152 and ResNeXt-50 32x4d in torchvision's layout, with an attention module at
its documented place.

He et al., "Deep Residual Learning for Image Recognition", arXiv 1512.03385; Xie et al.,
"Aggregated Residual Transformations for Deep Neural Networks", arXiv 1611.05431 (ResNeXt). The
layout follows torchvision's (the "ResNet v1.5" variant: the stride sits in the bottleneck's 3x3
conv, and a 1x1 projection + BN forms the shortcut wherever the shape changes), so the plain
parameter counts equal the published ones to the unit (ResNet-50: 25,557,032; ResNeXt-50
32x4d: 25,028,904). ResNeXt-50 32x4d is ResNet-50 whose bottleneck 3x3 conv has 32 groups of 4
channels per 64 planes: mid width ``planes * 4 / 64 * 32 = 2 * planes`` (128, 256, 512, 1024).

Where the attention goes (see the registry's placements); the same for ResNet and ResNeXt:

- ``block`` modules sit on the residual branch after the block's last BatchNorm, before the add:
  ``out = relu(attention(bn_last(...)) + shortcut(x))``;
- ``stage`` modules (BAM) sit between stages, after stages 1, 2 and 3: after every stage that a
  stride-2 stage follows (``place="stages:0,1,2,3"`` chooses others, the last one included,
  counted from 0; :mod:`attnprof.attention.placement`);
- ``conv`` modules (SK) replace the bottleneck's 3x3 conv together with its BN and ReLU (or, in
  a basic block, the first 3x3 conv with its BN and ReLU). In ResNeXt that conv is the grouped
  one (``2P -> 2P``, 32 groups); the module is built as for ResNet,
  ``factory(width, width, stride=...)`` with the user's options and nothing else.
  NOTE: attnprof's SK is the SGE paper's variant: a *dense* 3x3 branch plus a grouped branch
  whose ``groups`` (default 32) equals ResNeXt-50's cardinality, so on ResNeXt the grouped
  branch is the host's own conv and SK adds a dense 3x3 conv beside it: +46,228,144 parameters
  over the 16 blocks, 71,257,048 in all. SKNet's own SKNet-50 (a ResNeXt-50 with two grouped
  branches, the second dilated) is a different network, which attnprof's SK does not build.

Stage-aware modules (ECA) get ``stage`` = 0-3, the stage of the block (BAM: the stage it
follows); see :mod:`attnprof.backbones.common` for what else a slot passes.

The ``head`` chooses what the network returns: ``fc`` class logits, ``pool`` the globally pooled
features (the fc removed: the published detection setting), ``none`` the last feature map (a
true detection backbone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnprof.backbones.common import HEADS, POOLED_HEADS, AttentionBuilder
from attnprof.backbones.registry import BACKBONES, build_model

__all__ = [
    "BACKBONES",
    "HEADS",
    "RESNET_CONFIGS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "ResNetConfig",
    "build_model",
]


@dataclass(frozen=True)
class ResNetConfig:
    """Depth configuration: block type, the number of blocks in each of the four stages, and
    the bottleneck's 3x3 conv groups and width per group (ResNeXt; 1 and 64 for ResNet)."""

    block: str
    layers: tuple[int, int, int, int]
    groups: int = 1
    width_per_group: int = 64


RESNET_CONFIGS: dict[str, ResNetConfig] = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2)),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3)),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3)),
    "resnext50_32x4d": ResNetConfig("bottleneck", (3, 4, 6, 3), groups=32, width_per_group=4),
}
"""The ResNet-family configurations by name (all backbone names: :data:`BACKBONES`)."""


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False
    )


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34). ``attention`` sees ``bn2``'s output."""

    expansion = 1
    conv_attention_at = "conv1"
    """The attribute a ``conv`` module (SK) replaces: the first 3x3 conv."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int,
        slot: AttentionBuilder,
        stage: int,
        *,
        where: str = "",
    ):
        super().__init__()
        conv = slot.conv(inplanes, planes, stride, stage, f"{where}.conv1")
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
        self.attention = slot.block(planes, stage, f"{where}.attention")
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
    """1x1 reduce, 3x3 (strided; grouped in ResNeXt), 1x1 expand by 4. ``attention`` sees
    ``bn3``'s output.

    The mid width is ``planes * width_per_group / 64 * groups`` (ResNet: ``planes``; ResNeXt-50
    32x4d: ``2 * planes``).
    """

    expansion = 4
    conv_attention_at = "conv2"
    """The attribute a ``conv`` module (SK) replaces: the 3x3 conv."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int,
        slot: AttentionBuilder,
        stage: int,
        *,
        groups: int = 1,
        width_per_group: int = 64,
        where: str = "",
    ):
        super().__init__()
        width = planes * width_per_group // 64 * groups
        out_channels = planes * self.expansion
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        conv = slot.conv(width, width, stride, stage, f"{where}.conv2")
        if conv is None:
            self.conv2 = _conv3x3(width, width, stride, groups)
            self.bn2 = nn.BatchNorm2d(width)
        else:
            self.conv2 = conv
            self.bn2 = nn.Identity()
        self.has_conv_attention = conv is not None
        self.conv3 = _conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.attention = slot.block(out_channels, stage, f"{where}.attention")
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

    def __init__(self, config: ResNetConfig, slot: AttentionBuilder, head: str, num_classes: int):
        super().__init__()
        block = BasicBlock if config.block == "basic" else Bottleneck
        widths = (
            {"groups": config.groups, "width_per_group": config.width_per_group}
            if block is Bottleneck
            else {}
        )
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
                layer.append(
                    block(
                        inplanes,
                        planes,
                        stride if index == 0 else 1,
                        slot,
                        stage,
                        where=f"layer{stage + 1}.{index}",
                        **widths,
                    )
                )
                inplanes = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
            # BAM after stages 1-3 (0-2 counted from 0): after every stage a stride-2 stage
            # follows. After the last stage only when ``place`` lists it: attention4 exists
            # only then, so every other model keeps its modules and names.
            between = slot.between_stages(
                inplanes, stage, f"attention{stage + 1}", followed_by_stride=stage < 3
            )
            if stage < 3 or between is not None:
                setattr(
                    self, f"attention{stage + 1}",
                    between if between is not None else nn.Identity(),
                )
            else:
                self.attention4 = None
        self.out_channels = inplanes
        if head in POOLED_HEADS:
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
            parent, _, leaf = name.rpartition(".")
            if isinstance(module, nn.Identity):
                continue
            block = self.get_submodule(parent) if parent else None
            if (
                leaf == "attention"
                or (name.startswith("attention") and "." not in name)
                or (
                    getattr(block, "has_conv_attention", False)
                    and leaf == block.conv_attention_at
                )
            ):
                found.append((name, module))
        return found

    def stage_of(self, name: str) -> int | None:
        """The stage (0-based) a module belongs to, by its name: ``layer2.*`` is stage 1, the
        module after a stage (``attention2``) that stage; ``None`` for stem and head."""
        head = name.split(".", 1)[0]
        for prefix in ("layer", "attention"):
            if head.startswith(prefix) and head[len(prefix):].isdigit():
                return int(head[len(prefix):]) - 1
        return None

    def _init_weights(self) -> None:
        # torchvision's initialisation for the backbone's own convs (its BN init, weight 1 and
        # bias 0, is PyTorch's default); attention modules keep the initial values their papers
        # prescribe, which they set themselves.
        inside_attention = {
            id(sub) for _, module in self.attention_modules() for sub in module.modules()
        }
        for module in self.modules():
            if (
                isinstance(module, nn.Conv2d)
                and id(module) not in inside_attention
                and not module.weight.is_meta  # nothing to fill, and slow to decompose
            ):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.attention1(self.layer1(x))
        x = self.attention2(self.layer2(x))
        x = self.attention3(self.layer3(x))
        x = self.layer4(x)
        if self.attention4 is not None:
            x = self.attention4(x)
        if self.head == "none":
            return x
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x) if self.head == "fc" else x
