"""The backbone names and :func:`build_model`, the one way to build any of them.

``BACKBONES`` maps every name to a :class:`BackboneInfo`; the suite files, ``attnprof list``
and ``attnprof profile --backbone`` accept exactly these names. The builders are imported when
a model is built, so this module imports neither :mod:`~attnprof.backbones.resnet` nor
:mod:`~attnprof.backbones.mobilenet` (both re-export from here).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.attention.registry import get_attention_spec
from attnprof.backbones.common import HEADS, AttentionBuilder
from attnprof.errors import AttnprofError, choices
from attnprof.imports import is_import_path
from attnprof.networks.user import (
    USER_HEAD,
    Network,
    build_network,
    insert_slots,
    match_modules,
    output_channels,
)


@dataclass(frozen=True)
class BackboneInfo:
    """A built-in backbone: its family (which builder), what it is, its own options."""

    name: str
    family: str
    description: str
    options: tuple[str, ...] = ()
    """Options of the backbone itself, taken out of ``build_model``'s ``**options`` before the
    rest reach the attention module."""


def _info(name: str, family: str, description: str, options: tuple[str, ...] = ()):
    return name, BackboneInfo(name, family, description, options)


BACKBONES: dict[str, BackboneInfo] = dict(
    [
        _info("resnet18", "resnet", "ResNet-18 (He et al., arXiv:1512.03385)"),
        _info("resnet34", "resnet", "ResNet-34 (He et al., arXiv:1512.03385)"),
        _info("resnet50", "resnet", "ResNet-50 (He et al., arXiv:1512.03385)"),
        _info("resnet101", "resnet", "ResNet-101 (He et al., arXiv:1512.03385)"),
        _info("resnet152", "resnet", "ResNet-152 (He et al., arXiv:1512.03385)"),
        _info("resnext50_32x4d", "resnet", "ResNeXt-50 32x4d (Xie et al., arXiv:1611.05431)"),
        _info(
            "mobilenet_v2",
            "mobilenet_v2",
            "MobileNetV2, width 1.0 (Sandler et al., arXiv:1801.04381)",
            ("attention_at",),
        ),
    ]
)
"""Every backbone name, in listing order."""

BACKBONE_OPTIONS = frozenset(option for info in BACKBONES.values() for option in info.options)
"""Option names that belong to a backbone, never to the attention module."""


def backbone_class(info: BackboneInfo) -> type[nn.Module]:
    """The class that builds ``info``'s family (imported here, not at module load)."""
    if info.family == "resnet":
        from attnprof.backbones.resnet import ResNet

        return ResNet
    from attnprof.backbones.mobilenet import MobileNetV2

    return MobileNetV2


def _construct(
    info: BackboneInfo, slot: AttentionBuilder, head: str, num_classes: int, options: dict
) -> nn.Module:
    if info.family == "resnet":
        from attnprof.backbones.resnet import RESNET_CONFIGS

        return backbone_class(info)(RESNET_CONFIGS[info.name], slot, head, num_classes)
    return backbone_class(info)(slot, head, num_classes, **options)


def build_model(
    backbone: str | Network,
    attention: str = "none",
    head: str | None = None,
    *,
    num_classes: int = 1000,
    device: str | torch.device | None = None,
    input_shape: tuple[int, ...] = (1, 3, 224, 224),
    **options,
) -> nn.Module:
    """Build ``backbone`` (a name of :data:`BACKBONES`) with ``attention`` wherever it goes.

    ``options`` reach the attention module (``build_model("resnet50", "sge", groups=32)``),
    except the backbone's own options (``mobilenet_v2``: ``attention_at``).
    ``device="meta"`` builds the model without allocating parameter memory, for counting.
    The model is returned in eval mode; it has ``attention_modules()``.

    ``backbone`` may also be a user's network: a :class:`~attnprof.networks.Network` or an
    import path ``"pkg.mod:factory"``, built by :func:`~attnprof.networks.build_network` (its
    head is ``"model"``, what its forward returns; ``input_shape`` then sizes the meta forward
    that an ``insert_after`` pattern needs).
    """
    if isinstance(backbone, Network) or is_import_path(backbone):
        network = backbone if isinstance(backbone, Network) else Network(backbone)
        if head not in (None, USER_HEAD):
            raise AttnprofError(
                f"{network.name}: head {head!r} applies to attnprof's backbones; a user's "
                f"network is profiled as its factory builds it (head {USER_HEAD!r})"
            )
        if num_classes != 1000:
            raise AttnprofError(f"{network.name}: give num_classes as a model option")
        return build_network(
            network, attention, device=device, input_shape=input_shape, **options
        )
    head = "fc" if head is None else head
    key = backbone.lower() if isinstance(backbone, str) else backbone
    if key not in BACKBONES:
        raise AttnprofError(f"unknown backbone {backbone!r}; valid backbones: {choices(BACKBONES)}")
    if head not in HEADS:
        raise AttnprofError(f"unknown head {head!r}; valid heads: {choices(HEADS)}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes <= 0:
        raise AttnprofError(f"num_classes must be a positive integer, got {num_classes!r}")
    info = BACKBONES[key]
    backbone_options = {name: options.pop(name) for name in BACKBONE_OPTIONS if name in options}
    for name in sorted(backbone_options):
        if name not in info.options:
            owners = [b for b, i in BACKBONES.items() if name in i.options]
            own = choices(info.options) if info.options else "none"
            raise AttnprofError(
                f"{key} has no option {name!r} (an option of {choices(owners)}); "
                f"{key}'s own options: {own}"
            )
    spec = get_attention_spec(attention)
    if spec.placement == "none" and options:
        raise AttnprofError(f"attention {spec.name!r} takes no options, got {sorted(options)}")
    slot = AttentionBuilder(spec, options, key)
    with torch.device(device) if device is not None else nullcontext():
        model = _construct(info, slot, head, num_classes, backbone_options)
        slot.check_stages()
        if slot.placement == "after":
            _place_after(model, slot, info, head, num_classes, backbone_options, input_shape)
    return model.eval()


def _place_after(model: nn.Module, slot: AttentionBuilder, info: BackboneInfo, head: str,
                 num_classes: int, options: dict, input_shape: tuple[int, ...]) -> None:
    """``place="after:PATTERN"``: a module after every module the pattern matches, its width
    read from a forward of the same backbone on the meta device (the plain one: it has the
    same module names, since no other place holds a module)."""
    pattern = slot.place.pattern
    what = f"place='after:{pattern}'"
    owner = f"{info.name} + {slot.spec.name}"
    matched = match_modules(model, pattern, owner, what)
    with torch.device("meta"):
        plain = AttentionBuilder(get_attention_spec("none"), {}, info.name)
        probe = _construct(info, plain, head, num_classes, options)
    channels = output_channels(probe, matched, input_shape, owner, what)
    stages = {name: model.stage_of(name) for name in matched}
    for name, filler in insert_slots(model, channels, stages):
        filler.fill(slot.after(filler.channels, filler.stage, name))
