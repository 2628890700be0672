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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from attnprof.backbones import build_model
from attnprof.counting import CONVENTIONS, DEFAULT_CONVENTIONS, get_convention
from attnprof.counting.tracing import attention_params, attention_paths, model_params
from attnprof.errors import AttnprofError, choices
from attnprof.inputs import IN_CHANNELS, parse_input
from attnprof.results.counts import ConventionCount, ProfileRecord

_OPTION_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = frozenset(
    {"backbone", "attention", "input", "head", "batch", "conventions", "device", "latency"}
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


def parse_conventions(value: str | Iterable[str] | None) -> list[str]:
    """Convention names from ``"paper,full"`` or a list; ``None`` means all of them."""
    if value is None:
        return list(DEFAULT_CONVENTIONS)
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise AttnprofError(
                f"invalid conventions {value!r}: give comma-separated names from "
                f"{choices(CONVENTIONS)}"
            )
        name = get_convention(item).name
        if name not in names:
            names.append(name)
    if not names:
        raise AttnprofError(f"no conventions given; valid conventions: {choices(CONVENTIONS)}")
    return names


def parse_option_value(text: str) -> Any:
    """``"32"`` -> 32, ``"0.5"`` -> 0.5, ``"true"``/``"false"`` -> bool, ``"none"`` -> None,
    anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_option(text: str) -> tuple[str, Any]:
    """One ``KEY=VALUE`` attention option."""
    key, sep, raw = text.partition("=") if isinstance(text, str) else ("", "", "")
    key = key.strip()
    if not sep or not _OPTION_KEY.match(key) or not raw.strip():
        raise AttnprofError(
            f"invalid option {text!r}: use KEY=VALUE with a Python identifier as KEY "
            "(e.g. groups=32)"
        )
    if key in _RESERVED:
        raise AttnprofError(f"invalid option {text!r}: {key!r} is not an attention option")
    return key, parse_option_value(raw.strip())


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
    backbone: str,
    attention: str = "none",
    input: int | str | Sequence[int] = 224,
    head: str = "fc",
    batch: int = 1,
    conventions: str | Iterable[str] | None = None,
    latency: LatencyRequest | None = None,
    **options: Any,
) -> ProfileRecord:
    """Count ``backbone`` with ``attention`` on a ``batch`` x 3 x H x W input.

    ``input`` is ``224`` (square), ``(800, 1333)`` or ``"800x1333"`` (H x W); ``head`` is
    ``fc``, ``pool`` (the published detection setting: fc removed, global pool kept) or
    ``none``; ``conventions`` defaults to all of :data:`~attnprof.counting.CONVENTIONS`;
    ``latency`` (a :class:`LatencyRequest`) adds timings; ``options`` reach the attention
    module (``groups=32``).
    """
    reserved = sorted(_RESERVED.intersection(options))
    if reserved:
        raise AttnprofError(f"{reserved[0]!r} is not an attention option")
    height, width = parse_input(input)
    batch = parse_batch(batch)
    names = parse_conventions(conventions)
    shape = (batch, IN_CHANNELS, height, width)

    model = build_model(backbone, attention, head, device="meta", **options)
    attention_modules = attention_paths(model)
    counts: dict[str, ConventionCount] = {}
    for name in names:
        convention = CONVENTIONS[name]
        if convention.needs_real_tensors:
            target = build_model(backbone, attention, head, device="cpu", **options)
        else:
            target = model
        counts[name] = convention.counter(target, shape, attention_modules)
    timings: tuple = ()
    module_timings: tuple = ()
    if latency is not None:
        timings, module_timings = _measure(
            backbone, attention, head, (height, width), latency, options
        )
    return ProfileRecord(
        backbone=backbone.lower(),
        attention=attention.lower() if ":" not in attention else attention,
        input=shape,
        head=head,
        params=model_params(model),
        attention_params=attention_params(model, attention_modules),
        counts=counts,
        options=dict(options),
        latency=timings,
        module_latency=module_timings,
    )


def _measure(backbone, attention, head, input_hw, request: LatencyRequest, options) -> tuple:
    """Time the model (and its attention modules alone) as ``request`` asks."""
    from attnprof.latency import measure_latency, time_attention_modules

    model = build_model(backbone, attention, head, **options)
    records = measure_latency(
        model,
        input_hw,
        device=request.device,
        batch_sizes=request.batch_sizes,
        threads=request.threads,
        dtype=request.dtype,
        channels_last=request.channels_last,
        compile=request.compile,
        name=f"{backbone}+{attention}",
    )
    modules = ()
    if request.modules and model.attention_modules():
        modules = time_attention_modules(
            model,
            input_hw,
            batch=request.batch_sizes[0],
            device=request.device,
            threads=request.threads,
            dtype=request.dtype,
            channels_last=request.channels_last,
        )
    return tuple(records), tuple(modules)


__all__ = [
    "LatencyRequest",
    "parse_batch",
    "parse_batches",
    "parse_conventions",
    "parse_input",
    "parse_option",
    "parse_options",
    "profile",
]
