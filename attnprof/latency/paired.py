"""Paired, interleaved latency comparison of the variants of one model, across processes.

Caveats first: two models timed one after the other see different machines: clock frequency,
other processes and memory state drift over seconds, and on a shared 2-core CPU the drift is as
large as the effect being measured. So the variants are timed in *rounds* (every model one
sample, shuffled order), each compared with the baseline *within the round*; drift slower than
a round cancels in the ratio (:mod:`attnprof.latency.rounds`).

Rounds of one process are not independent draws of what a new run gives: a second process of
the same code (another memory layout, allocator state, thread placement, minute of the
machine's day) sits several points away, and an interval over one process's rounds misses
that. So the comparison runs in ``processes`` fresh worker processes, one after the other,
each building its own models, warming up until settled and taking ``rounds`` rounds. The Δ is
the median over processes of each process's median ratio, and its 95% interval the
order-statistic interval of those process medians (:func:`attnprof.latency.stats.
replicated_median`): it covers the median a new process gives, so it holds for a new run.
At least 6 processes are needed for a 95% interval; ``processes=1`` times in this process and
its interval, over rounds, describes this process only.

A process that fails is recorded with its error. If the first one fails, the comparison stops
(the same error would recur); a later one leaves the others' results, with fewer processes
behind the interval (none when fewer than 6 finished), and a note says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch import nn

from attnprof.errors import AttnprofError, choices
from attnprof.latency.defaults import (
    DEFAULT_PROCESSES,
    DEFAULT_ROUNDS,
    DEFAULT_SAMPLE_TIME,
)
from attnprof.latency.environment import collect_environment
from attnprof.latency.memory import NOT_MEASURED
from attnprof.latency.records import (
    CONTENDED_OTHER_CPUS,
    LatencyRecord,
    PairedComparison,
    PairedResult,
    ProcessRun,
)
from attnprof.latency.rounds import (
    DEFAULT_MAX_WARMUP_ROUNDS,
    DEFAULT_SETTLE_TOLERANCE,
    ModelOrFactory,
    RoundsJob,
    run_rounds,
)
from attnprof.latency.settings import (
    RunSettings,
    check_positive,
    check_samples,
    resolve_settings,
)
from attnprof.latency.stats import CI_LEVEL, min_samples_for_ci
from attnprof.latency.timing import input_shape_of
from attnprof.latency.workers import (
    WorkerFailed,
    WorkerTraceback,
    check_picklable,
    run_in_fresh_process,
)
from attnprof.passes import check_optimizer, check_pass


def check_processes(processes: int, rounds: int) -> tuple[int, int]:
    """``processes`` is 1 or at least 6; one process needs 6 rounds, several need 1 each."""
    needed = min_samples_for_ci(CI_LEVEL)
    if (not isinstance(processes, int) or isinstance(processes, bool)
            or not (processes == 1 or processes >= needed)):
        raise AttnprofError(
            f"processes must be 1 (this process only) or at least {needed} (the fewest fresh "
            f"processes for a {CI_LEVEL:.0%} interval across processes), got {processes!r}"
        )
    if processes == 1:
        return processes, check_samples(rounds, "rounds (with processes=1)")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise AttnprofError(f"rounds must be a positive integer, got {rounds!r}")
    return processes, rounds


def backbone_variants(
    backbone: str, attentions: Sequence[str] = ("none", "se", "sge", "sa"), head: str = "fc"
) -> dict[str, Callable[[], nn.Module]]:
    """Factories ``{attention: () -> build_model(backbone, attention, head)}`` for pairing."""
    from attnprof.attention import get_attention_spec
    from attnprof.backbones import build_model

    for attention in attentions:
        get_attention_spec(attention)  # unknown names fail now, before any model is built
    # partial, not lambda: a factory must travel to fresh worker processes
    return {attention: partial(build_model, backbone, attention, head=head)
            for attention in attentions}


def paired_latency(
    variants: Mapping[str, ModelOrFactory],
    input_shape_or_tensor: int | Sequence[int] | torch.Tensor = 224,
    *,
    baseline: str = "none",
    processes: int = DEFAULT_PROCESSES,
    rounds: int = DEFAULT_ROUNDS,
    batch: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = "float32",
    channels_last: bool = False,
    compile: bool | str = False,
    sample_time: float = DEFAULT_SAMPLE_TIME,
    warmup: int = 1,
    warmup_time: float = 0.0,
    max_warmup_rounds: int = DEFAULT_MAX_WARMUP_ROUNDS,
    settle_tolerance: float = DEFAULT_SETTLE_TOLERANCE,
    shuffle: bool = True,
    seed: int | None = 0,
    memory: bool = True,
    max_other_cpus: float | None = None,
    pass_name: str = "inference",
    optimizer: str = "none",
    progress: Callable[[int, int], None] | None = None,
) -> PairedComparison:
    """Time ``variants`` (name -> model or zero-argument factory) in interleaved rounds.

    Every variant is compared with ``baseline`` (one of the names) round by round, in
    ``processes`` fresh processes of ``rounds`` rounds each (see the module docstring); with
    several processes the variants must be picklable (:func:`~attnprof.latency.workers.
    check_picklable`). ``processes=1`` measures in this process and needs ``rounds >= 6``; its
    models are moved to the device in place. ``sample_time`` is the Timer's ``min_run_time``
    for one sample. Before the rounds, ``warmup`` forwards (and ``warmup_time`` seconds) per
    model, then warm-up rounds until settled (``settle_tolerance``, at most
    ``max_warmup_rounds``; :mod:`attnprof.latency.rounds`). ``shuffle`` randomises the order
    within rounds with ``random.Random(seed + process index)``. ``memory`` measures each
    model's peak memory in the first process. ``progress(done, total)`` is called after each
    measured round, counted over all processes.

    ``max_other_cpus`` (off by default) re-runs a round during which other work kept more than
    that many logical CPUs busy (:class:`~attnprof.latency.environment.CpuContention`): a rule
    fixed in advance on a measurement independent of the timings, so it cannot favour a
    variant. ``pass_name="train"`` times a training step instead of a forward
    (:class:`attnprof.passes.TrainStep`, with ``optimizer`` ``none`` or ``sgd``); ``compile``
    times the compiled model, its compilation recorded apart (``first_call_s``). The other
    settings are those of :func:`~attnprof.latency.timing.measure_latency`.
    """
    if not isinstance(variants, Mapping) or len(variants) < 2:
        raise AttnprofError("paired_latency needs a mapping of at least two named variants")
    names = list(variants)
    if baseline not in variants:
        raise AttnprofError(
            f"baseline {baseline!r} is not among the variants; valid: {choices(names)}"
        )
    processes, rounds = check_processes(processes, rounds)
    check_pass(pass_name)
    check_optimizer(optimizer)
    if max_other_cpus is not None:
        max_other_cpus = check_positive("max_other_cpus", max_other_cpus)
    sample_time = check_positive("sample_time", sample_time)
    settle_tolerance = check_positive("settle_tolerance", settle_tolerance)
    if not isinstance(max_warmup_rounds, int) or max_warmup_rounds < 0:
        raise AttnprofError(
            f"max_warmup_rounds must be a non-negative integer, got {max_warmup_rounds!r}"
        )
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise AttnprofError(f"batch must be a positive integer, got {batch!r}")
    raw_settings = {"device": device, "threads": threads, "dtype": dtype,
                    "channels_last": channels_last, "compile": compile}
    settings = resolve_settings(**raw_settings)
    input_shape_of(input_shape_or_tensor)  # a bad input fails here, before any process starts
    if processes > 1:
        check_picklable(variants)

    def job(index: int) -> RoundsJob:
        return RoundsJob(
            variants=variants, input_spec=input_shape_or_tensor, batch=batch,
            settings=raw_settings, rounds=rounds, sample_time=sample_time,
            seed=None if seed is None else seed + index, index=index, shuffle=shuffle,
            warmup=warmup, warmup_time=warmup_time, max_warmup_rounds=max_warmup_rounds,
            settle_tolerance=settle_tolerance, max_other_cpus=max_other_cpus,
            memory=memory and index == 0, pass_name=pass_name, optimizer=optimizer,
        )

    started = time.perf_counter()
    workers: list[ProcessRun] = []
    for index in range(processes):
        def step(done: int, _: int, offset: int = index * rounds) -> None:
            if progress is not None:
                progress(offset + done, processes * rounds)

        if processes == 1:
            workers.append(run_rounds(job(index), step))
            continue
        try:
            workers.append(run_in_fresh_process(job(index), step))
        except WorkerFailed as failed:
            if index == 0:  # the first process failing: the same error would recur
                cause = WorkerTraceback(failed.run.traceback or failed.run.error)
                raise AttnprofError(failed.run.error or "worker failed") from cause
            workers.append(failed.run)
    return _compare(job(0), baseline, processes, workers, settings,
                    time.perf_counter() - started)


def _compare(plan: RoundsJob, baseline: str, processes: int, workers: list[ProcessRun],
             settings: RunSettings, wall_s: float) -> PairedComparison:
    """The statistics across the processes that finished, and the notes a reader needs.
    ``plan`` is the first process's job: what every process was asked to do."""
    names, batch, rounds = list(plan.variants), plan.batch, plan.rounds
    sample_time, shape = plan.sample_time, input_shape_of(plan.input_spec)
    environment = collect_environment(settings.device)
    done = [run for run in workers if run.ok]
    peaks = next((run.peak_memory for run in done if run.peak_memory), {})
    loads = [run.other_cpu_load for run in done if run.other_cpu_load is not None]
    load = sum(loads) / len(loads) if loads else None
    several = processes > 1

    def groups(name: str) -> list[tuple[float, ...]]:
        return [run.samples_ms[name] for run in done]

    def record(name: str) -> LatencyRecord:
        peak_bytes, activation, kind = peaks.get(name, (None, None, NOT_MEASURED))
        per_sample = sorted(n for run in done for n in run.forwards[name])
        return LatencyRecord.from_groups(
            groups(name),
            across_processes=several,
            batch=batch,
            model=name,
            input_shape=shape,
            peak_mem_bytes=peak_bytes,
            peak_mem_kind=kind,
            activation_peak_bytes=activation,
            forwards_per_sample=per_sample[len(per_sample) // 2],
            forwards_timed=sum(per_sample),
            method=(f"paired-interleaved(processes={len(done)}, rounds={rounds} per process, "
                    f"sample_time={sample_time:g}s)"),
            warmup_forwards=sum(run.warmup_forwards[name] for run in done),
            first_call_s=tuple(run.first_call_s[name] for run in done
                               if name in run.first_call_s),
            pass_name=plan.pass_name,
            optimizer=plan.optimizer,
            wall_s=wall_s,
            other_cpu_load=load,
            environment=environment,
            **settings.meta(),
        )

    notes = _notes(workers, done, processes, settings, plan, load)
    results = tuple(
        PairedResult.from_groups(name, baseline, groups(name), groups(baseline), record(name),
                                 across_processes=several)
        for name in names
        if name != baseline
    )
    return PairedComparison(
        baseline=baseline,
        baseline_record=record(baseline),
        results=results,
        rounds=rounds,
        shuffle=plan.shuffle,
        seed=plan.seed if plan.shuffle else None,
        sample_time_s=sample_time,
        wall_s=wall_s,
        processes=processes,
        workers=tuple(workers),
        environment=environment,
        notes=tuple(notes),
        max_other_cpus=plan.max_other_cpus,
        max_warmup_rounds=plan.max_warmup_rounds,
        settle_tolerance=plan.settle_tolerance,
    )


def _notes(workers: list[ProcessRun], done: list[ProcessRun], processes: int,
           settings: RunSettings, plan: RoundsJob, load: float | None) -> list[str]:
    notes = []
    if settings.threads > (os.cpu_count() or settings.threads):
        notes.append(f"{settings.threads} threads exceed the {os.cpu_count()} logical CPUs")
    failed = [run for run in workers if not run.ok]
    if failed:
        needed = min_samples_for_ci(CI_LEVEL)
        notes.append(
            f"{len(failed)} of {processes} worker processes failed "
            f"({'; '.join(f'process {run.index + 1}: {run.error}' for run in failed)})"
            + (f": no {CI_LEVEL:.0%} interval from {len(done)} processes (needs {needed})"
               if len(done) < needed else "")
        )
    unsettled = [run.index + 1 for run in done if not run.settled]
    if unsettled:
        notes.append(
            f"warm-up did not settle within {plan.max_warmup_rounds} rounds in process(es) "
            f"{', '.join(map(str, unsettled))}: their first rounds may still be warming"
        )
    if processes == 1:
        notes.append("one process: the interval covers the rounds of this process only, not "
                     "the variation between runs")
    discarded = sum(len(run.discarded_rounds) for run in done)
    if discarded:
        notes.append(
            f"{discarded} round(s) re-run because other work kept more than "
            f"{plan.max_other_cpus:g} logical CPUs busy"
        )
    if load is not None and load > CONTENDED_OTHER_CPUS:
        notes.append(
            f"other work kept {load:.2f} logical CPUs busy on average during the rounds "
            f"({os.cpu_count()} CPUs, {settings.threads} threads measured): the timings were "
            "contended; the paired ratios cancel slow drift, not fast interference"
        )
    return notes
