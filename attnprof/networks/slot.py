"""The placeholder a user puts in their own network where attention belongs.

Caveat first: an empty slot is the identity, so a network with slots profiled with the ``none``
variant is the plain network, and every variant's Δ is taken against it.

    >>> import attnprof
    >>> from torch import nn
    >>> block = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), attnprof.AttentionSlot(64))

attnprof fills each slot with the variant being profiled, built for the slot's ``channels`` (and
``stage``, for modules that take one), and attributes the cost of the slots' contents as the
attention share.
"""

from __future__ import annotations

import torch
from torch import nn

from attnprof.errors import AttnprofError


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class AttentionSlot(nn.Module):
    """Where an attention module goes: a ``channels``-wide feature map, in ``stage`` (0-based,
    optional). The identity until attnprof fills it; ``module`` holds what it was filled with."""

    def __init__(self, channels: int, stage: int | None = None):
        super().__init__()
        if not _is_int(channels) or channels <= 0:
            raise AttnprofError(
                f"AttentionSlot: channels must be a positive integer, got {channels!r}"
            )
        if stage is not None and (not _is_int(stage) or stage < 0):
            raise AttnprofError(
                f"AttentionSlot: stage must be None or an integer >= 0, got {stage!r}"
            )
        self.channels = channels
        self.stage = stage
        self.module: nn.Module | None = None

    def fill(self, module: nn.Module | None) -> None:
        """Put ``module`` in the slot (``None`` empties it)."""
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.module is None else self.module(x)

    def extra_repr(self) -> str:
        stage = "" if self.stage is None else f", stage={self.stage}"
        return f"channels={self.channels}{stage}"


def attention_slots(model: nn.Module) -> list[tuple[str, AttentionSlot]]:
    """Every :class:`AttentionSlot` in ``model``, by qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, AttentionSlot)]


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The attention modules of any model attnprof built: those the model lists itself
    (``attention_modules()``, attnprof's backbones), then what fills its slots
    (``<slot>.module``: a user's network, or a backbone with ``place="after:..."``)."""
    finder = getattr(model, "attention_modules", None)
    own = list(finder()) if callable(finder) else []
    listed = {id(module) for _, module in own}
    return own + [
        (f"{name}.module", slot.module)
        for name, slot in attention_slots(model)
        if slot.module is not None and id(slot.module) not in listed
    ]
