"""Which attention module costs most: each distinct module timed alone on its feature map.

Caveats first: a module timed alone runs on a repeated input that stays in cache, without the
conv before it and the add after it; inside the network its input has just been written by the
BatchNorm and its output is read by the add. So the per-module numbers rank the modules and the
stages (where is the cost?) but need not add up to the whole-model difference, which only a
paired comparison of whole models measures (:mod:`attnprof.latency.paired`).

How: forward hooks on the attention modules record, during one real forward of the model, the
shape, dtype and memory layout of each module's input and how often it is called. Modules of
the same configuration that see the same input (the blocks of one stage) form one group; the
first of each group is timed with ``Timer.blocked_autorange`` on a random tensor of that shape,
under the same settings (threads, inference mode, autocast) as the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.errors import AttnprofError
from attnprof.latency import stats
from attnprof.latency.records import ModuleTiming
from attnprof.latency.settings import check_positive, check_samples, resolve_settings
from attnprof.latency.timing import (
    DEFAULT_SAMPLES,
    DEFAULT_WARMUP,
    collect_samples,
    make_input,
    make_timer,
    prepare_model,
    run_context,
    warm_up,
)

DEFAULT_MODULE_MIN_RUN_TIME = 0.2
_STAGE = re.compile(r"^(?:layer|attention)(\d+)(?:\.|$)")


@dataclass
class _Seen:
    names: list[str]
    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dtype: torch.dtype
    channels_last: bool
    stage: int | None
    calls: int = 0


def _stage_of(name: str) -> int | None:
    match = _STAGE.match(name)
    return int(match.group(1)) if match else None


def _shape_of(value) -> tuple[int, ...]:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return tuple(value[0].shape)
    return ()


def _capture(modules: Sequence[tuple[str, nn.Module]], forward) -> list[_Seen]:
    groups: dict[tuple, _Seen] = {}
    problems: list[str] = []

    def hook_for(name: str):
        def hook(module, args, output):
            if not args or not isinstance(args[0], torch.Tensor):
                problems.append(name)
                return
            x, stage = args[0], _stage_of(name)
            layout = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last)
            key = (type(module).__qualname__, repr(module), tuple(x.shape), x.dtype, layout, stage)
            if key not in groups:  # in the order first seen: forward order
                groups[key] = _Seen([], module, tuple(x.shape), _shape_of(output), x.dtype,
                                    layout, stage)
            seen = groups[key]
            if name not in seen.names:
                seen.names.append(name)
            seen.calls += 1

        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in modules]
    try:
        forward()
    finally:
        for handle in handles:
            handle.remove()
    if problems:
        raise AttnprofError(
            f"cannot time attention modules whose first argument is not a tensor: "
            f"{', '.join(sorted(set(problems)))}"
        )
    return list(groups.values())


def time_attention_modules(
    model: nn.Module,
    input_hw: int | Sequence[int] = 224,
    batch: int = 1,
    device: str | torch.device = "cpu",
    *,
    threads: int | None = None,
    dtype: str | torch.dtype = "float32",
    channels_last: bool = False,
    min_run_time: float = DEFAULT_MODULE_MIN_RUN_TIME,
    samples: int = DEFAULT_SAMPLES,
    warmup: int = DEFAULT_WARMUP,
    modules: Sequence[tuple[str, nn.Module]] | None = None,
    time_model: bool = True,
    seed: int = 0,
) -> list[ModuleTiming]:
    """Time each distinct attention module of ``model`` on the feature map it sees.

    ``modules`` defaults to ``model.attention_modules()`` (attnprof's ResNets); pass
    ``[(name, module), ...]`` for another model. ``input_hw`` is ``S``, ``(H, W)`` or
    ``(C, H, W)``. With ``time_model`` the whole model is timed too (same settings), so each
    entry can say what share of a forward its modules take. Entries come in forward order;
    sort by ``ms_per_forward`` to find the most expensive stage. A model without attention
    modules gives an empty list.
    """
    settings = resolve_settings(device, threads, dtype, channels_last, False)
    min_run_time = check_positive("min_run_time", min_run_time)
    samples = check_samples(samples)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise AttnprofError(f"batch must be a positive integer, got {batch!r}")
    if modules is None:
        if not hasattr(model, "attention_modules"):
            raise AttnprofError(
                f"{type(model).__name__} has no attention_modules(); pass "
                "modules=[(name, module), ...] to say which modules to time"
            )
        modules = model.attention_modules()
    modules = list(modules)
    if not modules:
        return []
    runnable = prepare_model(model, settings)
    x = make_input(input_hw, batch, settings, seed)
    generator = torch.Generator().manual_seed(seed)
    results = []
    with run_context(settings):
        groups = _capture(modules, lambda: runnable(x))
        model_ms = None
        if time_model:
            estimate = warm_up(lambda: runnable(x), settings, forwards=warmup).last
            whole = collect_samples(make_timer(runnable, x, settings, "model"),
                                    min_run_time=min_run_time, samples=samples,
                                    estimate_s=estimate)
            model_ms = stats.median(whole.times_ms)
        for group in groups:
            feature = torch.randn(group.input_shape, generator=generator).to(
                device=settings.device, dtype=group.dtype)
            if group.channels_last:
                feature = feature.contiguous(memory_format=torch.channels_last)
            module = group.module
            estimate = warm_up(lambda m=module, f=feature: m(f), settings,
                               forwards=warmup, seconds=0.05).last
            collected = collect_samples(make_timer(module, feature, settings, group.names[0]),
                                        min_run_time=min_run_time, samples=samples,
                                        estimate_s=estimate, what=group.names[0])
            ci = stats.median_ci(collected.times_ms)
            per_call = stats.median(collected.times_ms)
            per_forward = per_call * group.calls
            results.append(ModuleTiming(
                name=group.names[0],
                names=tuple(group.names),
                module=type(module).__name__,
                stage=group.stage,
                input_shape=group.input_shape,
                output_shape=group.output_shape,
                input_dtype=str(group.dtype).removeprefix("torch."),
                calls_per_forward=group.calls,
                ms_per_call=per_call,
                iqr_ms=stats.iqr(collected.times_ms),
                ci95_ms=(ci.lo, ci.hi),
                ci_level=ci.coverage,
                samples=len(collected.times_ms),
                times_ms=tuple(collected.times_ms),
                ms_per_forward=per_forward,
                model_ms=model_ms,
                pct_of_forward=100.0 * per_forward / model_ms if model_ms else None,
                device=settings.device_label,
                threads=settings.threads,
                batch=batch,
                dtype=settings.dtype,
                channels_last=settings.channels_last,
            ))
    return results
