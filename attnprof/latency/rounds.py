"""What one process does: build its arms, warm them up until settled, take rounds.

Caveats first: everything here happens inside one process, so its rounds share that process's
memory layout, allocator state and thread placement; a second process of the same code can sit
several points away. That is why :mod:`attnprof.latency.schedule` runs this in several fresh
processes and takes its intervals across them. Only with ``processes=1`` do the rounds below
become the unit of the interval, and then it describes this process only.

An *arm* is one variant in one pass and mode (:func:`~attnprof.latency.records.arm_key`). A
*sample* is back-to-back calls of one arm for at least ``sample_time`` seconds (at least one
call), their mean per call (:func:`cpu_sample`; CUDA events on a GPU,
:func:`cuda_event_sample`). A call is one forward, or for the ``train`` pass one training step
(:class:`attnprof.passes.TrainStep`), as the arm's mode runs it (:mod:`attnprof.latency.modes`).
A *round* is bracketed (:mod:`attnprof.latency.brackets`): every variant's sample sits between
two samples of its condition's baseline, and its ratio is taken against those two, so the
machine's drift over seconds cancels. The order of the conditions and of the variants within
each is shuffled (seeded by the process index, recorded), so no variant always comes first or
last. Each arm's first call is timed apart and recorded, never mixed into the samples.

The same model in every process: the input and each variant's weights are drawn from seeds
fixed by the spec, so processes differ only in what a fresh process varies (memory layout,
allocator history, thread placement, the machine's moment), never in the data.

Warm-up, a stated stopping rule: after one call per arm, *warm-up rounds*, identical to
measured rounds and discarded, run until no arm is more than ``settle_tolerance`` faster than
in its best earlier warm-up round: timings only fall while something is still warming
(allocator, caches, lazy initialisation). At least :data:`MIN_WARMUP_ROUNDS` rounds run, at
most ``max_warmup_rounds``; whether the rule was met is recorded.

Rounds disturbed by other load: each round's contention (CPUs busy with other work,
:class:`~attnprof.latency.environment.CpuContention`) is recorded; with ``max_other_cpus`` a
contended round is re-run instead of kept, at most ``rounds`` times.
"""

from __future__ import annotations

import contextlib
import math
import random
import resource
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from attnprof.errors import AttnprofError
from attnprof.latency import workers
from attnprof.latency.brackets import BracketedRound, BracketPlan, bracket_plan, bracketed_sequence
from attnprof.latency.defaults import MIN_WARMUP_ROUNDS
from attnprof.latency.environment import CpuContention
from attnprof.latency.memory import measure_peak_memory
from attnprof.latency.modes import MODES, Built, LoadRequest
from attnprof.latency.records import DiscardedRound, ProcessRun, arm_key
from attnprof.latency.settings import RunSettings
from attnprof.latency.spec import Condition, TimingSpec
from attnprof.latency.timing import make_input, prepare_model, warm_up

ModelOrFactory = nn.Module | Callable[[], nn.Module]


@dataclass(frozen=True)
class ProcessJob:
    """Everything one process needs to take its rounds; picklable when its variants are.

    ``variants`` maps names to models or zero-argument factories (``baseline`` among them);
    ``arms`` the (condition, variant) pairs this process times, each condition's baseline
    among them; ``built`` what each arm's build left, by arm key (modes that build once per
    run).
    """

    spec: TimingSpec
    variants: Mapping[str, ModelOrFactory]
    arms: tuple[tuple[Condition, str], ...]
    baseline: str
    built: Mapping[str, Built] = field(default_factory=dict)
    index: int = 0
    memory: bool = False

    @property
    def seed(self) -> int:
        return self.spec.seed + self.index

    def brackets(self) -> BracketPlan:
        """Each condition's baseline and the variants it brackets, by arm key (a condition
        whose baseline the job does not time is refused)."""
        groups: dict[str, list[str]] = {}
        with_baseline: set[str] = set()
        for condition, variant in self.arms:
            variants = groups.setdefault(condition.label, [])
            if variant == self.baseline:
                with_baseline.add(condition.label)
            else:
                variants.append(arm_key(condition.label, variant))
        missing = [label for label in groups if label not in with_baseline]
        if missing:
            raise AttnprofError(f"conditions {missing} have no baseline {self.baseline!r} "
                                "among the process's arms")
        return bracket_plan([(arm_key(label, self.baseline), variants)
                             for label, variants in groups.items()])


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


def seeded_build(name: str, item: ModelOrFactory, seed: int) -> nn.Module:
    """The variant built with weights drawn from a seed of its own (the same in every
    process); the global RNG is restored afterwards."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63)
        return materialise(name, item)
    finally:
        torch.random.set_rng_state(state)


def settings_of(spec: TimingSpec, mode: str = "eager") -> RunSettings:
    """The resolved settings the timing helpers take (the spec was validated already)."""
    return RunSettings(torch.device(spec.device), spec.threads, spec.dtype, spec.channels_last,
                       spec.compile_mode if mode == "compile" else None)


def settled(latest: Mapping[str, float], best: Mapping[str, float], tolerance: float) -> bool:
    """The stopping rule: no arm ran more than ``tolerance`` faster than its best so far."""
    return all(latest[name] >= (1.0 - tolerance) * best[name] for name in latest)


def _guarded(call: Callable[[], object], train: bool, spec: TimingSpec,
             device: torch.device) -> Callable[[], object]:
    """``call`` under its pass's grad mode and the spec's autocast, entered per call: arms of
    both passes share one process."""
    autocast = spec.dtype != "float32"
    dtype = getattr(torch, spec.dtype)

    def run() -> object:
        grad = torch.enable_grad() if train else torch.inference_mode()
        cast = (torch.autocast(device.type, dtype=dtype) if autocast
                else contextlib.nullcontext())
        with grad, cast:
            return call()

    return run


CUDA_CACHE_STATE = ("CUDA events around back-to-back calls on a warm L2 cache (no flush "
                    "between calls), the device synchronised before and after each sample")
"""What a CUDA sample measures, as the report states it."""


def cuda_event_sample(call: Callable[[], object], seconds: float, device: torch.device
                      ) -> tuple[float, int]:
    """Milliseconds per call on ``device`` and the calls timed: one call sizes the block, then
    ``seconds`` worth of back-to-back calls between two CUDA events (device time, launch
    overhead included; the L2 cache stays warm: :data:`CUDA_CACHE_STATE`)."""
    with torch.cuda.device(device):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        call()
        end.record()
        end.synchronize()
        count = max(1, int(seconds * 1000.0 / max(start.elapsed_time(end), 1e-3)))
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(count):
            call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / count, count


def cpu_sample(call: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Milliseconds per call and the calls timed: back-to-back calls, at least one, until
    ``seconds`` have passed, timed as one block (no untimed call first: the sample starts in
    the cache state the previous arm left, as every sample of the round does). Python's
    garbage collector stays on, as it is in a served model."""
    count, started = 0, time.perf_counter()
    while True:
        call()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return 1000.0 * elapsed / count, count


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mean_load(kept: list[float | None], whole: float | None) -> float | None:
    """The other CPUs' load over the kept rounds (the whole loop's when a round did not say)."""
    known = [load for load in kept if load is not None]
    return sum(known) / len(known) if known and len(known) == len(kept) else whole


def run_process(job: ProcessJob, progress: Callable[[int, int], None] | None = None
                ) -> ProcessRun:
    """Build the job's arms here, warm them up until settled, and take ``spec.rounds`` rounds.

    ``progress(done, rounds)`` is called after each measured round. Peak memory is measured
    (one more call per arm, outside the rounds) when ``job.memory`` is set.
    """
    started = time.perf_counter()
    spec = job.spec
    allocator = workers.PREPARED  # set before the job arrived, in a fresh worker only
    settings = settings_of(spec)
    device = settings.device
    rounds_rng = random.Random(job.seed)
    warmup_rng = random.Random(f"{job.seed}:warm-up")
    # Every variant of the group is built in every process, timed or not: the models a
    # process holds set its memory layout and allocator history, which stay alike from the
    # first process to the last while decided arms leave the rounds.
    passes = list(dict.fromkeys(condition.pass_name for condition in spec.conditions))
    build_order = [(variant, pass_name) for variant in job.variants for pass_name in passes]
    if spec.shuffle:  # the build order sets the memory layout: vary it with the process
        warmup_rng.shuffle(build_order)
    models = {}
    for variant, pass_name in build_order:
        model = seeded_build(variant, job.variants[variant], spec.seed)
        models[variant, pass_name] = prepare_model(model, settings, train=pass_name == "train")
    x = make_input(spec.input_shape, spec.batch, settings, spec.seed)
    calls: dict[str, Callable[[], object]] = {}
    for condition, variant in job.arms:
        key = arm_key(condition.label, variant)
        hooks = MODES[condition.mode].load_hooks()
        train = condition.pass_name == "train"
        call = hooks.load(LoadRequest(x, spec.threads, models[variant, condition.pass_name],
                                      job.built.get(key), condition.pass_name, spec.compile_mode,
                                      spec.optimizer))
        calls[key] = _guarded(call, train, spec, device)
    keys = list(calls)
    brackets = job.brackets()
    reference = brackets.reference
    if device.type == "cuda":
        def sample(key: str) -> tuple[float, int]:
            return cuda_event_sample(calls[key], spec.sample_time, device)
    else:
        def sample(key: str) -> tuple[float, int]:
            return cpu_sample(calls[key], spec.sample_time)

    def one_round(rng: random.Random) -> BracketedRound:
        sequence = bracketed_sequence(brackets, rng if spec.shuffle else None)
        with CpuContention() as this_round:
            taken = [sample(key) for key in sequence]
        return BracketedRound.of(sequence, taken, reference, this_round.other_cpus)

    samples: dict[str, list[float]] = {key: [] for key in keys}
    references: dict[str, list[float]] = {key: [] for key in keys if key in reference}
    forwards: dict[str, list[int]] = {key: [] for key in keys}
    order: list[tuple[str, ...]] = []
    loads: list[float | None] = []
    discarded: list[DiscardedRound] = []
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        warmed = {key: warm_up(calls[key], settings, forwards=1, seconds=0.0, what=key)
                  for key in keys}
        best = dict.fromkeys(keys, math.inf)
        warmup_rounds, is_settled = 0, False
        while warmup_rounds < max(spec.max_warmup_rounds, MIN_WARMUP_ROUNDS):
            times = one_round(warmup_rng).times
            warmup_rounds += 1
            is_settled = (warmup_rounds >= MIN_WARMUP_ROUNDS
                          and settled(times, best, spec.settle_tolerance))
            best = {key: min(best[key], times[key]) for key in keys}
            if is_settled:
                break
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        with CpuContention() as contention:
            while len(order) < spec.rounds:
                taken = one_round(rounds_rng)
                load = taken.other_cpus
                if (spec.max_other_cpus is not None and load is not None
                        and load > spec.max_other_cpus and len(discarded) < spec.rounds):
                    discarded.append(DiscardedRound(taken.sequence, load, taken.times))
                    continue
                order.append(taken.sequence)
                loads.append(load)
                for key in keys:
                    samples[key].append(taken.times[key])
                    forwards[key].append(taken.calls[key])
                for key in references:
                    references[key].append(taken.references[key])
                if progress is not None:
                    progress(len(order), spec.rounds)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
        peaks = {}
        if job.memory:
            for condition, variant in job.arms:
                if not MODES[condition.mode].torch_memory:
                    continue
                key = arm_key(condition.label, variant)
                model = models[variant, condition.pass_name]
                peak = measure_peak_memory(calls[key], model, x, device)
                peaks[key] = (peak.peak_bytes, peak.activation_bytes, peak.kind)
    finally:
        torch.set_num_threads(previous_threads)
    _synchronize(device)
    return ProcessRun(
        index=job.index,
        seed=job.seed,
        arms=tuple(keys),
        warmup_forwards={key: warmed[key].count for key in keys},
        first_call_s={key: warmed[key].first for key in keys},
        warmup_rounds=warmup_rounds,
        settled=is_settled,
        samples_ms={key: tuple(values) for key, values in samples.items()},
        reference_ms={key: tuple(values) for key, values in references.items()},
        forwards={key: tuple(values) for key, values in forwards.items()},
        order=tuple(order),
        round_other_cpu_load=tuple(loads),
        discarded_rounds=tuple(discarded),
        # over the kept rounds only: a round re-run for other load is not in the samples
        other_cpu_load=_mean_load(loads, contention.other_cpus),
        peak_memory=peaks,
        wall_s=time.perf_counter() - started,
        page_faults=faults,
        allocator=allocator,
    )
