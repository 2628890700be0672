"""What a latency measurement produced: raw samples plus the statistics derived from them.

Records are plain dataclasses that round-trip through ``to_dict()`` / ``from_dict()`` (JSON
friendly: tuples become lists). They keep the raw samples (``times_ms``, ``ratios``) so a later
comparison can run its own tests on them; the summary fields are derived once, when the record
is built, with :mod:`attnprof.latency.stats`.

Units: milliseconds per forward pass of the whole batch; bytes; images per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from attnprof.errors import AttnprofError
from attnprof.latency import stats
from attnprof.latency.environment import Environment
from attnprof.records_json import JsonRecord, encode

HIGH_VARIANCE_IQR = 0.10
"""IQR / median above which a measurement is flagged as noisy (torch.utils.benchmark's 10%)."""
CONTENDED_OTHER_CPUS = 0.25
"""Average logical CPUs busy with other work above which a measurement is flagged contended."""


@dataclass(frozen=True)
class LatencyRecord(JsonRecord):
    """Forward latency of one model on one device at one batch size.

    ``times_ms`` are the raw samples, each the mean time of one forward over a Timer block of
    ``forwards_per_sample`` forwards (a block in the paired design is one round), process after
    process. ``median_ms`` and ``ci95_ms`` summarise them over ``ci_over``: with several fresh
    processes, the median of the ``process_medians_ms`` and the order-statistic interval of
    those (it holds for a new run); with one, the rounds' median and interval (this process
    only). ``ci_level`` is the interval's exact coverage; both are ``None`` when too few
    processes finished. ``iqr_ms`` is over all samples.
    ``peak_mem_bytes`` is measured by the method ``peak_mem_kind`` names (see
    :data:`attnprof.latency.memory.PEAK_MEM_KINDS`); ``None`` when it was not measured.
    """

    model: str
    device: str
    threads: int
    batch: int
    input_shape: tuple[int, int, int]
    median_ms: float
    iqr_ms: float
    ci95_ms: tuple[float, float] | None
    ci_level: float | None
    samples: int
    images_per_s: float
    peak_mem_bytes: int | None
    peak_mem_kind: str
    dtype: str
    autocast: bool
    channels_last: bool
    compile: bool
    compile_mode: str | None
    times_ms: tuple[float, ...]
    forwards_per_sample: int
    forwards_timed: int
    method: str
    warmup_forwards: int
    wall_s: float
    activation_peak_bytes: int | None = None
    """Growth of allocated bytes during one forward (the part of ``peak_mem_bytes`` above
    the weights, buffers and input)."""
    other_cpu_load: float | None = None
    """Average logical CPUs busy with other work while this was timed
    (:class:`~attnprof.latency.environment.CpuContention`)."""
    environment: Environment | None = None
    processes: int = 1
    """Fresh worker processes the samples come from (see ``ci_over``)."""
    process_medians_ms: tuple[float, ...] = ()
    ci_over: str = "rounds"
    """``"processes"`` or ``"rounds"``: the unit ``ci95_ms`` is taken over."""
    pass_name: str = "inference"
    """What was timed (:data:`attnprof.passes.PASSES`): a forward, or a training step."""
    mode: str = "eager"
    """How it ran (:data:`attnprof.passes.MODES`): ``eager`` or ``compile``."""
    optimizer: str = "none"
    """The optimizer step inside a timed training step (``none``: forward, loss, backward)."""
    first_call_s: tuple[float, ...] = ()
    """The first call of the model in each process, apart from every timing: under
    ``compile`` it holds the compilation (and one run), so it is the compile time's record."""

    @classmethod
    def from_times(cls, times_ms: Sequence[float], *, batch: int, **meta) -> LatencyRecord:
        """Build a record from the raw per-forward samples of one process."""
        return cls.from_groups([times_ms], batch=batch, **meta)

    @classmethod
    def from_groups(cls, groups: Sequence[Sequence[float]], *, batch: int,
                    across_processes: bool | None = None, **meta) -> LatencyRecord:
        """Build a record from each process's samples, deriving the summary statistics."""
        summary = stats.replicated_median(groups, across_processes=across_processes)
        times = tuple(float(t) for group in groups for t in group)
        several = summary.over == "processes"
        return cls(
            batch=batch,
            median_ms=summary.median,
            iqr_ms=stats.iqr(times),
            ci95_ms=(summary.ci.lo, summary.ci.hi) if summary.ci else None,
            ci_level=summary.ci.coverage if summary.ci else None,
            samples=len(times),
            images_per_s=batch * 1000.0 / summary.median,
            times_ms=times,
            processes=len(groups),
            process_medians_ms=summary.group_medians if several else (),
            ci_over=summary.over,
            **meta,
        )

    @property
    def mean_ms(self) -> float:
        return sum(self.times_ms) / len(self.times_ms)

    @property
    def high_variance(self) -> bool:
        """IQR above :data:`HIGH_VARIANCE_IQR` of the median: treat small differences warily."""
        return self.iqr_ms > HIGH_VARIANCE_IQR * self.median_ms

    @property
    def contended(self) -> bool:
        """Other work kept more than :data:`CONTENDED_OTHER_CPUS` CPUs busy during timing."""
        return self.other_cpu_load is not None and self.other_cpu_load > CONTENDED_OTHER_CPUS

    def to_dict(self) -> dict[str, Any]:
        derived = {"high_variance": self.high_variance, "contended": self.contended}
        return {**encode(self), **derived}  # from_dict ignores the derived keys


@dataclass(frozen=True)
class PairedResult(JsonRecord):
    """One variant against the baseline, from interleaved rounds in one or more processes.

    ``ratios`` are this variant's samples divided by the baseline's of the same round, process
    after process (``rounds_per_process`` says where each process ends). With several fresh
    processes, ``ratio_median`` is the median of the ``process_medians`` and ``ratio_ci95``
    their order-statistic interval: what a new run would give (``ci_over == "processes"``).
    With one process, both are over its rounds and describe that process only. ``delta_pct``
    and ``delta_ci95_pct`` restate them as ``100 * (ratio - 1)``; the intervals are ``None``
    when too few processes finished. ``disagreement_p`` (Kruskal-Wallis across processes) below
    :data:`~attnprof.latency.stats.DISAGREEMENT_ALPHA` means the processes differ beyond their
    rounds' noise. ``record`` holds the variant's samples in ms.
    """

    name: str
    baseline: str
    rounds: int
    ratios: tuple[float, ...]
    ratio_median: float
    ratio_ci95: tuple[float, float] | None
    ratio_ci_level: float | None
    delta_pct: float
    delta_ci95_pct: tuple[float, float] | None
    record: LatencyRecord
    processes: int = 1
    rounds_per_process: tuple[int, ...] = ()
    process_medians: tuple[float, ...] = ()
    ci_over: str = "rounds"
    disagreement_p: float | None = None

    @classmethod
    def from_groups(
        cls, name: str, baseline: str, variant_ms: Sequence[Sequence[float]],
        baseline_ms: Sequence[Sequence[float]], record: LatencyRecord,
        across_processes: bool | None = None,
    ) -> PairedResult:
        """From per-process samples of the variant and the baseline, round by round."""
        summary, groups = stats.replicated_ratio(variant_ms, baseline_ms,
                                                 across_processes=across_processes)
        ci = summary.ci
        several = summary.over == "processes"
        return cls(
            name=name,
            baseline=baseline,
            rounds=sum(summary.rounds_per_group),
            ratios=tuple(v for group in groups for v in group),
            ratio_median=summary.median,
            ratio_ci95=(ci.lo, ci.hi) if ci else None,
            ratio_ci_level=ci.coverage if ci else None,
            delta_pct=100.0 * (summary.median - 1.0),
            delta_ci95_pct=(100.0 * (ci.lo - 1.0), 100.0 * (ci.hi - 1.0)) if ci else None,
            record=record,
            processes=len(groups),
            rounds_per_process=summary.rounds_per_group,
            process_medians=summary.group_medians if several else (),
            ci_over=summary.over,
            disagreement_p=summary.disagreement_p,
        )

    @property
    def significant(self) -> bool:
        """True when the interval of the median ratio excludes 1 (no change)."""
        return self.ratio_ci95 is not None and (self.ratio_ci95[0] > 1.0
                                                or self.ratio_ci95[1] < 1.0)

    @property
    def processes_disagree(self) -> bool:
        return stats.disagree(self.disagreement_p)

    def to_dict(self) -> dict[str, Any]:
        derived = {"significant": self.significant,
                   "processes_disagree": self.processes_disagree}
        return {**encode(self), **derived}


@dataclass(frozen=True)
class DiscardedRound(JsonRecord):
    """A paired round re-run because other work was using the CPUs (kept for transparency)."""

    order: tuple[str, ...]
    other_cpus: float
    times_ms: dict[str, float]


@dataclass(frozen=True)
class ProcessRun(JsonRecord):
    """What one process of a paired comparison measured, or why it failed.

    ``samples_ms[name][i]`` is model ``name``'s sample in measured round ``i`` (the mean of
    ``forwards[name][i]`` forwards); ``order[i]`` the order the models ran in that round.
    ``warmup_rounds`` rounds ran before them, discarded, and ``settled`` says whether the
    warm-up's stopping rule was met (:mod:`attnprof.latency.rounds`). ``peak_memory`` maps a
    name to ``(peak bytes, activation bytes, method)`` where it was measured (the first
    process). A failed process keeps its ``error`` line and ``traceback``.
    """

    index: int
    seed: int | None
    warmup_forwards: dict[str, int] = field(default_factory=dict)
    warmup_rounds: int = 0
    settled: bool = False
    samples_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)
    forwards: dict[str, tuple[int, ...]] = field(default_factory=dict)
    order: tuple[tuple[str, ...], ...] = ()
    round_other_cpu_load: tuple[float | None, ...] = ()
    discarded_rounds: tuple[DiscardedRound, ...] = ()
    other_cpu_load: float | None = None
    peak_memory: dict[str, tuple[int | None, int | None, str]] = field(default_factory=dict)
    first_call_s: dict[str, float] = field(default_factory=dict)
    """Each model's first call in this process (under ``compile``: compilation and one run)."""
    wall_s: float = 0.0
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PairedComparison(JsonRecord):
    """The variants of one model measured in interleaved rounds against ``baseline``.

    ``workers`` holds what each of the ``processes`` fresh processes measured (``rounds``
    rounds each, order shuffled with ``seed + index`` when ``shuffle`` is true), failed ones
    included. ``results`` holds one :class:`PairedResult` per non-baseline variant, in the order
    the variants were given, computed across the processes that finished.
    """

    baseline: str
    baseline_record: LatencyRecord
    results: tuple[PairedResult, ...]
    rounds: int
    """Measured rounds per process."""
    shuffle: bool
    seed: int | None
    sample_time_s: float
    wall_s: float
    processes: int = 1
    workers: tuple[ProcessRun, ...] = ()
    environment: Environment | None = None
    notes: tuple[str, ...] = field(default=())
    max_other_cpus: float | None = None
    """The re-run threshold in force (``None``: contended rounds were kept)."""
    max_warmup_rounds: int | None = None
    settle_tolerance: float | None = None

    @property
    def failed_processes(self) -> tuple[ProcessRun, ...]:
        return tuple(run for run in self.workers if not run.ok)

    def result(self, name: str) -> PairedResult:
        for item in self.results:
            if item.name == name:
                return item
        raise AttnprofError(
            f"no paired result for {name!r}; variants: "
            f"{', '.join(r.name for r in self.results)} (baseline {self.baseline!r})"
        )

    @property
    def records(self) -> list[LatencyRecord]:
        """Every model's record, baseline first."""
        return [self.baseline_record, *(r.record for r in self.results)]


@dataclass(frozen=True)
class ModuleTiming(JsonRecord):
    """One distinct attention module, timed alone on the feature map it sees in the model.

    Modules with the same configuration that see the same input shape (the blocks of one stage)
    form one entry: ``names`` lists them, ``calls_per_forward`` counts their calls in one model
    forward, and ``ms_per_forward = ms_per_call * calls_per_forward``. ``pct_of_forward``
    relates that to the whole model's median forward time ``model_ms`` when it was measured.
    Timed in isolation, on a repeated input: cache effects differ from the module's place in
    the network, so the parts need not add up to the difference between two whole models.
    """

    name: str
    names: tuple[str, ...]
    module: str
    stage: int | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_dtype: str
    calls_per_forward: int
    ms_per_call: float
    iqr_ms: float
    ci95_ms: tuple[float, float]
    ci_level: float
    samples: int
    times_ms: tuple[float, ...]
    ms_per_forward: float
    model_ms: float | None
    pct_of_forward: float | None
    device: str
    threads: int
    batch: int
    dtype: str
    channels_last: bool
