"""Paired, interleaved latency comparison of the variants of one model.

Caveats first: two models timed one after the other see different machines: clock frequency,
other processes and memory state drift over seconds, and on a shared 2-core CPU the drift is as
large as the effect being measured. So the variants are timed in *rounds*: in each round every
model gets one sample (one ``Timer.blocked_autorange`` of ``sample_time`` seconds, its mean per
forward), and each variant is compared with the baseline *within the round*. Drift slower than
a round cancels in the ratio. The per-round ratios are summarised by their median and the
distribution-free order-statistic interval of that median (:mod:`attnprof.latency.stats`);
``delta_pct = 100 * (median ratio - 1)``.

The order within a round is shuffled (seeded, recorded) so that no model always runs right
after the same neighbour or first in the round. Each Timer call starts with its block-size
estimate, which runs the model once untimed: a re-warm after the previous model evicted its
weights from the caches.

A shared machine is the enemy: on a 2-core CPU, another process taking one core stalls every
OpenMP barrier of a 2-thread forward, and a sample can grow tenfold. Each round's contention
(CPUs busy with other work, :class:`~attnprof.latency.environment.CpuContention`) is recorded;
with ``max_other_cpus`` a contended round is re-run instead of kept.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from attnprof.errors import AttnprofError, choices
from attnprof.latency.environment import CpuContention, collect_environment
from attnprof.latency.memory import NOT_MEASURED, measure_peak_memory
from attnprof.latency.records import (
    CONTENDED_OTHER_CPUS,
    DiscardedRound,
    LatencyRecord,
    PairedComparison,
    PairedResult,
)
from attnprof.latency.settings import check_positive, check_samples, resolve_settings
from attnprof.latency.timing import (
    DEFAULT_WARMUP,
    DEFAULT_WARMUP_TIME,
    input_shape_of,
    make_input,
    make_timer,
    prepare_model,
    run_context,
    warm_up,
)

# Defaults, chosen on a 2-core CPU with ResNet-50 at 224x224, batch 1 (~65-80 ms a forward):
# a 0.25 s sample is 3-4 timed forwards plus the untimed re-warm; 20 rounds give a 95% interval
# from ranks 6 and 15 of the ratios, about +-3 to 5 points wide. Four variants take 35-40 s on
# an idle machine. Run-to-run spread on that machine (SGE, SA: several points) exceeds what one
# run's interval shows: quote one run's interval as within-run precision only.
DEFAULT_ROUNDS = 20
DEFAULT_SAMPLE_TIME = 0.25

ModelOrFactory = nn.Module | Callable[[], nn.Module]


def backbone_variants(
    backbone: str, attentions: Sequence[str] = ("none", "se", "sge", "sa"), head: str = "fc"
) -> dict[str, Callable[[], nn.Module]]:
    """Factories ``{attention: () -> build_model(backbone, attention, head)}`` for pairing."""
    from attnprof.attention import get_attention_spec
    from attnprof.backbones import build_model

    for attention in attentions:
        get_attention_spec(attention)  # unknown names fail now, before any model is built
    return {
        attention: (lambda a=attention: build_model(backbone, a, head=head))
        for attention in attentions
    }


def _materialise(name: str, item: ModelOrFactory) -> nn.Module:
    if isinstance(item, nn.Module):
        return item
    if callable(item):
        model = item()
        if not isinstance(model, nn.Module):
            raise AttnprofError(
                f"variant {name!r}: its factory returned {type(model).__name__}, not an nn.Module"
            )
        return model
    raise AttnprofError(
        f"variant {name!r} must be an nn.Module or a factory returning one, "
        f"got {type(item).__name__}"
    )


def paired_latency(
    variants: Mapping[str, ModelOrFactory],
    input_shape_or_tensor: int | Sequence[int] | torch.Tensor = 224,
    *,
    baseline: str = "none",
    rounds: int = DEFAULT_ROUNDS,
    batch: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = "float32",
    channels_last: bool = False,
    compile: bool | str = False,
    sample_time: float = DEFAULT_SAMPLE_TIME,
    warmup: int = DEFAULT_WARMUP,
    warmup_time: float = DEFAULT_WARMUP_TIME,
    shuffle: bool = True,
    seed: int | None = 0,
    memory: bool = True,
    max_other_cpus: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PairedComparison:
    """Time ``variants`` (name -> model or zero-argument factory) in interleaved rounds.

    Every variant is compared with ``baseline`` (one of the names) round by round; see the
    module docstring for the design. All models are resident on the device together (they are
    moved there in place). ``rounds`` >= 6 (the fewest for a 95% interval); ``sample_time`` is
    the Timer's ``min_run_time`` for one sample; ``shuffle`` randomises the order within each
    round with ``random.Random(seed)``. ``progress(done, rounds)`` is called after each round.

    ``max_other_cpus`` (off by default) re-runs a round during which other work kept more than
    that many logical CPUs busy (:class:`~attnprof.latency.environment.CpuContention`): a rule
    fixed in advance on a measurement independent of the timings, so it cannot favour a
    variant. At most ``rounds`` rounds are re-run; the discarded ones stay in the result.
    The other settings are those of :func:`~attnprof.latency.timing.measure_latency`.
    """
    if not isinstance(variants, Mapping) or len(variants) < 2:
        raise AttnprofError("paired_latency needs a mapping of at least two named variants")
    names = list(variants)
    if baseline not in variants:
        raise AttnprofError(
            f"baseline {baseline!r} is not among the variants; valid: {choices(names)}"
        )
    rounds = check_samples(rounds, "rounds")
    if max_other_cpus is not None:
        max_other_cpus = check_positive("max_other_cpus", max_other_cpus)
    sample_time = check_positive("sample_time", sample_time)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise AttnprofError(f"batch must be a positive integer, got {batch!r}")
    settings = resolve_settings(device, threads, dtype, channels_last, compile)
    shape = input_shape_of(input_shape_or_tensor)
    x = make_input(input_shape_or_tensor, batch, settings)

    models = {name: _materialise(name, variants[name]) for name in names}
    runnables = {name: prepare_model(model, settings) for name, model in models.items()}
    timers = {name: make_timer(runnables[name], x, settings, name) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    blocks: dict[str, list[int]] = {name: [] for name in names}
    warmups: dict[str, int] = {}
    order: list[tuple[str, ...]] = []
    round_load: list[float | None] = []
    discarded: list[DiscardedRound] = []
    rng = random.Random(seed)
    notes = []
    if settings.threads > (os.cpu_count() or settings.threads):
        notes.append(f"{settings.threads} threads exceed the {os.cpu_count()} logical CPUs")

    started = time.perf_counter()
    with run_context(settings):
        for name in names:
            warmups[name], _ = warm_up(lambda m=runnables[name]: m(x), settings, forwards=warmup,
                                       seconds=warmup_time, what=name)
        with CpuContention() as contention:
            while len(order) < rounds:
                sequence = list(names)
                if shuffle:
                    rng.shuffle(sequence)
                this_ms: dict[str, float] = {}
                this_blocks: dict[str, int] = {}
                with CpuContention() as this_round:
                    for name in sequence:
                        measurement = timers[name].blocked_autorange(min_run_time=sample_time)
                        forwards = measurement.number_per_run * len(measurement.raw_times)
                        this_ms[name] = 1000.0 * sum(measurement.raw_times) / forwards
                        this_blocks[name] = forwards
                load = this_round.other_cpus
                if (max_other_cpus is not None and load is not None and load > max_other_cpus
                        and len(discarded) < rounds):
                    discarded.append(DiscardedRound(tuple(sequence), load, this_ms))
                    continue
                order.append(tuple(sequence))
                round_load.append(load)
                for name in names:
                    samples[name].append(this_ms[name])
                    blocks[name].append(this_blocks[name])
                if progress is not None:
                    progress(len(order), rounds)
        timing_wall = time.perf_counter() - started
        peaks = {
            name: measure_peak_memory(lambda m=runnables[name]: m(x), models[name], x,
                                      settings.device)
            for name in names
        } if memory else {}
        environment = collect_environment(settings.device)

    def record(name: str) -> LatencyRecord:
        peak = peaks.get(name)
        per_sample = sorted(blocks[name])
        return LatencyRecord.from_times(
            samples[name],
            batch=batch,
            model=name,
            input_shape=shape,
            peak_mem_bytes=peak.peak_bytes if peak else None,
            peak_mem_kind=peak.kind if peak else NOT_MEASURED,
            activation_peak_bytes=peak.activation_bytes if peak else None,
            forwards_per_sample=per_sample[len(per_sample) // 2],
            forwards_timed=sum(blocks[name]),
            method=f"paired-interleaved(rounds={rounds}, sample_time={sample_time:g}s)",
            warmup_forwards=warmups[name],
            wall_s=timing_wall,
            other_cpu_load=contention.other_cpus,
            environment=environment,
            **settings.meta(),
        )

    if discarded:
        notes.append(
            f"{len(discarded)} round(s) re-run because other work kept more than "
            f"{max_other_cpus:g} logical CPUs busy"
            + (" (re-run budget exhausted: later contended rounds were kept)"
               if len(discarded) >= rounds else "")
        )
    load = contention.other_cpus
    if load is not None and load > CONTENDED_OTHER_CPUS:
        notes.append(
            f"other work kept {load:.2f} logical CPUs busy on average during the rounds "
            f"({os.cpu_count()} CPUs, {settings.threads} threads measured): the timings were "
            "contended; the paired ratios cancel slow drift, not fast interference"
        )
    base_record = record(baseline)
    results = tuple(
        PairedResult.from_samples(name, baseline, samples[name], samples[baseline], record(name))
        for name in names
        if name != baseline
    )
    return PairedComparison(
        baseline=baseline,
        baseline_record=base_record,
        results=results,
        rounds=rounds,
        shuffle=shuffle,
        seed=seed if shuffle else None,
        order=tuple(order),
        sample_time_s=sample_time,
        wall_s=time.perf_counter() - started,
        environment=environment,
        notes=tuple(notes),
        round_other_cpu_load=tuple(round_load),
        max_other_cpus=max_other_cpus,
        discarded_rounds=tuple(discarded),
    )
