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

from attnprof.attention.placement import OPTION, Placement, parse_place
from attnprof.attention.registry import AttentionSpec, has_parameter, instantiate
from attnprof.blame import one_line
from attnprof.errors import AttnprofError, Hint, choices

HEADS = {
    "fc": "class logits (classification, 224x224 in the published tables)",
    "pool": "globally pooled features: the fc removed, the published detection setting",
    "none": "the last feature map: a true detection backbone",
}
"""What the network returns, by head name."""

POOLED_HEADS = ("fc", "pool")
"""The heads that end in the global average pool (counted in the published tables)."""


class AttentionBuilder:
    """Builds the attention module of one spec with the user's options, place by place.

    ``placement`` is where the modules go: the spec's own, or the ``place`` option's
    (:mod:`attnprof.attention.placement`), which is taken out of the options here.
    """

    def __init__(self, spec: AttentionSpec, options: dict, backbone: str = ""):
        self.spec = spec
        self.options = dict(options)
        self.backbone = backbone
        self._pass_backbone = (
            bool(backbone) and spec.stage_aware and has_parameter(spec.factory, "backbone")
        )
        self.place: Placement | None = None
        if OPTION in self.options:
            if spec.placement in ("conv", "none"):
                raise AttnprofError(
                    f"{backbone} + {spec.name}: place applies to modules that sit on a feature "
                    f"map; {spec.name} is a {spec.placement!r} module"
                    + (" (it replaces a 3x3 conv with its BN and ReLU)"
                       if spec.placement == "conv" else "")
                )
            self.place = parse_place(self.options.pop(OPTION), f"{backbone} + {spec.name}")
        self.stages_seen: set[int] = set()

    @property
    def placement(self) -> str:
        """``block``, ``stage``, ``after``, ``conv`` or ``none``: where modules go."""
        return self.place.kind if self.place is not None else self.spec.placement

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
            error = exc if isinstance(exc, AttnprofError) else AttnprofError(
                f"the constructor raised {one_line(exc)}"
            )
            raise error.prefixed(
                f"{self.backbone} + {self.spec.name}{place} ({staged}{width}): "
            ) from cause  # the user's own exception, if any; else none shown
        module.attnprof_stage = stage  # named in the message when its forward raises
        return module

    def block(self, channels: int, stage: int, where: str = "") -> nn.Module:
        """A ``block`` module on a ``channels``-wide map, else ``nn.Identity()``."""
        if self.placement != "block":
            return nn.Identity()
        return self._build(
            where, f"{channels} channels", stage, channels, **self._kwargs(stage)
        )

    def between_stages(
        self, channels: int, stage: int, where: str = "", followed_by_stride: bool = True
    ) -> nn.Module | None:
        """A ``stage`` module after stage ``stage`` (``channels`` wide), else ``None``.

        The backbone asks after every stage; ``followed_by_stride`` says whether BAM's rule
        (after every stage a stride-2 stage follows) puts a module there, which is where a
        ``stage`` module goes unless ``place`` lists the stages.
        """
        self.stages_seen.add(stage)
        wanted = (
            self.place.wants_stage(stage, followed_by_stride) if self.place is not None
            else self.spec.placement == "stage" and followed_by_stride
        )
        if not wanted:
            return None
        return self._build(
            where, f"{channels} channels", stage, channels, **self._kwargs(stage)
        )

    def check_stages(self) -> None:
        """After the backbone is built: every stage ``place`` lists must exist in it."""
        chosen = self.place.stages if self.place is not None else None
        missing = sorted(set(chosen or ()) - self.stages_seen)
        if missing:
            raise AttnprofError(
                f"{self.backbone} + {self.spec.name}: place lists stage {missing[0]}, which "
                f"{self.backbone} does not have; its stages: {choices(sorted(self.stages_seen))} "
                "(0-based)"
            )

    def after(self, channels: int, stage: int | None, where: str) -> nn.Module:
        """A module after a module that ``place="after:..."`` matched (``channels`` wide)."""
        return self._build(
            where, f"{channels} channels", stage, channels, **self._kwargs(stage)
        )

    def anywhere(self, channels: int, stage: int | None, where: str) -> nn.Module | None:
        """A ``block`` or ``stage`` module on a ``channels``-wide map, placed by the caller (a
        user's :class:`~attnprof.networks.AttentionSlot`); ``None`` for ``none``. A ``conv``
        module replaces a conv and cannot go at an arbitrary place: refused."""
        if self.place is not None:
            raise AttnprofError(
                f"{self.backbone} + {self.spec.name}: place is for attnprof's backbones; in your "
                "network, attention goes in its attnprof.AttentionSlot placeholders, or after "
                "the modules that ", Hint("insert_after", "layer*.*.bn2", kind="argument"),
                " matches",
            )
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
