"""The attention registry: one name -> one factory, plus where the module sits in a ResNet.

Every attention layer takes the number of channels as its first positional argument and its
options as keywords, so a backbone can build any of them the same way. A factory's entry also
records its *placement*, because the modules of the zoo do not all sit at the same place:

- ``block``: inside every residual block, after the last BatchNorm of the residual branch and
  before the add (SE, SGE, SA, CBAM, ECA, GC);
- ``stage``: between stages, after stages 1-3 (BAM);
- ``conv``: replaces the bottleneck's 3x3 conv, its BN and ReLU (SK); its factory is called as
  ``factory(in_channels, out_channels, stride=..., **options)``.

Names are lower-case. A name of the form ``package.module:ClassName`` imports that class and
uses it as a ``block`` module (or the placement named by its ``attnprof_placement`` attribute),
so a user can profile their own module without registering it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from attnprof.errors import AttnprofError, choices

PLACEMENTS = ("block", "stage", "conv", "none")


@dataclass(frozen=True)
class AttentionSpec:
    """A registered attention module: how to build it and where it goes."""

    name: str
    factory: Callable[..., nn.Module]
    placement: str = "block"
    paper: str = ""
    stage_aware: bool = False
    """When true the backbone passes ``stage=i`` (0-based) so per-stage options can apply."""


_REGISTRY: dict[str, AttentionSpec] = {}


def register_attention(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    placement: str = "block",
    paper: str = "",
    stage_aware: bool = False,
    replace: bool = False,
) -> AttentionSpec:
    """Register ``factory`` under ``name``; refuses duplicates unless ``replace=True``."""
    if not isinstance(name, str) or not name or name != name.lower() or ":" in name:
        raise AttnprofError(
            f"attention name {name!r} is invalid: use a non-empty lower-case name without ':'"
        )
    if placement not in PLACEMENTS:
        raise AttnprofError(
            f"{name}: placement {placement!r} is invalid; valid placements: {choices(PLACEMENTS)}"
        )
    if name in _REGISTRY and not replace:
        raise AttnprofError(
            f"attention {name!r} is already registered; pass replace=True to override it"
        )
    spec = AttentionSpec(name, factory, placement, paper, stage_aware)
    _REGISTRY[name] = spec
    return spec


def unregister_attention(name: str) -> None:
    """Remove a registration (for tests and plug-ins that clean up after themselves)."""
    _REGISTRY.pop(name, None)


def attention_names() -> list[str]:
    """The registered names, ``none`` first, the rest in registration order."""
    _ensure_builtins()
    return list(_REGISTRY)


def get_attention_spec(name: str) -> AttentionSpec:
    """Look a name up, or import it when it is a ``package.module:ClassName`` path."""
    _ensure_builtins()
    if not isinstance(name, str):
        raise AttnprofError(f"attention name must be a string, got {name!r}")
    if ":" in name:
        return _spec_from_import_path(name)
    key = name.lower()
    if key not in _REGISTRY:
        raise AttnprofError(
            f"unknown attention module {name!r}; valid names: {choices(_REGISTRY)} "
            "(or an import path 'package.module:ClassName')"
        )
    return _REGISTRY[key]


def build_attention(name: str, channels: int, **options) -> nn.Module:
    """Build the attention module ``name`` for a feature map of ``channels`` channels.

    ``conv``-placed modules (SK) take ``out_channels`` and ``stride`` as options and default to
    a ``channels -> channels`` stride-1 layer.
    """
    spec = get_attention_spec(name)
    if not isinstance(channels, int) or isinstance(channels, bool) or channels <= 0:
        raise AttnprofError(f"{spec.name}: channels must be a positive integer, got {channels!r}")
    if spec.placement == "conv":
        out_channels = options.pop("out_channels", channels)
        return instantiate(spec, channels, out_channels, **options)
    return instantiate(spec, channels, **options)


def instantiate(spec: AttentionSpec, *args, **options) -> nn.Module:
    """Call ``spec``'s factory, turning an option it does not accept into an AttnprofError."""
    if not spec.stage_aware:
        options.pop("stage", None)
    try:
        inspect.signature(spec.factory).bind(*args, **options)
    except TypeError as exc:
        raise AttnprofError(
            f"{spec.name}: invalid options {sorted(options)} ({exc}); "
            f"accepted: {_accepted_options(spec.factory)}"
        ) from None
    except ValueError:  # builtins without a signature: let the call itself decide
        pass
    return spec.factory(*args, **options)


def _accepted_options(factory: Callable) -> str:
    try:
        params = list(inspect.signature(factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return "unknown"
    names = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return choices(names) if names else "none"


def _spec_from_import_path(path: str) -> AttentionSpec:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise AttnprofError(f"import path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AttnprofError(
            f"cannot import {module_name!r} for attention {path!r}: {exc}"
        ) from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise AttnprofError(f"module {module_name!r} has no attribute {attr!r} (from {path!r})")
        target = getattr(target, part)
    if not callable(target):
        raise AttnprofError(f"{path!r} is not a class or factory")
    placement = getattr(target, "attnprof_placement", "block")
    if placement not in PLACEMENTS:
        raise AttnprofError(
            f"{path}: attnprof_placement {placement!r} is invalid; valid: {choices(PLACEMENTS)}"
        )
    return AttentionSpec(path, target, placement, getattr(target, "__doc__", "") or "")


_BUILTINS_LOADED = False


def _ensure_builtins() -> None:
    """Import the built-in modules lazily so the registry module has no import cycle."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("attnprof.attention.builtin")
