"""MobileNetV2 (width 1.0) in torchvision's layout, with an attention module at its documented
place.

Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", arXiv 1801.04381. The host network of the ECA-Net and Coordinate Attention papers'
mobile experiments.

Layout (torchvision's, so a plain model's ``state_dict`` keys and the parameter count,
3,504,872, are torchvision's): ``features.0`` is the stem, 3x3 conv stride 2 (3 -> 32) + BN +
ReLU6; ``features.1`` to ``features.17`` are the inverted residual blocks of the seven stages
``(t, c, n, s)`` = (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
(6, 160, 3, 2), (6, 320, 1, 1) (expansion, output channels, blocks, stride of the first);
``features.18`` is a 1x1 conv 320 -> 1280 + BN + ReLU6. A block's ``conv`` is
``[1x1 expand + BN + ReLU6] (absent when t = 1) -> 3x3 depthwise (stride s) + BN + ReLU6 -> 1x1
project + BN`` (linear bottleneck), with the identity added when the stride is 1 and the width
is unchanged. Heads as for the ResNets: ``fc`` global average pool -> ``Dropout(0.2)`` ->
``Linear(1280, classes)`` (``classifier.0``, ``classifier.1``); ``pool`` the pooled 1280
features; ``none`` the last feature map (1280 channels, stride 32).

Stages: the seven rows above are stages 0-6 (stem and ``features.18`` belong to none);
stage-aware modules get that ``stage`` and ``backbone="mobilenet_v2"`` (so ECA picks ECA-Net's
MobileNetV2 sizes, ``k = 1`` up to 96 channels, 3 above; see :mod:`attnprof.attention.eca`).
With ``attention_at="depthwise"`` ECA keeps its block's stage size (1 in stages 1-4, 3 in 5-6)
on the expanded width: ECA-Net did not place it there, so no published size exists.

Counting: the global average pool is a module (torchvision calls it as a function), as the
ResNets' ``avgpool``, so the ``paper`` convention counts it (62,720 at 224x224) as it does for
the ResNets; plain MobileNetV2 at 224x224 then counts 320,299,008 MAC there (conv + linear
300,774,272: the published "300 M MAdds"; BN 13,356,224; ReLU6 6,105,792).

Where the attention goes:

- ``block`` modules, ``attention_at="projection"`` (the default): in every one of the 17
  blocks, after the projection conv's BN, before the residual add (as ECA-Net's MobileNetV2),
  on the block's output width (16 ... 320);
- ``block`` modules, ``attention_at="depthwise"``: after the depthwise conv's ReLU6, before the
  projection conv, on the expanded width (96 ... 960), in the 16 blocks with expansion != 1
  (as Coordinate Attention's MobileNetV2, and SE in MobileNetV3); ``features.1`` (t = 1) gets
  none. ``attention_at`` is a backbone option (``build_model("mobilenet_v2", "se",
  attention_at="depthwise")``), never passed to the module; with ``stage`` modules
  ``"depthwise"`` is refused (it places block modules only), with ``none`` it changes nothing;
- ``stage`` modules (BAM): after every stage that a stride-2 stage follows, BAM's rule
  ("at every bottleneck where the feature map is downsampled") and the one that gives the
  ResNets' after-stages-1-3: after stages 0, 1, 2 and 4, i.e. after ``features.1``, ``.3``,
  ``.6``, ``.13`` (16, 24, 32, 96 channels at 112, 56, 28, 14 for a 224 input), held in
  ``stage_attention`` under the index of the block they follow. Not after the stem, as in the
  ResNets;
- ``conv`` modules (SK) are refused: they replace a dense 3x3 conv with its BN and ReLU, and
  MobileNetV2's 3x3 convs are depthwise; SK's plain branch would make each a dense
  ``hidden x hidden`` conv (about 40 M parameters over the 17 blocks), another network. Use
  SK on a ResNet or on ResNeXt.

The module names differ from the ResNets' (``features.3.attention``, ``stage_attention.3``), so
per-stage groupings keyed on ``layerN`` names see none here.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.backbones.common import HEADS, POOLED_HEADS, AttentionBuilder
from attnprof.backbones.registry import BACKBONES, build_model
from attnprof.errors import AttnprofError, choices

__all__ = [
    "ATTENTION_AT",
    "BACKBONES",
    "HEADS",
    "STAGES",
    "InvertedResidual",
    "MobileNetV2",
    "build_model",
]

NAME = "mobilenet_v2"

STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
"""``(expansion t, output channels c, blocks n, stride s of the first block)`` per stage."""

ATTENTION_AT = ("projection", "depthwise")
"""Where ``block`` modules go: after the projection's BN, or after the depthwise conv's ReLU6."""

STEM_CHANNELS = 32
LAST_CHANNELS = 1280
DROPOUT = 0.2


def _conv_bn_relu6(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation``: conv (no bias, 'same' padding) -> BN -> ReLU6."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            (kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, project (1x1, linear); ``attention`` where ``attention_at``
    says (``nn.Identity()`` when there is none)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expansion: int,
        slot: AttentionBuilder,
        stage: int,
        attention_at: str = "projection",
        where: str = "",
    ):
        super().__init__()
        hidden = round(in_channels * expansion)
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn_relu6(in_channels, hidden, 1))
        layers.append(_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden))
        depthwise = len(layers) - 1
        layers += [nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden
        self.stride = stride
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.stage = stage
        self.attention_at = attention_at
        if attention_at == "depthwise":
            self.attention_after = depthwise
            self.attention = (
                slot.block(hidden, stage, f"{where}.attention") if expansion != 1 else nn.Identity()
            )
        else:
            self.attention_after = len(layers) - 1
            self.attention = slot.block(out_channels, stage, f"{where}.attention")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for index, layer in enumerate(self.conv):
            out = layer(out)
            if index == self.attention_after:
                out = self.attention(out)
        return x + out if self.use_res_connect else out


def _check_placement(slot: AttentionBuilder, attention_at: str) -> None:
    spec = slot.spec
    placement = slot.placement
    if not isinstance(attention_at, str) or attention_at not in ATTENTION_AT:
        raise AttnprofError(
            f"{NAME}: attention_at must be one of {choices(ATTENTION_AT)}, got {attention_at!r}"
        )
    if spec.placement == "conv":
        resnets = [name for name in BACKBONES if name != NAME]
        raise AttnprofError(
            f"{NAME} + {spec.name}: a 'conv' module replaces a dense 3x3 conv with its BN and "
            f"ReLU, and {NAME}'s 3x3 convs are depthwise (its plain branch would turn each into "
            f"a dense hidden x hidden conv, another network); on {NAME} use a 'block' or "
            f"'stage' module, or {spec.name} on {choices(resnets)}"
        )
    if attention_at != "projection" and placement not in ("block", "none"):
        raise AttnprofError(
            f"{NAME} + {spec.name}: attention_at={attention_at!r} places 'block' modules, and "
            f"{spec.name} is placed as a {placement!r} module; drop attention_at (valid with "
            f"it: block modules such as se, eca)"
        )


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with one kind of attention module. Build it with
    :func:`~attnprof.backbones.build_model` (``"mobilenet_v2"``)."""

    def __init__(
        self,
        slot: AttentionBuilder,
        head: str,
        num_classes: int,
        attention_at: str = "projection",
    ):
        super().__init__()
        _check_placement(slot, attention_at)
        self.head = head
        self.attention_at = attention_at
        features: list[nn.Module] = [_conv_bn_relu6(3, STEM_CHANNELS, 3, 2)]
        between: dict[str, nn.Module] = {}
        channels = STEM_CHANNELS
        for stage, (expansion, out_channels, blocks, stride) in enumerate(STAGES):
            for index in range(blocks):
                where = f"features.{len(features)}"
                features.append(
                    InvertedResidual(
                        channels,
                        out_channels,
                        stride if index == 0 else 1,
                        expansion,
                        slot,
                        stage,
                        attention_at,
                        where,
                    )
                )
                channels = out_channels
            followed_by_stride = stage + 1 < len(STAGES) and STAGES[stage + 1][3] == 2
            key = str(len(features) - 1)
            module = slot.between_stages(channels, stage, f"stage_attention.{key}",
                                         followed_by_stride)
            if module is not None:
                between[key] = module
        self.block_stages = {index: block.stage for index, block in enumerate(features)
                             if isinstance(block, InvertedResidual)}
        features.append(_conv_bn_relu6(channels, LAST_CHANNELS, 1))
        self.features = nn.Sequential(*features)
        self.stage_attention = nn.ModuleDict(between)
        self.out_channels = LAST_CHANNELS
        if head in POOLED_HEADS:
            # A module (torchvision calls it as a function), as the ResNets' avgpool, so the
            # paper convention counts it as the published detection setting does.
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if head == "fc":
            self.classifier = nn.Sequential(
                nn.Dropout(p=DROPOUT), nn.Linear(LAST_CHANNELS, num_classes)
            )
        self._init_weights()

    def attention_modules(self) -> list[tuple[str, nn.Module]]:
        """The attention modules of this model, by qualified name (empty for a plain one):
        the blocks' ``attention`` and the ``stage_attention`` modules, in forward order."""
        found: list[tuple[int, str, nn.Module]] = []
        for index, block in enumerate(self.features):
            attention = getattr(block, "attention", None)
            if attention is not None and not isinstance(attention, nn.Identity):
                found.append((index, f"features.{index}.attention", attention))
        for key, module in self.stage_attention.items():
            found.append((int(key), f"stage_attention.{key}", module))
        found.sort(key=lambda item: item[0])  # stable: a block's own module before the next
        return [(name, module) for _, name, module in found]

    def stage_of(self, name: str) -> int | None:
        """The stage (0-based) a module belongs to, by its name: the stage of the block
        ``features.N`` (or of the one ``stage_attention.N`` follows); ``None`` for stem and
        head."""
        parts = name.split(".")
        if len(parts) > 1 and parts[0] in ("features", "stage_attention") and parts[1].isdigit():
            return self.block_stages.get(int(parts[1]))
        return None

    def _init_weights(self) -> None:
        # torchvision's MobileNetV2 initialisation for the backbone's own layers; attention
        # modules keep the initial values their papers prescribe, which they set themselves.
        inside_attention = {
            id(sub) for _, module in self.attention_modules() for sub in module.modules()
        }
        for module in self.modules():
            if id(module) in inside_attention or any(p.is_meta for p in module.parameters(False)):
                continue  # a meta tensor has nothing to fill
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.features):
            x = layer(x)
            if str(index) in self.stage_attention:
                x = self.stage_attention[str(index)](x)
        if self.head == "none":
            return x
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x) if self.head == "fc" else x
