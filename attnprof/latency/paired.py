"""Paired, bracketed latency comparison of the variants of one model, across processes.

Caveats first: two models timed one after the other see different machines: clock frequency,
other processes and memory state drift over seconds, and on a shared 2-core CPU the drift is as
large as the effect being measured. So the variants are timed in bracketed *rounds* (every
variant's sample between two of the baseline's, shuffled order), each compared with the
baseline samples right around it; drift over those three samples cancels in the ratio
(:mod:`attnprof.latency.brackets`, :mod:`attnprof.latency.rounds`).

Rounds of one process are not independent draws of what a new run gives: a second process of
the same code (another memory layout, allocator state, thread placement, minute of the
machine's day) sits several points away, and an interval over one process's rounds misses
that. So the comparison runs in fresh worker processes, each building its own models, warming
up until settled and taking ``rounds`` rounds. The Δ is the median over processes of each
process's median ratio, and its 95% interval an order-statistic interval of those process
medians: it covers the median a new process gives, so it holds for a new run.

By default processes are added until each variant's interval is narrow
(:mod:`attnprof.latency.replicate`; the interval stays valid under that stopping,
:mod:`attnprof.latency.sequential`); ``processes=N`` asks for exactly N (at least 6 for a 95%
interval), and ``processes=1`` times in this process, its interval over rounds describing this
process only. This module is the one-comparison entry point; a suite times many groups
interleaved through :func:`attnprof.latency.schedule.run_groups`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch import nn

from attnprof.errors import AttnprofError, choices
from attnprof.latency.defaults import (
    DEFAULT_MAX_WARMUP_ROUNDS,
    DEFAULT_ROUNDS,
    DEFAULT_SAMPLE_TIME,
    DEFAULT_SETTLE_TOLERANCE,
)
from attnprof.latency.records import PairedComparison
from attnprof.latency.replicate import GroupPlan
from attnprof.latency.rounds import ModelOrFactory
from attnprof.latency.schedule import first_error, run_groups
from attnprof.latency.sequential import DEFAULT_MAX_PROCESSES
from attnprof.latency.spec import (
    DEFAULT_ALLOCATOR,
    DEFAULT_TARGET_WIDTH,
    DEFAULT_THRESHOLD,
    Condition,
    replication_plan,
    timing_spec,
)
from attnprof.latency.timing import input_shape_of


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
    input_shape_or_tensor: int | Sequence[int] = 224,
    *,
    baseline: str = "none",
    processes: int | None = None,
    rounds: int = DEFAULT_ROUNDS,
    max_processes: int = DEFAULT_MAX_PROCESSES,
    target_width: float = DEFAULT_TARGET_WIDTH,
    threshold: float = DEFAULT_THRESHOLD,
    budget_s: float | None = None,
    batch: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = "float32",
    channels_last: bool = False,
    compile: bool | str = False,
    mode: str | None = None,
    sample_time: float = DEFAULT_SAMPLE_TIME,
    max_warmup_rounds: int = DEFAULT_MAX_WARMUP_ROUNDS,
    settle_tolerance: float = DEFAULT_SETTLE_TOLERANCE,
    shuffle: bool = True,
    seed: int = 0,
    memory: bool = True,
    max_other_cpus: float | None = None,
    pass_name: str = "inference",
    optimizer: str = "none",
    allocator: str = DEFAULT_ALLOCATOR,
    progress: Callable[[int, int], None] | None = None,
) -> PairedComparison:
    """Time ``variants`` (name -> model or zero-argument factory) in bracketed rounds.

    Every variant is compared with ``baseline`` (one of the names) round by round in fresh
    processes (see the module docstring): by default until every interval is at most
    ``target_width`` points of Δ% wide (at most ``max_processes``, within ``budget_s``
    seconds), or exactly ``processes`` of them; with fresh processes the variants must be
    picklable (:func:`~attnprof.latency.workers.check_picklable`). ``processes=1`` measures in
    this process and needs ``rounds >= 6``. ``sample_time`` is the least time behind one
    sample (back-to-back calls, at least one); warm-up rounds run until settled
    (``settle_tolerance``, at most ``max_warmup_rounds``; :mod:`attnprof.latency.rounds`).
    ``shuffle`` randomises the order within rounds with ``random.Random(seed + process
    index)``; ``seed`` also fixes the input and each variant's weights. ``memory`` measures
    each model's peak memory in the first process. ``progress(done, total)`` is called after
    each measured round of a process.

    ``mode`` names an execution mode (:data:`attnprof.latency.modes.MODES`; ``compile=True``
    is ``mode="compile"``); ``pass_name="train"`` times a training step instead of a forward
    (:class:`attnprof.passes.TrainStep`, with ``optimizer`` ``none`` or ``sgd``).
    ``max_other_cpus`` (off by default) re-runs a round during which other work kept more than
    that many logical CPUs busy. ``allocator`` names the allocator state measured
    (:data:`attnprof.latency.spec.ALLOCATORS`).
    """
    if not isinstance(variants, Mapping) or len(variants) < 2:
        raise AttnprofError("paired_latency needs a mapping of at least two named variants")
    if baseline not in variants:
        raise AttnprofError(
            f"baseline {baseline!r} is not among the variants; valid: {choices(list(variants))}"
        )
    if isinstance(input_shape_or_tensor, torch.Tensor):
        raise AttnprofError("paired_latency takes an input shape (S, (H, W) or (C, H, W)); "
                            "its input is drawn from the seed, the same in every process")
    if mode is None:
        mode = "compile" if compile else "eager"
    plan = replication_plan(processes, max_processes=max_processes, target_width=target_width,
                            threshold=threshold, rounds=rounds)
    if budget_s is not None and (isinstance(budget_s, bool) or not budget_s > 0):
        raise AttnprofError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
    spec = timing_spec(
        device=str(device), threads=threads, batch=batch,
        input_shape=input_shape_of(input_shape_or_tensor),
        conditions=(Condition(pass_name, mode),), dtype=str(dtype).removeprefix("torch."),
        channels_last=channels_last,
        compile_mode=compile if isinstance(compile, str) else "default",
        optimizer=optimizer, sample_time=sample_time, rounds=rounds,
        max_warmup_rounds=max_warmup_rounds, settle_tolerance=settle_tolerance,
        replication=plan, allocator=allocator, max_other_cpus=max_other_cpus,
        shuffle=shuffle, seed=seed, memory=memory,
    )
    group = GroupPlan("comparison", dict(variants), baseline, spec)
    done = [0]

    def rounds_done(_: str, finished: int, total: int) -> None:
        if progress is not None:
            done[0] += 1
            progress(done[0], max(done[0], total))

    timing = run_groups([group], budget_s=budget_s, round_progress=rounds_done)[0]
    error = first_error(timing)
    if error is not None:
        raise error
    if timing.failures:  # never a comparison silently short of a variant
        (_, variant), failure = next(iter(timing.failures.items()))
        names = ", ".join(sorted({v for _, v in timing.failures}))
        raise AttnprofError(f"variant {variant!r} could not be timed: {failure.error}"
                            + (f" (failed: {names})" if "," in names else ""))
    return timing.comparisons[spec.conditions[0]]
