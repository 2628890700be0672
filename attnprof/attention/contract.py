"""What an attention module must do where attnprof puts it, checked in one forward.

Caveat first: a module that does not return its input's shape can still *run* in a network. A
module that returns its gate, ``(N, C, 1, 1)`` or ``(N, 1, H, W)`` for an ``(N, C, H, W)``
input, is broadcast by the residual add after it, so the block's output is thrown away and the
network still counts without an error: a wrong number. So every attention module that sits in
a block, between stages, after a matched module or in a slot must return a tensor of exactly
its input's shape; only a ``conv`` module (SK), which replaces a convolution, may change it.

:func:`inspect_forward` runs the model once (on the meta device: no memory, milliseconds) with
hooks that check each attention module's output against its input and a
:func:`~attnprof.counting.unregistered.census` of what ran unregistered. A mismatch is refused
on one line naming the module's place, its input shape, its output shape and the likely fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.tracing import input_like
from attnprof.counting.unregistered import Unregistered, census
from attnprof.errors import AttnprofError


@dataclass(frozen=True)
class Inspection:
    """What the checking forward found (a shape mismatch is raised, never returned)."""

    unregistered: Unregistered | None


def _text(shape: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in shape)


def shape_problem(seen: tuple[int, ...], output) -> str | None:
    """Why ``output`` cannot stand where a map of shape ``seen`` was, or ``None`` if it can."""
    if not isinstance(output, torch.Tensor):
        kind = type(output).__name__
        return (f"returns a {kind}, not a tensor, for its input {_text(seen)}; return only the "
                "attended map, a tensor of its input's shape")
    out = tuple(int(v) for v in output.shape)
    if out == seen:
        return None
    said = f"returns {_text(out) or 'a scalar'} for its input {_text(seen)}"
    if len(seen) == 4 and len(out) == 4 and out[0] == seen[0]:
        channel_gate = out[1] == seen[1] and out[2:] == (1, 1)
        spatial_gate = out[1] == 1 and out[2:] == seen[2:]
        if channel_gate or spatial_gate:
            kind = "channel" if channel_gate else "spatial"
            return (f"{said}: that is a {kind} gate, not the gated map; the residual add after "
                    "it would broadcast it and throw the block's output away: return x * gate")
        if out[2:] == seen[2:]:
            return (f"{said}: it changes the channel count ({seen[1]} -> {out[1]}); a module "
                    "here must keep its input's channels (expand what it reduced)")
        return (f"{said}: it changes the spatial size; a module here must keep its input's "
                "height and width (no stride or pooling on its output)")
    if len(out) == 2 and out[0] == seen[0]:
        return (f"{said}: that is one vector per image (class scores?), not a feature map; "
                "a module here must return a map of its input's shape")
    return f"{said}: a module here must return a tensor of its input's shape"


def inspect_forward(
    model: nn.Module,
    shape: Sequence[int],
    modules: Sequence[tuple[str, nn.Module]],
    label: str,
    *,
    keeps_shape: bool = True,
    x: torch.Tensor | None = None,
) -> Inspection:
    """Run ``model`` once on an input of ``shape`` (zeros on its device, or ``x``), checking
    that each of ``modules`` (the attention modules, by name) returns its input's shape when
    ``keeps_shape``, and taking the census of what ran unregistered.

    Raises :class:`AttnprofError` for a shape mismatch; any other exception is the model's own
    and propagates (the caller blames it, or retries on the CPU).
    """
    seen: dict[int, list[tuple[int, ...] | None]] = {}
    names = {id(module): name for name, module in modules}

    def enter(module, args):
        first = args[0] if args else None
        seen.setdefault(id(module), []).append(
            tuple(int(v) for v in first.shape) if isinstance(first, torch.Tensor) else None
        )

    def leave(module, args, output):
        given = seen[id(module)].pop()
        if not keeps_shape or given is None:
            return
        problem = shape_problem(given, output)
        if problem is not None:
            stage = getattr(module, "attnprof_stage", None)
            where = f", stage {stage}" if isinstance(stage, int) else ""
            raise AttnprofError(
                f"{label} (input {_text(shape)}): attention module {names[id(module)]} "
                f"({type(module).__name__}{where}) {problem}"
            )

    x = input_like(model, shape) if x is None else x
    handles = []
    try:  # plain hooks: one that raised must not run again while the forward unwinds
        for _, module in modules:
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave))
        with census(model, modules) as found, dynamo_stand_in(), torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return Inspection(found.result())
