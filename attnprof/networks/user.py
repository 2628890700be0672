"""A user's own network, named by import path (``pkg.mod:factory``) or given as a class,
function or module object, with attention put where the user says.

Caveat first: attnprof builds exactly what the factory returns. ``options`` reach the factory as
keywords after a signature check (an option it does not take is refused, never dropped), and a
network without an :class:`~attnprof.networks.AttentionSlot` or an ``insert_after`` pattern
profiled with an attention variant is refused: there would be nowhere to put the module, and
counting the plain network under the variant's name would be a wrong number.

Two ways to place attention:

- slots: the network holds :class:`~attnprof.networks.AttentionSlot` placeholders (the identity
  until filled); attnprof fills each with the variant built for the slot's channels and stage;
- ``insert_after="layer*.*.bn2"``: for a network whose code cannot be edited, every module whose
  qualified name matches the pattern (``fnmatch`` rules, matched against the whole name) is
  followed by a slot: it becomes ``nn.Sequential(original, AttentionSlot(C))``, so its
  parameters are named ``<name>.0.*``. ``C`` is read from the module's output in one forward on
  the meta device (no memory, no weights), which must be an ``(N, C, H, W)`` feature map.

``conv``-placed modules (SK) replace a conv and fit neither way: refused.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attnprof.attention.registry import get_attention_spec, has_parameter
from attnprof.blame import one_line
from attnprof.errors import AttnprofError, choices
from attnprof.imports import import_object
from attnprof.networks.slot import AttentionSlot, attention_slots

USER_HEAD = "model"
"""The head of a user's network: whatever its forward returns, as its factory built it."""


@dataclass(frozen=True)
class Network:
    """A user's network: ``target`` is an import path ``"pkg.mod:factory"``, a class or
    function returning an ``nn.Module``, or an ``nn.Module`` (copied, never changed)."""

    target: Any
    options: dict[str, Any] = field(default_factory=dict)
    insert_after: str | None = None
    name: str = ""
    """The name cells and tables show; defaults to the import path (or module:qualname)."""

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", _default_name(self.target))
        if self.insert_after is not None and (
            not isinstance(self.insert_after, str) or not self.insert_after.strip()
        ):
            raise AttnprofError(
                f"{self.name}: insert_after={self.insert_after!r} is invalid; give a module-name "
                "pattern such as 'layer*.*.bn2'"
            )

    def factory(self) -> Callable[..., nn.Module]:
        """The callable that builds the network (an import path is imported here)."""
        if isinstance(self.target, str):
            return import_object(self.target, "model")
        if isinstance(self.target, nn.Module):
            instance = self.target
            return lambda: copy.deepcopy(instance)
        if callable(self.target):
            return self.target
        raise AttnprofError(
            f"a model must be an import path 'package.module:factory', a class or function "
            f"returning a torch.nn.Module, or an nn.Module; got {type(self.target).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.target if isinstance(self.target, str) else _default_name(self.target),
            "options": dict(self.options),
            "insert_after": self.insert_after,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        return cls(data["model"], dict(data.get("options") or {}), data.get("insert_after"),
                   data.get("name", ""))


def _default_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    kind = target if inspect.isclass(target) or inspect.isfunction(target) else type(target)
    return f"{getattr(kind, '__module__', '?')}:{getattr(kind, '__qualname__', repr(kind))}"


def check_options(network: Network) -> Callable[..., nn.Module]:
    """The network's factory, after checking it takes ``network.options`` by keyword."""
    factory = network.factory()
    if isinstance(network.target, nn.Module):
        if network.options:
            raise AttnprofError(
                f"{network.name}: options {sorted(network.options)} cannot reach a model that "
                "is already built; pass its class or factory instead"
            )
        return factory
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return factory  # a builtin without a signature: the call itself decides
    try:
        signature.bind(**network.options)
    except TypeError as exc:
        accepted = [
            p.name for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise AttnprofError(
            f"{network.name}{signature}: the options {sorted(network.options)} do not fit "
            f"({exc}); accepted: {choices(accepted) if accepted else 'none'}"
        ) from None
    return factory


def build_network(
    network: Network,
    attention: str = "none",
    *,
    device: str | torch.device | None = None,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    **attention_options: Any,
) -> nn.Module:
    """Build ``network`` with ``attention`` in its slots (and after ``insert_after``'s matches).

    ``input_shape`` is what the meta forward that reads the inserted slots' channels runs on.
    Returned in eval mode; :func:`~attnprof.networks.attention_modules` lists what was filled.
    """
    from attnprof.backbones.common import AttentionBuilder

    spec = get_attention_spec(attention)
    if spec.placement == "none" and attention_options:
        raise AttnprofError(
            f"attention {spec.name!r} takes no options, got {sorted(attention_options)}"
        )
    model = _call(network, device)
    if network.insert_after is not None:
        _insert_slots(network, model, input_shape)
    slots = attention_slots(model)
    if spec.placement != "none" and not slots:
        raise AttnprofError(
            f"{network.name} has no attnprof.AttentionSlot and no insert_after pattern: nowhere "
            f"to put {spec.name!r}; add slots where attention belongs, or give insert_after "
            "(e.g. insert_after='layer*.*.bn2')"
        )
    if spec.placement == "none":  # slots as the factory left them: empty, or the user's
        return model.eval()
    builder = AttentionBuilder(spec, attention_options, network.name)
    with _same_device(model):  # an nn.Module target is copied where it is, whatever ``device``
        for name, slot in slots:
            slot.fill(builder.anywhere(slot.channels, slot.stage, name))
    return model.eval()


def _call(network: Network, device) -> nn.Module:
    factory = check_options(network)
    try:
        if isinstance(network.target, nn.Module) or device is None:
            model = factory(**network.options)
        else:
            with torch.device(device):
                model = factory(**network.options)
    except AttnprofError:
        raise
    except Exception as exc:  # the user's factory failed: one line, with the cause
        raise AttnprofError(f"model {network.name}: the factory raised {one_line(exc)}") from exc
    if not isinstance(model, nn.Module):
        raise AttnprofError(
            f"model {network.name}: the factory returned {type(model).__name__}, not a "
            "torch.nn.Module"
        )
    return model


def _same_device(model: nn.Module):
    for tensor in (*model.parameters(), *model.buffers()):
        return torch.device(tensor.device)
    return torch.device("cpu")


def _insert_slots(network: Network, model: nn.Module, input_shape: Sequence[int]) -> None:
    what = f"insert_after={network.insert_after!r}"
    matched = match_modules(model, network.insert_after, network.name, what)
    probe = _call(network, "meta") if not isinstance(network.target, nn.Module) else None
    if probe is None:
        probe = copy.deepcopy(network.target).to("meta")
    channels = output_channels(probe, matched, input_shape, network.name, what,
                               "; use AttentionSlot instead")
    insert_slots(model, channels)


def match_modules(model: nn.Module, pattern: str, owner: str, what: str) -> list[str]:
    """The qualified names in ``model`` that ``pattern`` matches (``fnmatch``, whole names);
    refused when none does, or when a match contains another. ``what`` names the option."""
    names = [name for name, _ in model.named_modules() if name]
    matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
    if not matched:
        shown = choices(names[:8]) + (", ..." if len(names) > 8 else "")
        raise AttnprofError(f"{owner}: {what} matches no module; module names look like {shown}")
    nested = [n for n in matched if any(n.startswith(f"{m}.") for m in matched)]
    if nested:
        raise AttnprofError(
            f"{owner}: {what} matches both {nested[0]!r} and a module that contains it; make "
            "the pattern match one level only"
        )
    return matched


def insert_slots(
    model: nn.Module, channels: dict[str, int], stages: dict[str, int | None] | None = None
) -> list[tuple[str, AttentionSlot]]:
    """Follow each named module with an empty :class:`AttentionSlot` of its output's channels:
    it becomes ``nn.Sequential(original, slot)``. Returns the slots by name."""
    slots = []
    for name, width in channels.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        original = parent.get_submodule(child)
        slot = AttentionSlot(width, (stages or {}).get(name))
        parent.register_module(child, nn.Sequential(original, slot))
        slots.append((f"{name}.1", slot))
    return slots


def output_channels(
    probe: nn.Module, names: list[str], input_shape: Sequence[int], owner: str, what: str,
    remedy: str = "",
) -> dict[str, int]:
    """The channel count of each named module's output, from one forward of ``probe`` (a
    model on the meta device: no memory, no weights); each must be an ``(N, C, H, W)`` map."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str, output: Any) -> None:  # a hook returning a value would replace it
        shapes.setdefault(name, tuple(output.shape) if isinstance(output, torch.Tensor) else ())

    handles = [
        probe.get_submodule(name).register_forward_hook(
            lambda module, args, output, name=name: record(name, output)
        )
        for name in names
    ]
    try:
        with torch.no_grad():
            probe.eval()(torch.empty(tuple(input_shape), device="meta"))
    except Exception as exc:
        raise AttnprofError(
            f"{owner}: the forward on the meta device that reads the channel counts for "
            f"{what} raised {one_line(exc)}{remedy}"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
    found: dict[str, int] = {}
    for name in names:
        shape = shapes.get(name)
        if shape is None:
            raise AttnprofError(f"{owner}: {name!r} matches {what} but never runs in forward")
        if len(shape) != 4:
            raise AttnprofError(
                f"{owner}: {name!r} returns shape {list(shape) or 'a non-tensor'}; "
                "attention follows an (N, C, H, W) feature map only"
            )
        found[name] = shape[1]
    return found


def route_options(network: Network, attention: str, options: dict[str, Any]) -> tuple[dict, dict]:
    """Split command-line options between the network's factory and the attention module.

    ``model.KEY`` and ``attention.KEY`` say where an option goes. Otherwise it goes to the
    factory when the factory's signature names it, else to the attention module; a name both
    declare is refused as ambiguous. With the ``none`` variant every option is the factory's.
    """
    spec = get_attention_spec(attention)
    factory = network.factory()
    model_opts: dict[str, Any] = {}
    attention_opts: dict[str, Any] = {}
    for key, value in options.items():
        owner, _, bare = key.rpartition(".")
        if owner in ("model", "attention"):
            (model_opts if owner == "model" else attention_opts)[bare] = value
        elif spec.placement == "none" or has_parameter(factory, key):
            if spec.placement != "none" and has_parameter(spec.factory, key):
                raise AttnprofError(
                    f"option {key!r} is a parameter of both {network.name} and {spec.name}; "
                    f"write model.{key}=... or attention.{key}=..."
                )
            model_opts[key] = value
        else:
            attention_opts[key] = value
    return model_opts, attention_opts

