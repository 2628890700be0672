"""What one process does in a paired comparison: build, warm up until settled, take rounds.

Caveats first: everything here happens inside one process, so its rounds share that process's
memory layout, allocator state and thread placement; a second process of the same code can sit
several points away. That is why :mod:`attnprof.latency.paired` runs this in several fresh
processes and takes its interval across them. Only with ``processes=1`` do the rounds below
become the unit of the interval, and then it describes this process only.

A *round* gives every model one sample: one ``Timer.blocked_autorange`` of ``sample_time``
seconds, its mean per call. A call is one forward, or for ``pass_name="train"`` one training
step (:class:`attnprof.passes.TrainStep`: train mode, forward, loss, backward, the optional
optimizer step); each model's first call is timed apart and recorded (under compile it holds
the compilation), never mixed into the samples. The order within a round is shuffled (seeded,
recorded) so no model always follows the same neighbour; each Timer call starts with one
untimed call (its block-size estimate), a re-warm after the previous model evicted the caches.

Warm-up, a stated stopping rule: after one forward per model (oneDNN's first-call setup,
compilation), *warm-up rounds*, identical to measured rounds and discarded, run until no model
is more than ``settle_tolerance`` faster than in its best earlier warm-up round: timings only
fall while something is still warming (allocator, caches, lazy initialisation), and the noise
of a settled machine is mostly on the slow side. At least :data:`MIN_WARMUP_ROUNDS` rounds run,
at most ``max_warmup_rounds``; whether the rule was met is recorded.

Rounds disturbed by other load: each round's contention (CPUs busy with other work,
:class:`~attnprof.latency.environment.CpuContention`) is recorded; with ``max_other_cpus`` a
contended round is re-run instead of kept, at most ``rounds`` times.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import nn

from attnprof.errors import AttnprofError
from attnprof.latency.defaults import (
    DEFAULT_MAX_WARMUP_ROUNDS,
    DEFAULT_SETTLE_TOLERANCE,
    MIN_WARMUP_ROUNDS,
)
from attnprof.latency.environment import CpuContention
from attnprof.latency.memory import measure_peak_memory
from attnprof.latency.records import DiscardedRound, ProcessRun
from attnprof.latency.settings import resolve_settings
from attnprof.latency.timing import (
    make_input,
    make_step_timer,
    make_timer,
    prepare_model,
    run_context,
    warm_up,
)
from attnprof.passes import TrainStep

ModelOrFactory = nn.Module | Callable[[], nn.Module]


@dataclass(frozen=True)
class RoundsJob:
    """Everything one process needs to take its rounds; picklable when its variants are.

    ``variants`` maps names to models or zero-argument factories (the baseline among them);
    ``settings`` are the arguments of :func:`~attnprof.latency.settings.resolve_settings`,
    resolved again in the process that runs the job.
    """

    variants: Mapping[str, ModelOrFactory]
    input_spec: object
    batch: int
    settings: dict
    rounds: int
    sample_time: float
    seed: int | None
    index: int = 0
    shuffle: bool = True
    warmup: int = 1
    warmup_time: float = 0.0
    max_warmup_rounds: int = DEFAULT_MAX_WARMUP_ROUNDS
    settle_tolerance: float = DEFAULT_SETTLE_TOLERANCE
    max_other_cpus: float | None = None
    memory: bool = False
    pass_name: str = "inference"
    optimizer: str = "none"


def materialise(name: str, item: ModelOrFactory) -> nn.Module:
    """The model itself, or what its factory returns (refused unless an ``nn.Module``)."""
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


def settled(latest: Mapping[str, float], best: Mapping[str, float], tolerance: float) -> bool:
    """The stopping rule: no model ran more than ``tolerance`` faster than its best so far."""
    return all(latest[name] >= (1.0 - tolerance) * best[name] for name in latest)


def run_rounds(job: RoundsJob, progress: Callable[[int, int], None] | None = None) -> ProcessRun:
    """Build the job's models here, warm them up until settled, and take ``job.rounds`` rounds.

    ``progress(done, rounds)`` is called after each measured round. Peak memory is measured
    (one more forward per model, outside the rounds) when ``job.memory`` is set.
    """
    started = time.perf_counter()
    settings = resolve_settings(**job.settings)
    names = list(job.variants)
    # The measured rounds' order depends on the seed alone, whatever the warm-up took.
    rounds_rng = random.Random(job.seed)
    warmup_rng = random.Random(None if job.seed is None else f"{job.seed}:warm-up")
    build_order = list(names)
    if job.shuffle:  # the build order sets the memory layout: vary it with the process
        warmup_rng.shuffle(build_order)
    train = job.pass_name == "train"
    models = {name: materialise(name, job.variants[name]) for name in build_order}
    runnables = {name: prepare_model(models[name], settings, train=train) for name in names}
    x = make_input(job.input_spec, job.batch, settings)
    if train:
        steps = {name: TrainStep(models[name], runnables[name], x, job.optimizer)
                 for name in names}
        timers = {name: make_step_timer(steps[name], settings, name) for name in names}
    else:
        steps = {name: (lambda m=runnables[name]: m(x)) for name in names}
        timers = {name: make_timer(runnables[name], x, settings, name) for name in names}

    def one_round(rng: random.Random
                  ) -> tuple[tuple[str, ...], dict[str, float], dict[str, int], float | None]:
        sequence = list(names)
        if job.shuffle:
            rng.shuffle(sequence)
        times: dict[str, float] = {}
        blocks: dict[str, int] = {}
        with CpuContention() as this_round:
            for name in sequence:
                measurement = timers[name].blocked_autorange(min_run_time=job.sample_time)
                forwards = measurement.number_per_run * len(measurement.raw_times)
                times[name] = 1000.0 * sum(measurement.raw_times) / forwards
                blocks[name] = forwards
        return tuple(sequence), times, blocks, this_round.other_cpus

    samples: dict[str, list[float]] = {name: [] for name in names}
    forwards: dict[str, list[int]] = {name: [] for name in names}
    order: list[tuple[str, ...]] = []
    loads: list[float | None] = []
    discarded: list[DiscardedRound] = []
    with run_context(settings, train=train):
        warmed = {
            name: warm_up(steps[name], settings, forwards=job.warmup,
                          seconds=job.warmup_time, what=name)
            for name in names
        }
        best = dict.fromkeys(names, math.inf)
        warmup_rounds, is_settled = 0, False
        while warmup_rounds < max(job.max_warmup_rounds, MIN_WARMUP_ROUNDS):
            _, times, _, _ = one_round(warmup_rng)
            warmup_rounds += 1
            is_settled = (warmup_rounds >= MIN_WARMUP_ROUNDS
                          and settled(times, best, job.settle_tolerance))
            best = {name: min(best[name], times[name]) for name in names}
            if is_settled:
                break
        with CpuContention() as contention:
            while len(order) < job.rounds:
                sequence, times, blocks, load = one_round(rounds_rng)
                if (job.max_other_cpus is not None and load is not None
                        and load > job.max_other_cpus and len(discarded) < job.rounds):
                    discarded.append(DiscardedRound(sequence, load, times))
                    continue
                order.append(sequence)
                loads.append(load)
                for name in names:
                    samples[name].append(times[name])
                    forwards[name].append(blocks[name])
                if progress is not None:
                    progress(len(order), job.rounds)
        peaks = {}
        if job.memory:
            for name in names:
                peak = measure_peak_memory(steps[name], models[name], x, settings.device)
                peaks[name] = (peak.peak_bytes, peak.activation_bytes, peak.kind)
    return ProcessRun(
        index=job.index,
        seed=job.seed,
        warmup_forwards={name: warmed[name].count for name in names},
        first_call_s={name: warmed[name].first for name in names},
        warmup_rounds=warmup_rounds,
        settled=is_settled,
        samples_ms={name: tuple(values) for name, values in samples.items()},
        forwards={name: tuple(values) for name, values in forwards.items()},
        order=tuple(order),
        round_other_cpu_load=tuple(loads),
        discarded_rounds=tuple(discarded),
        other_cpu_load=contention.other_cpus,
        peak_memory=peaks,
        wall_s=time.perf_counter() - started,
    )
