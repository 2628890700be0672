"""One group of variants, profiled in one process: :func:`attribute_group`.

Caveats first: this is eager PyTorch on the CPU, float32, under ``torch.inference_mode()`` as
attnprof's latency timing runs. The variants' forwards are interleaved round by round (every
variant once per round, profiled and unprofiled rounds apart), so that a machine that slows
down part-way slows every variant alike; still, the Δ of profiled forwards is a profiled Δ,
not the paired latency's, and the explanation takes whichever Δ it is given. Call it in a
fresh process per group, as the suite runner does for latency: allocator and oneDNN state from
earlier work shifts timings.

Per variant it runs the ``full`` count once on the same input
(:mod:`~attnprof.attribution.counted`), then ``warmup`` forwards, then ``forwards`` rounds of
unprofiled forwards, then ``forwards`` rounds of profiled ones
(:mod:`~attnprof.attribution.eager`), with Python's garbage collector off inside each round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.attribution.aggregate import attribute_variant
from attnprof.attribution.counted import count_calls
from attnprof.attribution.eager import PROFILER, no_collection, profiled_forward
from attnprof.attribution.levels import LEVEL
from attnprof.attribution.records import GroupAttribution
from attnprof.counting.breakdown import attention_stages
from attnprof.counting.tracing import attention_paths
from attnprof.errors import AttnprofError, choices
from attnprof.inputs import parse_input_chw
from attnprof.latency.environment import CpuContention
from attnprof.latency.settings import resolve_threads

DEFAULT_FORWARDS = 10
"""Profiled (and unprofiled) forwards per variant."""
DEFAULT_WARMUP = 3
"""Forwards per variant before anything is timed (the first pays oneDNN's setup)."""
SEED = 0


def attribute_group(
    variants: Mapping[str, Callable[[], nn.Module]],
    input_shape: int | Sequence[int],
    batch: int = 1,
    threads: int | None = None,
    baseline: str = "none",
    forwards: int = DEFAULT_FORWARDS,
    *,
    warmup: int = DEFAULT_WARMUP,
) -> GroupAttribution:
    """Profile every variant of ``variants`` (name -> factory of the model, built here) on
    one random input of ``(batch, *input_shape)`` with ``threads`` threads (default: torch's
    current count, restored after) and attribute each forward's time to its operators.

    ``input_shape`` is ``(C, H, W)``, ``(H, W)`` or ``S`` as everywhere in attnprof;
    ``baseline`` names the variant every Δ is taken against. Raises
    :class:`~attnprof.errors.AttnprofError` for what cannot run.
    """
    chw = parse_input_chw(input_shape)
    count = resolve_threads(threads)
    _check_arguments(variants, baseline, batch, forwards, warmup)
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn((batch, *chw), generator=generator)
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with CpuContention() as contention:
            models = {name: _build(name, factory) for name, factory in variants.items()}
            scopes = {name: attention_paths(model) for name, model in models.items()}
            counted = {name: count_calls(model, x, scopes[name])
                       for name, model in models.items()}
            with torch.inference_mode():
                for model in models.values():
                    for _ in range(warmup):
                        model(x)
                unprofiled = {name: [] for name in models}
                for _ in range(forwards):
                    with no_collection():  # one collection per round, none inside it
                        for name, model in models.items():
                            begin = time.perf_counter()
                            model(x)
                            unprofiled[name].append((time.perf_counter() - begin) * 1e3)
                profiles = {name: [] for name in models}
                for _ in range(forwards):
                    with no_collection():
                        for name, model in models.items():
                            own = {path: path for path in scopes[name]}
                            profiles[name].append(profiled_forward(model, x, own))
    finally:
        torch.set_num_threads(previous)
    return GroupAttribution(
        runtime="eager", profiler=PROFILER, level=LEVEL, input_shape=chw, batch=batch,
        threads=count, dtype="float32", baseline=baseline, warmup=warmup,
        torch_version=torch.__version__,
        variants=tuple(
            attribute_variant(name, profiles[name], unprofiled[name],
                              attention_stages(models[name], scopes[name]), counted[name])
            for name in models
        ),
        other_cpu_load=contention.other_cpus,
    )


def _build(name: str, factory: Callable[[], nn.Module]) -> nn.Module:
    model = factory()
    if not isinstance(model, nn.Module):
        raise AttnprofError(f"variant {name!r}: its factory returned a "
                            f"{type(model).__name__}, not a torch.nn.Module")
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.device.type != "cpu" or (tensor.is_floating_point()
                                            and tensor.dtype != torch.float32):
            raise AttnprofError(f"variant {name!r}: attribution runs float32 models on the CPU; "
                                f"this one has a {tensor.dtype} tensor on {tensor.device}")
    return model.eval()


def _check_arguments(variants, baseline, batch, forwards, warmup) -> None:
    if not isinstance(variants, Mapping) or not variants:
        raise AttnprofError("variants must be a non-empty mapping of name -> model factory")
    for name, factory in variants.items():
        if not isinstance(name, str) or not name or not callable(factory):
            raise AttnprofError(f"variants must map names to model factories (callables), got "
                                f"{name!r}: {type(factory).__name__}")
    if baseline not in variants:
        raise AttnprofError(f"baseline {baseline!r} is not among the variants; valid: "
                            f"{choices(variants)}")
    for what, value, least in (("batch", batch, 1), ("forwards", forwards, 1),
                               ("warmup", warmup, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise AttnprofError(f"{what} must be an integer >= {least}, got {value!r}")


@dataclass(frozen=True)
class AttributionJob:
    """:func:`attribute_group`'s arguments, to run in a fresh process
    (:func:`attnprof.latency.workers.run_in_fresh_process`)."""

    variants: Mapping[str, Callable[[], nn.Module]]
    input_shape: tuple[int, ...]
    batch: int = 1
    threads: int | None = None
    baseline: str = "none"
    forwards: int = DEFAULT_FORWARDS


def run_job(job: AttributionJob, progress: Callable[[int, int], None] | None = None
            ) -> GroupAttribution:
    """The worker's entry point: :func:`attribute_group` on ``job``."""
    return attribute_group(dict(job.variants), job.input_shape, job.batch, job.threads,
                           job.baseline, job.forwards)
