"""What every backbone shares: the heads, and the slot that builds the attention modules.

A backbone asks its :class:`AttentionBuilder` for a module at each place the attention spec's
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

from torch import nn

from attnprof.attention.registry import AttentionSpec, has_parameter, instantiate
from attnprof.blame import one_line
from attnprof.errors import AttnprofError

HEADS = {
    "fc": "class logits (classification, 224x224 in the published tables)",
    "pool": "globally pooled features: the fc removed, the published detection setting",
    "none": "the last feature map: a true detection backbone",
}
"""What the network returns, by head name."""

POOLED_HEADS = ("fc", "pool")
"""The heads that end in the global average pool (counted in the published tables)."""


class AttentionBuilder:
    """Builds the attention module of one spec with the user's options, place by place."""

    def __init__(self, spec: AttentionSpec, options: dict, backbone: str = ""):
        self.spec = spec
        self.options = options
        self.backbone = backbone
        self._pass_backbone = (
            bool(backbone) and spec.stage_aware and has_parameter(spec.factory, "backbone")
        )

    def _kwargs(self, stage: int | None) -> dict:
        kwargs = dict(self.options)
        if self.spec.stage_aware and stage is not None:
            kwargs["stage"] = stage
            if self._pass_backbone:
                kwargs["backbone"] = self.backbone
        return kwargs

    def _build(self, where: str, width: str, stage: int | None, /, *args, **kwargs) -> nn.Module:
        try:
            module = instantiate(self.spec, *args, **kwargs)
        except Exception as exc:
            if not self.backbone and isinstance(exc, AttnprofError):
                raise
            place = f" at {where}" if where else ""
            staged = f"stage {stage}, " if stage is not None else ""
            cause = exc.__cause__ if isinstance(exc, AttnprofError) else exc
            message = str(exc) if isinstance(exc, AttnprofError) else (
                f"the constructor raised {one_line(exc)}"
            )
            raise AttnprofError(
                f"{self.backbone} + {self.spec.name}{place} ({staged}{width}): {message}"
            ) from cause  # the user's own exception, if any; else none shown
        module.attnprof_stage = stage  # named in the message when its forward raises
        return module

    def block(self, channels: int, stage: int, where: str = "") -> nn.Module:
        """A ``block`` module on a ``channels``-wide map, else ``nn.Identity()``."""
        if self.spec.placement != "block":
            return nn.Identity()
        return self._build(
            where, f"{channels} channels", stage, channels, **self._kwargs(stage)
        )

    def between_stages(self, channels: int, stage: int, where: str = "") -> nn.Module | None:
        """A ``stage`` module after stage ``stage`` (``channels`` wide), else ``None``."""
        if self.spec.placement != "stage":
            return None
        return self._build(
            where, f"{channels} channels", stage, channels, **self._kwargs(stage)
        )

    def anywhere(self, channels: int, stage: int | None, where: str) -> nn.Module | None:
        """A ``block`` or ``stage`` module on a ``channels``-wide map, placed by the caller (a
        user's :class:`~attnprof.networks.AttentionSlot`); ``None`` for ``none``. A ``conv``
        module replaces a conv and cannot go at an arbitrary place: refused."""
        if self.spec.placement == "none":
            return None
        if self.spec.placement == "conv":
            raise AttnprofError(
                f"{self.backbone} + {self.spec.name} at {where}: {self.spec.name} is a 'conv' "
                "module (it replaces a 3x3 conv with its BN and ReLU), so it cannot fill an "
                "attention slot or follow a module; use a 'block' or 'stage' module (se, eca, "
                "sge, sa, cbam, gc, bam)"
            )
        return self._build(
            where, f"{channels} channels", stage, channels, **self._kwargs(stage)
        )

    def conv(
        self, in_channels: int, out_channels: int, stride: int, stage: int, where: str = ""
    ) -> nn.Module | None:
        """A ``conv`` module replacing a 3x3 conv + BN + ReLU, else ``None``."""
        if self.spec.placement != "conv":
            return None
        return self._build(
            where,
            f"{in_channels} -> {out_channels} channels, stride {stride}",
            stage,
            in_channels,
            out_channels,
            stride=stride,
            **self._kwargs(stage),
        )
