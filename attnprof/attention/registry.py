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
so a user can profile their own module without registering it. The module is looked up from the
current folder too (:mod:`attnprof.imports`).

Import-path modules are public code with their own constructors, so their contract is *checked*
with :func:`inspect.signature`, never assumed (:func:`_bind_user_module`; ``block`` and
``stage`` placements):

- the channel count goes to the first positional parameter when its name is one of
  :data:`CHANNEL_NAMES` (``channels``, ``in_channels``, ``inplanes``, ``inp``, ``dim``, ...), or
  to the parameter named by the option ``channels_arg="name"``; ``channels_arg="none"`` (or
  ``None``) builds a module that takes no channel count (SimAM, a ``groups``-only SGE). A
  signature with neither is refused: the channel count is never bound to ``groups`` or
  ``no_spatial`` by position. (A factory whose only positionals are ``*args``, such as
  ``torch.nn:Identity``, takes the channel count positionally, as it declares it accepts any.)
- ``same_channels=["oup"]`` (or ``"oup,mid"``) sets those parameters to the channel count too;
- ``stage`` (0-based) is passed when the signature has an explicit ``stage`` parameter;
- an option the signature does not take (and no ``**kwargs``), a required parameter left
  unfilled, or an option that collides with the channel parameter is refused before building,
  with one message naming the module, the parameter and what would be valid;
- ``channels_arg`` and ``same_channels`` are attnprof's, never passed to the module.

An exception raised by an import-path module's constructor becomes one AttnprofError line with
the module, the channel count and the original error; the backbone slot prefixes the backbone,
the place and the width (:mod:`attnprof.backbones.common`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from attnprof.blame import one_line
from attnprof.errors import AttnprofError, Hint, Placeholder, choices
from attnprof.imports import import_object

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
    checked: bool = False
    """True for import-path modules: their constructor contract is checked, see the module doc."""


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
    if spec.checked:
        return _build_user_module(spec, args, options)
    _check_binds(spec, args, options)
    return spec.factory(*args, **options)


def _check_binds(spec: AttentionSpec, args: tuple, options: dict) -> None:
    """Refuse options ``spec``'s factory does not accept, before calling it."""
    try:
        inspect.signature(spec.factory).bind(*args, **options)
    except TypeError as exc:
        raise AttnprofError(
            f"{spec.name}: invalid options {sorted(options)} ({exc}); "
            f"accepted: {_accepted_options(spec.factory)}"
        ) from None
    except ValueError:  # builtins without a signature: let the call itself decide
        pass


def _accepted_options(factory: Callable) -> str:
    try:
        params = list(inspect.signature(factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return "unknown"
    names = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return choices(names) if names else "none"


def _spec_from_import_path(path: str) -> AttentionSpec:
    target = import_object(path, "attention")
    placement = getattr(target, "attnprof_placement", "block")
    if placement not in PLACEMENTS:
        raise AttnprofError(
            f"{path}: attnprof_placement {placement!r} is invalid; valid: {choices(PLACEMENTS)}"
        )
    return AttentionSpec(
        path,
        target,
        placement,
        getattr(target, "__doc__", "") or "",
        stage_aware=has_parameter(target, "stage"),
        checked=True,
    )


CHANNEL_NAMES = frozenset(
    {
        "c", "ch", "channel", "channels", "n_channels", "num_channels", "nchannels",
        "in_channels", "in_channel", "in_ch", "in_chs", "inc", "in_c", "chs",
        "in_planes", "inplanes", "planes", "inp", "in_dim", "dim", "in_features",
        "gate_channels", "channel_in", "channels_in", "c1", "n_feats", "num_features",
    }
)  # fmt: skip
"""Names of a first positional parameter that takes the channel count of the feature map."""

_NO_CHANNELS = object()


def has_parameter(factory: Callable, name: str) -> bool:
    """Whether ``factory`` takes ``name`` by keyword (``**kwargs`` alone does not count)."""
    try:
        parameter = inspect.signature(factory).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        parameter.POSITIONAL_OR_KEYWORD,
        parameter.KEYWORD_ONLY,
    )


def _name_list(value, spec: AttentionSpec) -> list[str]:
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        names = None
    if not names:
        raise AttnprofError(
            f"{spec.name}: same_channels={value!r} is invalid: use a list of parameter names, "
            "e.g. ", Hint("same_channels", ["oup", "mid"]),
        )
    return names


def _bind_user_module(spec: AttentionSpec, channels: int, options: dict) -> tuple[tuple, dict]:
    """Check an import-path module's signature; the ``(args, kwargs)`` to call it with."""
    name = spec.name
    try:
        signature = inspect.signature(spec.factory)
    except (TypeError, ValueError) as exc:
        raise AttnprofError(
            f"{name}: cannot read the constructor's signature ({exc}); wrap it in a Python "
            "class or function with named parameters"
        ) from None
    params = signature.parameters
    named = [p for p in params.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    keywordable = [p.name for p in named if p.kind != p.POSITIONAL_ONLY]
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    var_pos = any(p.kind == p.VAR_POSITIONAL for p in params.values())
    positional = [p for p in named if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    shown = f"{name}{signature}"
    valid = choices(keywordable) if keywordable else "none"

    options = dict(options)
    channels_arg = options.pop("channels_arg", _NO_CHANNELS)
    same = options.pop("same_channels", None)
    args: tuple = ()
    target: str | None = None  # the parameter that takes the channel count, by keyword
    if channels_arg is _NO_CHANNELS:
        if positional and positional[0].name.lower() in CHANNEL_NAMES:
            if positional[0].kind == positional[0].POSITIONAL_ONLY:
                args = (channels,)
            else:
                target = positional[0].name
        elif not positional and var_pos:
            args = (channels,)  # ``*args`` only: it declares it accepts any positional
        else:
            likely = [p for p in keywordable if p.lower() in CHANNEL_NAMES]
            named = (
                (Hint("channels_arg", likely[0]), f" if {likely[0]!r} takes the channel count")
                if likely
                else (Hint("channels_arg", Placeholder("NAME", string=True)),
                      " naming the parameter that takes it")
            )
            first = f"its first parameter {positional[0].name!r}" if positional else "it"
            raise AttnprofError(
                f"{shown}: cannot tell which parameter takes the channel count ({first} is "
                f"not a channel name such as channels, in_channels, inplanes, inp, dim); give ",
                *named, ", or ", Hint("channels_arg", "none"),
                " for a module that needs no channel count",
            )
    elif channels_arg is None or (
        isinstance(channels_arg, str) and channels_arg.strip().lower() == "none"
    ):
        pass
    elif isinstance(channels_arg, str) and (channels_arg in keywordable or var_kw):
        if not channels_arg.isidentifier():
            raise AttnprofError(f"{name}: channels_arg={channels_arg!r} is not a parameter name")
        target = channels_arg
    else:
        raise AttnprofError(
            f"{shown}: channels_arg={channels_arg!r} is not a parameter of the constructor; "
            f"valid: {valid}, or ", Hint("channels_arg", "none"),
            " for a module that needs no channel count",
        )

    kwargs: dict = {}
    if target is not None:
        if target in options:
            raise AttnprofError(
                f"{shown}: option {target!r} is the channel count, set by attnprof from the "
                f"feature map ({channels}); remove it"
            )
        kwargs[target] = channels
    if same is not None:
        for param in _name_list(same, spec):
            if param not in keywordable and not var_kw:
                raise AttnprofError(
                    f"{shown}: same_channels names {param!r}, not a parameter of the "
                    f"constructor; valid: {valid}"
                )
            if param == target or param in options:
                raise AttnprofError(
                    f"{shown}: parameter {param!r} is given twice (same_channels and "
                    f"{'the channel count' if param == target else 'an option'})"
                )
            kwargs[param] = channels
    unknown = sorted(key for key in options if key not in keywordable)
    if unknown and not var_kw:
        raise AttnprofError(
            f"{shown}: invalid option {unknown[0]!r}: the constructor does not take it; "
            f"accepted: {valid} (plus attnprof's channels_arg and same_channels)"
        )
    kwargs.update(options)
    filled = set(kwargs) | {p.name for p in positional[: len(args)]}
    for p in named:
        if p.default is p.empty and p.name not in filled:
            how = (
                ("it is positional-only",)
                if p.kind == p.POSITIONAL_ONLY
                else ("give it as an option (", Hint(p.name, Placeholder("VALUE")), "), or ",
                      Hint("same_channels", [p.name]), " to set it to the channel count")
            )
            raise AttnprofError(
                f"{shown}: required parameter {p.name!r} is not filled; ", *how
            )
    return args, kwargs


def _build_user_module(spec: AttentionSpec, args: tuple, options: dict) -> nn.Module:
    """Build an import-path module under its checked contract (``block``/``stage``)."""
    if spec.placement in ("block", "stage") and len(args) == 1:
        channels = args[0]
        call_args, kwargs = _bind_user_module(spec, channels, options)
        what = f"channels={channels}"
    else:  # ``conv``: (in_channels, out_channels, stride=...), checked by binding
        _check_binds(spec, args, options)
        call_args, kwargs = args, options
        what = ", ".join(str(a) for a in args) + " channels"
    try:
        return spec.factory(*call_args, **kwargs)
    except AttnprofError:
        raise
    except Exception as exc:  # the user's constructor failed: one line, with the cause
        raise AttnprofError(
            f"{spec.name} ({what}): the constructor raised {one_line(exc)}"
        ) from exc


_BUILTINS_LOADED = False


def _ensure_builtins() -> None:
    """Import the built-in modules lazily so the registry module has no import cycle."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("attnprof.attention.builtin")
