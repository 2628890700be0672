"""Forward latency of one model: preparation, warm-up, and the Timer measurement.

Caveats first: a latency is only reproducible together with its settings and machine, so the
settings are resolved before anything runs (:mod:`attnprof.latency.settings`, which refuses what
cannot run here) and recorded with the environment in every record.

How a model is timed (:func:`measure_latency`):

1. the model is put in eval mode and moved to the device (in place, as ``nn.Module.to`` does),
   optionally to channels-last and through ``torch.compile``;
2. everything runs under ``torch.inference_mode()`` (and ``torch.autocast`` for bfloat16 or
   float16) with the thread count set by ``torch.set_num_threads`` and restored afterwards;
3. warm-up: at least ``warmup`` forwards and ``warmup_time`` seconds (the first forward on a
   CPU pays oneDNN's one-time setup, often 10-20x a steady forward; compilation happens here);
4. ``torch.utils.benchmark.Timer("model(x)", num_threads=threads).blocked_autorange`` with a
   minimum run time long enough for ``samples`` samples (estimated from the warm-up), topped up
   by further calls if the Timer chose multi-forward blocks. Each sample is the mean per
   forward of one Timer block (one forward for big models, more for tiny ones: the Timer grows
   the block until its own overhead is below 0.01%);
5. one extra forward measures peak memory (:mod:`attnprof.latency.memory`), outside the timing.

On CUDA the Timer synchronises the device around every block, so the samples are device time
of whole forwards, launch overhead included.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.benchmark import Timer

from attnprof.errors import AttnprofError
from attnprof.inputs import parse_input_chw
from attnprof.latency.environment import CpuContention, collect_environment
from attnprof.latency.memory import NOT_MEASURED, measure_peak_memory
from attnprof.latency.records import LatencyRecord
from attnprof.latency.settings import (
    RunSettings,
    check_positive,
    check_samples,
    resolve_settings,
)

# Defaults, chosen on a 2-core CPU: ResNet-50 at 224x224, batch 1, takes ~65 ms a forward with
# ~10% IQR, so one second of timing gives ~15 samples (a 95% order-statistic CI from ranks 4
# and 12 of 15) and the whole call, warm-up and memory included, takes 2-4 s. ``samples`` is a
# floor: a slow model (ResNet-50 batch 8, ~0.6 s a forward) gets its 10 samples in ~8 s.
DEFAULT_MIN_RUN_TIME = 1.0
DEFAULT_SAMPLES = 10
DEFAULT_WARMUP = 3
DEFAULT_WARMUP_TIME = 0.2
DEFAULT_MAX_RUN_TIME = 60.0


def make_input(
    spec: int | Sequence[int] | torch.Tensor, batch: int, settings: RunSettings, seed: int = 0
) -> torch.Tensor:
    """The input batch: random normal (seeded) for a size; a given tensor is repeated/used."""
    if isinstance(spec, torch.Tensor):
        if spec.dim() == 3:
            x = spec.unsqueeze(0).expand(batch, *spec.shape).contiguous()
        elif spec.dim() == 4:
            if spec.shape[0] != batch:
                raise AttnprofError(
                    f"the input tensor has batch {spec.shape[0]} but batch {batch} was asked; "
                    "pass a (C, H, W) tensor to vary the batch"
                )
            x = spec
        else:
            raise AttnprofError(
                f"input tensor must be (C, H, W) or (N, C, H, W), got shape {tuple(spec.shape)}"
            )
        x = x.detach().to(torch.float32) if not x.is_floating_point() else x.detach()
    else:
        c, h, w = parse_input_chw(spec)
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, c, h, w, generator=generator)
    x = x.to(settings.device)
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def input_shape_of(spec: int | Sequence[int] | torch.Tensor) -> tuple[int, int, int]:
    if isinstance(spec, torch.Tensor):
        return tuple(int(d) for d in spec.shape[-3:])  # type: ignore[return-value]
    return parse_input_chw(spec)


def prepare_model(model: nn.Module, settings: RunSettings, *, train: bool = False) -> nn.Module:
    """Eval mode (train mode for a training step), on the device, channels-last and compiled
    as asked (the module is moved in place; the compiled wrapper, when any, is returned)."""
    if not isinstance(model, nn.Module):
        raise AttnprofError(f"expected a torch.nn.Module, got {type(model).__name__}")
    model.train(train)
    model.to(settings.device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    if settings.compile:
        return torch.compile(model, mode=settings.compile_mode)
    return model


@contextlib.contextmanager
def run_context(settings: RunSettings, *, train: bool = False) -> Iterator[None]:
    """Threads set (and restored), inference mode (gradients on for a training step),
    autocast when the dtype asks for it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    # The Timer synchronises the *current* CUDA device: make it the measured one.
    on_device = (torch.cuda.device(settings.device) if settings.device.type == "cuda"
                 else contextlib.nullcontext())
    try:
        grad = torch.enable_grad() if train else torch.inference_mode()
        with on_device, grad:
            if settings.autocast:
                dtype = getattr(torch, settings.dtype)
                with torch.autocast(settings.device.type, dtype=dtype):
                    yield
            else:
                yield
    finally:
        torch.set_num_threads(previous)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class WarmUp:
    """What a warm-up did: ``count`` calls, the ``first`` one's and the ``last`` one's
    duration in seconds (the first holds one-time setup, and under compile the compilation)."""

    count: int
    first: float
    last: float


def warm_up(
    forward: Callable[[], object], settings: RunSettings, *, forwards: int = DEFAULT_WARMUP,
    seconds: float = DEFAULT_WARMUP_TIME, what: str = "model",
) -> WarmUp:
    """Run ``forward`` at least ``forwards`` times and ``seconds`` long.

    The last call's duration estimates one call for sizing the measurement. A compile
    failure surfaces here and is turned into an AttnprofError.
    """
    count, started, last, first = 0, time.perf_counter(), math.inf, math.inf
    while count < forwards or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        try:
            forward()
        except Exception as exc:
            if settings.compile and count == 0:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise AttnprofError(
                    f"torch.compile (mode {settings.compile_mode!r}) failed for {what} on "
                    f"{settings.device_label}: {first}; run without compile"
                ) from exc
            raise
        _synchronize(settings.device)
        last = time.perf_counter() - begin
        first = last if count == 0 else first
        count += 1
    return WarmUp(count, first, last)


def make_timer(module: nn.Module, x: torch.Tensor, settings: RunSettings, label: str) -> Timer:
    """The Timer of ``module(x)``: exactly the bare statement, with the thread count set."""
    return Timer(
        stmt="model(x)",
        globals={"model": module, "x": x},
        num_threads=settings.threads,
        label=label,
        description=settings.device_label,
    )


def make_step_timer(step: Callable[[], object], settings: RunSettings, label: str) -> Timer:
    """The Timer of one training step: ``step()``, with the thread count set."""
    return Timer(stmt="step()", globals={"step": step}, num_threads=settings.threads,
                 label=label, description=settings.device_label)


@dataclass(frozen=True)
class Samples:
    times_ms: list[float]
    forwards_per_sample: int
    forwards_timed: int


def collect_samples(
    timer: Timer, *, min_run_time: float, samples: int, estimate_s: float,
    max_run_time: float = DEFAULT_MAX_RUN_TIME, what: str = "model",
) -> Samples:
    """``blocked_autorange`` long enough for ``samples`` samples, topped up while short.

    ``estimate_s`` (one forward's duration from the warm-up) sizes the first run: at least
    ``min_run_time``, and long enough for ``samples`` forwards with a 30% margin. If the Timer
    chose blocks of several forwards and so returned fewer samples, further calls top the
    samples up; all of it within ``max_run_time`` seconds, else an AttnprofError.
    """
    wanted = min(max(min_run_time, 1.3 * samples * estimate_s), max_run_time)
    times: list[float] = []
    blocks: list[int] = []
    spent = 0.0
    while True:
        measurement = timer.blocked_autorange(min_run_time=wanted)
        times += [t * 1000.0 for t in measurement.times]
        blocks += [measurement.number_per_run] * len(measurement.raw_times)
        spent += sum(measurement.raw_times)
        if len(times) >= samples:
            break
        if spent >= max_run_time:
            raise AttnprofError(
                f"{what}: only {len(times)} samples within max_run_time={max_run_time:g} s "
                f"(wanted {samples}); raise max_run_time or lower samples"
            )
        per_block = sum(measurement.raw_times) / len(measurement.raw_times)
        wanted = min(1.3 * (samples - len(times)) * per_block, max_run_time - spent)
    timed = sum(blocks)
    blocks.sort()
    return Samples(times, blocks[len(blocks) // 2], timed)


def measure_latency(
    model: nn.Module,
    input_shape_or_tensor: int | Sequence[int] | torch.Tensor = 224,
    *,
    device: str | torch.device = "cpu",
    batch_sizes: Sequence[int] | None = None,
    threads: int | None = None,
    dtype: str | torch.dtype = "float32",
    channels_last: bool = False,
    compile: bool | str = False,
    min_run_time: float = DEFAULT_MIN_RUN_TIME,
    samples: int = DEFAULT_SAMPLES,
    warmup: int = DEFAULT_WARMUP,
    warmup_time: float = DEFAULT_WARMUP_TIME,
    max_run_time: float = DEFAULT_MAX_RUN_TIME,
    memory: bool = True,
    name: str | None = None,
    seed: int = 0,
) -> list[LatencyRecord]:
    """Forward latency of ``model`` in eval mode, one record per batch size.

    ``input_shape_or_tensor``: ``S``, ``(H, W)``, ``(C, H, W)`` (random normal input, seeded by
    ``seed``), a ``(C, H, W)`` tensor (repeated to each batch size) or an ``(N, C, H, W)`` tensor
    (then ``batch_sizes`` must be ``None`` or ``(N,)``). ``batch_sizes`` defaults to ``(1,)``.
    ``threads`` defaults to the current ``torch.get_num_threads()``; it is set for the whole
    measurement, passed to the Timer, recorded, and restored afterwards. ``dtype`` float32, or
    bfloat16/float16 under ``torch.autocast`` (float16 on CUDA only). ``compile``: False, True
    or a ``torch.compile`` mode. ``min_run_time`` seconds of timing per batch size, extended
    until at least ``samples`` samples; ``memory`` measures peak memory with one more forward.
    """
    settings = resolve_settings(device, threads, dtype, channels_last, compile)
    min_run_time = check_positive("min_run_time", min_run_time)
    max_run_time = check_positive("max_run_time", max_run_time)
    warmup_time = check_positive("warmup_time", warmup_time) if warmup_time else 0.0
    samples = check_samples(samples)
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 1:
        raise AttnprofError(f"warmup must be an integer >= 1, got {warmup!r}")
    if batch_sizes is None:
        given = input_shape_or_tensor
        is_batched = isinstance(given, torch.Tensor) and given.dim() == 4
        batch_sizes = (int(given.shape[0]),) if is_batched else (1,)
    batch_sizes = tuple(batch_sizes)
    if not batch_sizes or not all(
        isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in batch_sizes
    ):
        raise AttnprofError(f"batch_sizes must be positive integers, got {batch_sizes!r}")
    label = name or type(model).__name__
    shape = input_shape_of(input_shape_or_tensor)
    runnable = prepare_model(model, settings)
    records = []
    for batch in batch_sizes:
        x = make_input(input_shape_or_tensor, batch, settings, seed)
        started = time.perf_counter()
        with run_context(settings):
            warmed = warm_up(lambda x=x: runnable(x), settings, forwards=warmup,
                             seconds=warmup_time, what=label)
            count, estimate = warmed.count, warmed.last
            timer = make_timer(runnable, x, settings, label)
            with CpuContention() as contention:
                collected = collect_samples(timer, min_run_time=min_run_time, samples=samples,
                                            estimate_s=estimate, max_run_time=max_run_time,
                                            what=label)
            peak = None
            if memory:
                peak = measure_peak_memory(lambda x=x: runnable(x), model, x, settings.device)
            environment = collect_environment(settings.device)
        records.append(LatencyRecord.from_times(
            collected.times_ms,
            batch=batch,
            model=label,
            input_shape=shape,
            peak_mem_bytes=peak.peak_bytes if peak else None,
            peak_mem_kind=peak.kind if peak else NOT_MEASURED,
            activation_peak_bytes=peak.activation_bytes if peak else None,
            forwards_per_sample=collected.forwards_per_sample,
            forwards_timed=collected.forwards_timed,
            method=f"Timer.blocked_autorange(min_run_time>={min_run_time:g}s)",
            warmup_forwards=count,
            wall_s=time.perf_counter() - started,
            other_cpu_load=contention.other_cpus,
            environment=environment,
            first_call_s=(warmed.first,),
            **settings.meta(),
        ))
    return records
