"""Profile one model: its parameters and its operation counts under several conventions.

    >>> from attnprof.profiling import profile
    >>> record = profile("resnet50", "se", input=224, conventions=["paper"])
    >>> record.counts["paper"].value, record.counts["paper"].unit      # doctest: +SKIP
    (4129959344, 'MAC')

The counters that can (``paper``, ``thop``, ``full``) run on a model built on the meta device:
no memory, milliseconds. ``fvcore`` traces a CPU model with real weights and takes seconds.
The parsers below turn command-line strings into :func:`profile`'s arguments and reject bad
ones with an :class:`~attnprof.errors.AttnprofError` naming the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from attnprof import option_values
from attnprof.attention.registry import get_attention_spec
from attnprof.backbones import build_model
from attnprof.blame import blamed
from attnprof.collected_warnings import collecting, full_texts, summary
from attnprof.counting import CONVENTIONS, DEFAULT_CONVENTIONS, Convention, get_convention
from attnprof.counting.tracing import attention_params, model_params
from attnprof.counting.unregistered import Unregistered
from attnprof.errors import AttnprofError, choices
from attnprof.imports import is_import_path
from attnprof.inputs import IN_CHANNELS, parse_input
from attnprof.networks import USER_HEAD, Network, attention_modules
from attnprof.nonfinite import first_nonfinite
from attnprof.results.counts import ConventionCount, ProfileRecord
from attnprof.targets import CountingModels

_OPTION_KEY = re.compile(r"^(?:(?:model|attention)\.)?[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = frozenset(
    {"backbone", "attention", "input", "head", "batch", "conventions", "device", "latency",
     "breakdown"}
)
"""Names an attention option cannot take: they are :func:`profile`'s own arguments."""


def parse_batch(value: int | str) -> int:
    """A batch size: a positive integer (or its decimal string)."""
    batch = value
    if isinstance(value, str) and value.strip().isdigit():
        batch = int(value)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch <= 0:
        raise AttnprofError(f"invalid batch size {value!r}: use a positive integer")
    return batch


def parse_conventions(value: str | Iterable[str | Convention] | None) -> list[Convention]:
    """Conventions from ``"paper,full"`` or a list of names or :class:`Convention` declarations
    (a suite's own); ``None`` means :data:`~attnprof.counting.DEFAULT_CONVENTIONS`."""
    if value is None:
        return [get_convention(name) for name in DEFAULT_CONVENTIONS]
    items = value.split(",") if isinstance(value, str) else list(value)
    found: dict[str, Convention] = {}
    for item in items:
        if not isinstance(item, Convention) and (not isinstance(item, str) or not item.strip()):
            raise AttnprofError(
                f"invalid conventions {value!r}: give comma-separated names from "
                f"{choices(CONVENTIONS)}"
            )
        convention = get_convention(item)
        found.setdefault(convention.name, convention)
    if not found:
        raise AttnprofError(f"no conventions given; valid conventions: {choices(CONVENTIONS)}")
    return list(found.values())


def parse_option_value(text: str) -> Any:
    """A ``-o KEY=VALUE`` value read as the literal it spells (``"[3, 5]"`` -> ``[3, 5]``,
    ``"32"`` -> 32, ``"true"`` -> True, ``"none"`` -> None), else the text as typed: see
    :mod:`attnprof.option_values`."""
    return option_values.parse(text)


def parse_option(text: str) -> tuple[str, Any]:
    """One ``KEY=VALUE`` attention option."""
    key, sep, raw = text.partition("=") if isinstance(text, str) else ("", "", "")
    key = key.strip()
    if not sep or not _OPTION_KEY.match(key) or not raw.strip():
        raise AttnprofError(
            f"invalid option {text!r}: use KEY=VALUE with a Python identifier as KEY, "
            "optionally prefixed model. or attention. (e.g. groups=32, kernels=[3,5])"
        )
    if key in _RESERVED:
        raise AttnprofError(f"invalid option {text!r}: {key!r} is not an attention option")
    try:
        return key, parse_option_value(raw.strip())
    except AttnprofError as exc:
        raise exc.prefixed(f"invalid option {key}: ") from None


def parse_options(texts: Iterable[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for text in texts:
        key, value = parse_option(text)
        if key in options:
            raise AttnprofError(f"option {key!r} given twice")
        options[key] = value
    return options


@dataclass(frozen=True)
class LatencyRequest:
    """What to time besides counting: see :func:`attnprof.latency.measure_latency`.

    ``batch_sizes`` are timed one by one; ``modules`` also times each attention module alone
    on the feature map it sees (at the first batch size), to show which stage's costs most.
    """

    device: str = "cpu"
    batch_sizes: tuple[int, ...] = (1,)
    threads: int | None = None
    dtype: str = "float32"
    channels_last: bool = False
    compile: bool = False
    modules: bool = True


def parse_batches(value: int | str | Sequence[int]) -> tuple[int, ...]:
    """Batch sizes from ``"1,8"``, ``8`` or ``[1, 8]``."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, int):
        items = [items]
    try:
        sizes = tuple(
            parse_batch(item.strip() if isinstance(item, str) else item) for item in items
        )
    except TypeError:
        sizes = ()
    if not sizes:
        raise AttnprofError(f"invalid batch sizes {value!r}: use positive integers, e.g. 1,8")
    return sizes


def profile(
    model: str | Network | nn.Module | Callable[..., nn.Module],
    attention: str = "none",
    input: int | str | Sequence[int] = 224,
    head: str | None = None,
    batch: int | str | Sequence[int] = 1,
    conventions: str | Iterable[str | Convention] | None = None,
    latency: LatencyRequest | None = None,
    *,
    model_options: dict[str, Any] | None = None,
    insert_after: str | None = None,
    breakdown: bool = False,
    train: bool = False,
    **options: Any,
) -> ProfileRecord:
    """Count ``model`` with ``attention`` on a ``batch`` x 3 x H x W input.

    ``batch`` may list several sizes (``"1,8"``, ``(1, 8)``): each one is counted, the first in
    ``counts`` (and ``input``), the others in ``other_batches``, never silently skipped.

    ``model`` is a backbone name (``"resnet50"``), a user's network by import path
    (``"pkg.mod:factory"``), a class or function returning an ``nn.Module``, an ``nn.Module``
    (copied, never changed) or a :class:`~attnprof.networks.Network`; ``model_options`` reach
    its factory and ``insert_after`` places attention after the modules matching a name pattern
    (see :mod:`attnprof.networks`). ``input`` is ``224`` (square), ``(800, 1333)`` or
    ``"800x1333"`` (H x W); ``head`` is ``fc``, ``pool`` (the published detection setting: fc
    removed, global pool kept) or ``none`` for a backbone, ``model`` (the default) for a user's
    network; ``conventions`` defaults to all of :data:`~attnprof.counting.CONVENTIONS`;
    ``latency`` (a :class:`LatencyRequest`) adds timings; ``breakdown`` adds each count's split
    per module and per operator (``count.breakdown``); ``train`` adds one training step's count
    at the first batch size (``record.training``: forward and backward FLOPs and bytes under
    ``full``, the activation bytes autograd saves; :mod:`attnprof.counting.training`);
    ``options`` reach the attention module
    (``groups=32``; ``place="stages:0,1,2"`` puts it elsewhere in a backbone, see
    :mod:`attnprof.attention.placement`). An exception in a forward becomes one AttnprofError
    line naming the network, the variant, the attention module's place and channels, and the
    input shape.

    What a user's module gets wrong is checked, never counted silently: an attention module
    that does not return its input's shape is refused (:mod:`attnprof.attention.contract`);
    parameters that run unregistered are counted under it, with a note
    (:mod:`attnprof.counting.unregistered`); a model that cannot run on the meta device is
    counted on CPU tensors, with a note (:mod:`attnprof.targets`); one CPU forward on the
    profiling input sets ``record.nonfinite`` where the output is not finite
    (:mod:`attnprof.nonfinite`); the code's warnings are collected into one note, their whole
    text in ``record.warnings`` (:mod:`attnprof.collected_warnings`).
    """
    reserved = sorted(_RESERVED.intersection(options))
    if reserved:
        raise AttnprofError(f"{reserved[0]!r} is not an attention option")
    network = as_network(model, model_options, insert_after)
    height, width = parse_input(input)
    batches = parse_batches(batch)
    chosen = parse_conventions(conventions)
    shape = (batches[0], IN_CHANNELS, height, width)
    label = network.name if isinstance(network, Network) else network.lower()
    if isinstance(network, Network):
        head = USER_HEAD if head is None else head
    head = "fc" if head is None else head

    def build(device: str | None) -> nn.Module:
        return build_model(network, attention, head, device=device, input_shape=shape, **options)

    what = f"{label} + {attention}"
    identity = {"backbone": label, "head": head, "options": dict(options),
                "attention": attention.lower() if ":" not in attention else attention}
    with collecting() as caught:
        record = _profile(build, what, identity, shape, batches, chosen, breakdown, train,
                          get_attention_spec(attention).placement != "conv")
        if latency is not None:
            with blamed(what, shape):
                timings, module_timings = _measure(build, label, attention, (height, width),
                                                   latency)
            record = replace(record, latency=timings, module_latency=module_timings)
    notes = list(record.notes)
    said = summary(caught, f"{what}: the profiled code")
    if said is not None:
        notes.append(said)
    return replace(record, notes=tuple(notes), warnings=full_texts(caught))


def _profile(build, what: str, identity: dict[str, Any], shape: tuple[int, int, int, int],
             batches: tuple[int, ...], chosen: list[Convention], breakdown: bool, train: bool,
             keeps_shape: bool) -> ProfileRecord:
    """The counts, parameters, training step and finiteness of one model (see :func:`profile`):
    checked on the meta device first, counted there or on the CPU (:mod:`attnprof.targets`)."""
    models = CountingModels(build, what, shape, keeps_shape)
    model = models.model
    paths = [name for name, _ in attention_modules(model)]
    counted: dict[int, dict[str, ConventionCount]] = {}
    for size in batches:
        at = (size, *shape[1:])
        counted[size] = {}
        for convention in chosen:
            target = models.cpu() if convention.needs_real_tensors else model
            counted[size][convention.name] = models.count(convention, target, at, paths,
                                                          breakdown)
    cpu = models.cpu()  # before the training step, which may update BatchNorm statistics
    with blamed(what, shape, attention_modules(cpu)):
        nonfinite = first_nonfinite(cpu, shape, paths)
    training = None
    if train:
        from attnprof.counting.training import count_training

        with blamed(f"{what} (training step)", shape, attention_modules(model)):
            training = count_training(model, shape, attention=paths)
    notes = list(models.notes)
    params, inside = model_params(model), attention_params(model, paths)
    unregistered = models.inspection.unregistered
    if unregistered is not None:
        params += unregistered.params
        inside += unregistered.attention_params
        notes.append(unregistered_note(what, unregistered))
    return ProfileRecord(
        **identity,
        input=shape,
        params=params,
        attention_params=inside,
        counts=counted.pop(batches[0]),
        other_batches=counted,
        training=training,
        nonfinite=nonfinite,
        notes=tuple(notes),
    )


def unregistered_note(what: str, found: Unregistered) -> str:
    """The one line that says what ran unregistered and how it was counted."""
    owner = "the attention module's" if any(found.places) else "the model's"
    thop = " (thop, whose hooks cannot see modules, refuses)" if found.modules else ""
    return (f"{what}: {found.describe()} run in {found.where()} without being registered "
            f"(kept in a plain list or dict, or built in forward): counted in {owner} "
            f"parameters and counts{thop}; they would not be trained either: register them "
            "(nn.ModuleList, nn.ModuleDict, nn.Parameter)")


def as_network(
    model: Any, model_options: dict[str, Any] | None = None, insert_after: str | None = None
) -> str | Network:
    """A backbone name as it is, anything else as a :class:`~attnprof.networks.Network`."""
    if isinstance(model, Network):
        if model_options or insert_after:
            raise AttnprofError(
                f"{model.name}: give options and insert_after inside the Network, not beside it"
            )
        return model
    if isinstance(model, str) and not is_import_path(model):
        if model_options or insert_after is not None:
            raise AttnprofError(
                f"{model}: model options and insert_after are for a user's network; a backbone's "
                "attention goes where its paper puts it (options reach the attention module)"
            )
        return model
    if isinstance(model, (str, nn.Module)) or callable(model):
        return Network(model, dict(model_options or {}), insert_after)
    raise AttnprofError(
        f"cannot profile a {type(model).__name__}: give a backbone name, an import path "
        "'package.module:factory', a class or function returning a torch.nn.Module, or a module"
    )


def _measure(build, label, attention, input_hw, request: LatencyRequest) -> tuple:
    """Time the model (and its attention modules alone) as ``request`` asks."""
    from attnprof.latency import measure_latency, time_attention_modules

    model = build(None)
    records = measure_latency(
        model,
        input_hw,
        device=request.device,
        batch_sizes=request.batch_sizes,
        threads=request.threads,
        dtype=request.dtype,
        channels_last=request.channels_last,
        compile=request.compile,
        name=f"{label}+{attention}",
    )
    modules = ()
    found = attention_modules(model)
    if request.modules and found:
        modules = time_attention_modules(
            model,
            input_hw,
            batch=request.batch_sizes[0],
            device=request.device,
            threads=request.threads,
            dtype=request.dtype,
            channels_last=request.channels_last,
            modules=found,
        )
    return tuple(records), tuple(modules)


__all__ = [
    "LatencyRequest",
    "as_network",
    "parse_batch",
    "parse_batches",
    "parse_conventions",
    "parse_input",
    "parse_option",
    "parse_options",
    "profile",
]
