"""What every backbone shares: the heads, and the slot that builds the attention modules.

A backbone asks its :class:`AttentionSlot` for a module at each place the attention spec's
placement names (``block``, ``stage`` or ``conv``; see :mod:`attnprof.attention.registry`); the
slot returns ``nn.Identity()`` / ``None`` where the spec's placement is another one. What the
slot passes to the module's factory:

- the channels (``block``, ``stage``) or ``in_channels, out_channels, stride=`` (``conv``);
- the user's options, as given to :func:`~attnprof.backbones.build_model`;
- for a stage-aware spec (``AttentionSpec.stage_aware``): ``stage=i``, the 0-based stage of
  the backbone the module sits in, and, when the factory has a parameter named ``backbone``,
  ``backbone=<name>`` (e.g. ``"mobilenet_v2"``), so per-stage defaults can follow the host
  (ECA's kernel sizes do). A factory without that parameter never receives it. A module named
  by import path is stage-aware exactly when its signature has an explicit ``stage`` parameter
  (``**kwargs`` alone does not count), and its constructor contract is checked by
  :func:`~attnprof.attention.registry.instantiate` (channels only to a channel parameter, see
  :mod:`attnprof.attention.registry`).

A module that cannot be built where the backbone puts it (an option that does not fit that
block's width, say), or whose own constructor raises (an import-path module's exception is
turned into an AttnprofError line by ``instantiate``), is reported on one line with the
backbone, the place and the width it was asked for, followed by the module's own message.
"""

from __future__ import annotations

import inspect

from torch import nn

from attnprof.attention.registry import AttentionSpec, instantiate
from attnprof.errors import AttnprofError

HEADS = {
    "fc": "class logits (classification, 224x224 in the published tables)",
    "pool": "globally pooled features: the fc removed, the published detection setting",
    "none": "the last feature map: a true detection backbone",
}
"""What the network returns, by head name."""

POOLED_HEADS = ("fc", "pool")
"""The heads that end in the global average pool (counted in the published tables)."""


def _accepts_backbone(factory) -> bool:
    try:
        parameter = inspect.signature(factory).parameters.get("backbone")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        parameter.POSITIONAL_OR_KEYWORD,
        parameter.KEYWORD_ONLY,
    )


class AttentionSlot:
    """Builds the attention module of one spec with the user's options, place by place."""

    def __init__(self, spec: AttentionSpec, options: dict, backbone: str = ""):
        self.spec = spec
        self.options = options
        self.backbone = backbone
        self._pass_backbone = (
            bool(backbone) and spec.stage_aware and _accepts_backbone(spec.factory)
        )

    def _kwargs(self, stage: int) -> dict:
        kwargs = dict(self.options)
        if self.spec.stage_aware:
            kwargs["stage"] = stage
            if self._pass_backbone:
                kwargs["backbone"] = self.backbone
        return kwargs

    def _build(self, where: str, width: str, *args, **kwargs) -> nn.Module:
        try:
            return instantiate(self.spec, *args, **kwargs)
        except AttnprofError as exc:
            if not self.backbone:
                raise
            place = f" at {where}" if where else ""
            raise AttnprofError(
                f"{self.backbone} + {self.spec.name}{place} ({width}): {exc}"
            ) from exc.__cause__  # the user's own exception, if any; else none shown

    def block(self, channels: int, stage: int, where: str = "") -> nn.Module:
        """A ``block`` module on a ``channels``-wide map, else ``nn.Identity()``."""
        if self.spec.placement != "block":
            return nn.Identity()
        return self._build(where, f"{channels} channels", channels, **self._kwargs(stage))

    def between_stages(self, channels: int, stage: int, where: str = "") -> nn.Module | None:
        """A ``stage`` module after stage ``stage`` (``channels`` wide), else ``None``."""
        if self.spec.placement != "stage":
            return None
        return self._build(where, f"{channels} channels", channels, **self._kwargs(stage))

    def conv(
        self, in_channels: int, out_channels: int, stride: int, stage: int, where: str = ""
    ) -> nn.Module | None:
        """A ``conv`` module replacing a 3x3 conv + BN + ReLU, else ``None``."""
        if self.spec.placement != "conv":
            return None
        return self._build(
            where,
            f"{in_channels} -> {out_channels} channels, stride {stride}",
            in_channels,
            out_channels,
            stride=stride,
            **self._kwargs(stage),
        )
