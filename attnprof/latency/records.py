"""What a latency measurement produced: raw samples plus the statistics derived from them.

Records are plain dataclasses that round-trip through ``to_dict()`` / ``from_dict()`` (JSON
friendly: tuples become lists). They keep the raw samples (``times_ms``, ``ratios``) so a later
comparison can run its own tests on them; the summary fields are derived once, when the record
is built, with :mod:`attnprof.latency.stats`.

Units: milliseconds per forward pass of the whole batch; bytes; images per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from attnprof.errors import AttnprofError
from attnprof.latency import stats
from attnprof.latency.environment import Environment
from attnprof.records_json import JsonRecord, encode

if TYPE_CHECKING:
    from attnprof.latency.sequential import SequentialDesign

from attnprof.latency.spec import Condition, TimingSpec

HIGH_VARIANCE_IQR = 0.10
"""IQR / median above which a measurement is flagged as noisy (torch.utils.benchmark's 10%)."""
CONTENDED_OTHER_CPUS = 0.25
"""Average logical CPUs busy with other work above which a measurement is flagged contended."""


_RECORD_ORDER = ("model", "device", "threads", "batch", "input_shape", "median_ms", "iqr_ms",
                 "ci95_ms", "ci_level", "samples", "images_per_s", "peak_mem_bytes",
                 "peak_mem_kind", "dtype", "autocast", "channels_last", "compile", "compile_mode",
                 "times_ms", "forwards_per_sample", "forwards_timed", "method", "warmup_forwards",
                 "wall_s")
"""The order a record's keys are written in (as every version wrote them)."""


@dataclass(frozen=True)
class LatencyRecord(JsonRecord):
    """Forward latency of one model on one device at one batch size.

    ``times_ms`` are the raw samples, each the mean time of one forward over a block of
    ``forwards_per_sample`` forwards (in the paired design, one per round: a baseline's, the
    geometric mean of its samples in the round), process after process. ``median_ms`` and
    ``ci95_ms`` summarise them over ``ci_over``: with several fresh processes, the median of
    the ``process_medians_ms`` and the order-statistic interval of those (it holds for a new
    run); with one, the rounds' median and interval (this process
    only). ``ci_level`` is the interval's exact coverage; both are ``None`` when too few
    processes finished. ``iqr_ms`` is over all samples.
    ``peak_mem_bytes`` is measured by the method ``peak_mem_kind`` names (see
    :data:`attnprof.latency.memory.PEAK_MEM_KINDS`); ``None`` when it was not measured.
    """

    device: str
    batch: int
    median_ms: float
    # What the results file's schema does not require: ``None`` (or empty) in a file that did
    # not record it; attnprof writes them all.
    threads: int | None = None
    iqr_ms: float | None = None
    ci95_ms: tuple[float, float] | None = None
    samples: int | None = None
    images_per_s: float | None = None
    peak_mem_bytes: int | None = None
    peak_mem_kind: str | None = None
    times_ms: tuple[float, ...] = ()
    model: str | None = None
    input_shape: tuple[int, ...] | None = None
    ci_level: float | None = None
    dtype: str | None = None
    autocast: bool | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    compile_mode: str | None = None
    forwards_per_sample: int | None = None
    forwards_timed: int | None = None
    method: str | None = None
    warmup_forwards: int | None = None
    wall_s: float | None = None
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
    """How it ran (:data:`attnprof.latency.modes.MODES`): ``eager``, ``compile``, ..."""
    optimizer: str = "none"
    """The optimizer step inside a timed training step (``none``: forward, loss, backward)."""
    first_call_s: tuple[float, ...] = ()
    """The first call of the model in each process, apart from every timing: under
    ``compile`` it holds tracing and a compile from the caches the run's build process warmed
    (the compilation itself is the build's ``build_s``)."""

    @classmethod
    def from_times(cls, times_ms: Sequence[float], *, batch: int, **meta) -> LatencyRecord:
        """Build a record from the raw per-forward samples of one process."""
        return cls.from_groups([times_ms], batch=batch, **meta)

    @classmethod
    def from_groups(cls, groups: Sequence[Sequence[float]], *, batch: int,
                    across_processes: bool | None = None,
                    design: SequentialDesign | None = None, level: float = stats.CI_LEVEL,
                    **meta) -> LatencyRecord:
        """Build a record from each process's samples, deriving the summary statistics (over
        the processes with ``design``'s interval when the processes were added sequentially)."""
        summary = stats.replicated_median(groups, level, across_processes=across_processes,
                                          design=design)
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
        return self.iqr_ms is not None and self.iqr_ms > HIGH_VARIANCE_IQR * self.median_ms

    @property
    def contended(self) -> bool:
        """Other work kept more than :data:`CONTENDED_OTHER_CPUS` CPUs busy during timing."""
        return self.other_cpu_load is not None and self.other_cpu_load > CONTENDED_OTHER_CPUS

    def to_dict(self) -> dict[str, Any]:
        derived = {"high_variance": self.high_variance, "contended": self.contended}
        order = [*_RECORD_ORDER, *(f.name for f in fields(self) if f.name not in _RECORD_ORDER)]
        return {**encode(self, order), **derived}  # from_dict ignores the derived keys


STOP_REASONS = {
    "decided": "its interval is narrow enough and lies on one side of the claim's threshold",
    "near": "its interval is narrow enough and holds the threshold: the Δ sits near it",
    "max-processes": "it reached the most processes allowed",
    "budget": "the run's time budget was spent",
    "fixed": "a fixed number of processes was asked for",
    "failed": "a process failed and no more were run",
}
"""Why a comparison stopped taking processes, by code (:attr:`PairedRatio.stopped`)."""

DESIGNS = {
    "sequential": "a repeated order-statistic interval over process medians, valid at every "
                  "number of processes at once (attnprof.latency.sequential)",
    "fixed": "the order-statistic interval over the medians of a fixed number of processes",
    "rounds": "the order-statistic interval over the rounds of one process (this process only)",
}
"""How an interval was taken, by name (:attr:`PairedRatio.design`)."""

@dataclass(frozen=True)
class Pairing:
    """How a round pairs each variant with its baseline, in the report's words: ``rounds``
    names the rounds, ``samples`` says how many samples of each model a round holds."""

    rounds: str
    samples: str


PAIRINGS = {
    "bracketed": Pairing(
        "bracketed rounds (the baseline, then each variant followed by the baseline again; "
        "each variant's ratio in a round is against the geometric mean of the baseline "
        "samples right before and after its own)", "per variant and turn of the baseline"),
    "round": Pairing("interleaved rounds", "per model per round"),
}
"""What a round's ratio was taken against, by name (:attr:`PairedRatio.pairing`)."""


@dataclass(frozen=True)
class PairedRatio(JsonRecord):
    """A variant's time over the baseline's, round by round, timed in the same rounds.

    ``values`` are the per-round ratios, process after process (``rounds_per_process`` says
    where each process ends). ``median`` and its interval ``ci95`` (coverage ``ci_level``) are
    over ``ci_over``: the ``process_medians`` of fresh processes (the interval holds for a new
    run), or the rounds of one process (it describes that process only); ``design`` says how
    (:data:`DESIGNS`). ``delta_pct`` / ``delta_ci95_pct`` restate them as a percentage change;
    the intervals are ``None`` when too few processes finished. ``disagreement_p`` is the
    Kruskal-Wallis p-value across processes (below
    :data:`~attnprof.latency.stats.DISAGREEMENT_ALPHA` they differ beyond their rounds' noise).
    ``stopped`` says why no more processes were taken (:data:`STOP_REASONS`; ``None`` in files
    written before it was recorded). ``pairing`` says what each round's ratio was taken
    against (:data:`PAIRINGS`; ``None`` in files written before bracketed rounds, which
    paired by round).
    """

    baseline: str
    delta_pct: float
    delta_ci95_pct: tuple[float, float] | None = None
    median: float | None = None
    ci95: tuple[float, float] | None = None
    values: tuple[float, ...] = ()
    ci_over: str = "rounds"
    processes: int = 1
    rounds_per_process: tuple[int, ...] = ()
    process_medians: tuple[float, ...] = ()
    disagreement_p: float | None = None
    ci_level: float | None = None
    design: str | None = None
    stopped: str | None = None
    pairing: str | None = None

    @classmethod
    def from_groups(
        cls, baseline: str, variant_ms: Sequence[Sequence[float]],
        baseline_ms: Sequence[Sequence[float]], *, across_processes: bool | None = None,
        design: SequentialDesign | None = None, stopped: str | None = None,
        level: float = stats.CI_LEVEL, pairing: str | None = None,
    ) -> PairedRatio:
        """From per-process samples of the variant and the baseline (what its ratio is
        taken against, ``pairing``), round by round."""
        if pairing is not None and pairing not in PAIRINGS:
            raise AttnprofError(f"unknown pairing {pairing!r}; valid: {', '.join(PAIRINGS)}")
        summary, groups = stats.replicated_ratio(variant_ms, baseline_ms, level,
                                                 across_processes=across_processes,
                                                 design=design)
        ci = summary.ci
        several = summary.over == "processes"
        return cls(
            baseline=baseline,
            delta_pct=100.0 * (summary.median - 1.0),
            delta_ci95_pct=(100.0 * (ci.lo - 1.0), 100.0 * (ci.hi - 1.0)) if ci else None,
            median=summary.median,
            ci95=(ci.lo, ci.hi) if ci else None,
            values=tuple(v for group in groups for v in group),
            ci_over=summary.over,
            processes=len(groups),
            rounds_per_process=summary.rounds_per_group,
            process_medians=summary.group_medians if several else (),
            disagreement_p=summary.disagreement_p,
            ci_level=ci.coverage if ci else None,
            design=("sequential" if design is not None else "fixed") if several else "rounds",
            stopped=stopped,
            pairing=pairing,
        )

    @classmethod
    def identity(cls, baseline: str, rounds_per_process: tuple[int, ...], ci_over: str,
                 design: str | None = None, stopped: str | None = None,
                 pairing: str | None = None) -> PairedRatio:
        """The baseline against itself: exactly 1 in every round (timed in the rounds its
        variants were, ``pairing``)."""
        medians = (1.0,) * len(rounds_per_process) if ci_over == "processes" else ()
        return cls(baseline, 0.0, (0.0, 0.0), 1.0, (1.0, 1.0), (1.0,) * sum(rounds_per_process),
                   ci_over, len(rounds_per_process), rounds_per_process, medians, None,
                   design=design, stopped=stopped, pairing=pairing)

    @property
    def significant(self) -> bool:
        """True when the interval of the median ratio excludes 1 (no change)."""
        return self.ci95 is not None and (self.ci95[0] > 1.0 or self.ci95[1] < 1.0)

    @property
    def processes_disagree(self) -> bool:
        return stats.disagree(self.disagreement_p)

    @property
    def width_pct(self) -> float | None:
        """The interval's width in points of Δ%."""
        ci = self.delta_ci95_pct
        return None if ci is None else ci[1] - ci[0]

    def to_dict(self) -> dict[str, Any]:
        optional = ("ci_level", "design", "stopped", "pairing")  # written only when known
        return encode(self, ("baseline", "median", "ci95", "delta_pct", "delta_ci95_pct", "values",
                             "ci_over", "processes", "rounds_per_process", "process_medians",
                             "disagreement_p",
                             *(key for key in optional if getattr(self, key) is not None)))


@dataclass(frozen=True)
class VariantTiming(JsonRecord):
    """One variant of a comparison: its timing (ms) and its ratio to the baseline."""

    name: str
    record: LatencyRecord
    ratio: PairedRatio


@dataclass(frozen=True)
class DiscardedRound(JsonRecord):
    """A paired round re-run because other work was using the CPUs (kept for transparency)."""

    order: tuple[str, ...]
    other_cpus: float
    times_ms: dict[str, float]


def arm_key(condition_label: str, variant: str) -> str:
    """How a process names one (pass/mode, variant) it times: ``inference/eager:se``."""
    return f"{condition_label}:{variant}"


@dataclass(frozen=True)
class ProcessRun(JsonRecord):
    """What one fresh process measured, or why it failed.

    Its *arms* are the (pass/mode, variant) pairs it timed (:func:`arm_key`): every variant
    still undecided in each condition and that condition's baseline. ``samples_ms[arm][i]``
    is the arm's sample in measured round ``i`` (the mean of ``forwards[arm][i]`` calls; a
    baseline's, the geometric mean of its samples in the round); ``reference_ms[arm][i]`` the
    baseline bracket a variant's ratio in that round is taken against
    (:mod:`attnprof.latency.brackets`; absent in files written before bracketed rounds, whose
    ratios are against ``samples_ms`` of the baseline); ``order[i]`` the order the arms ran in
    that round, a baseline once before and once after each of its variants. ``warmup_rounds``
    rounds ran before them, discarded, and ``settled`` says whether the warm-up's stopping
    rule was met (:mod:`attnprof.latency.rounds`). ``first_call_s`` is each arm's first call
    (under compile, tracing and a cache hit; the compile itself is the build's).
    ``peak_memory`` maps an arm to ``(peak bytes, activation bytes, method)`` where measured
    (the first process).
    ``started_s`` is when the process started, in seconds since the run's timing began.
    """

    index: int
    seed: int | None
    arms: tuple[str, ...] = ()
    warmup_forwards: dict[str, int] = field(default_factory=dict)
    warmup_rounds: int = 0
    settled: bool = False
    samples_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)
    reference_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)
    forwards: dict[str, tuple[int, ...]] = field(default_factory=dict)
    order: tuple[tuple[str, ...], ...] = ()
    round_other_cpu_load: tuple[float | None, ...] = ()
    discarded_rounds: tuple[DiscardedRound, ...] = ()
    other_cpu_load: float | None = None
    peak_memory: dict[str, tuple[int | None, int | None, str]] = field(default_factory=dict)
    first_call_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    started_s: float = 0.0
    page_faults: int | None = None
    """Minor page faults of the process while it took its measured rounds."""
    allocator: str | None = None
    """What was set of the allocator before timing (``None``: left as it was)."""
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PairedComparison(JsonRecord):
    """The variants of one model in one pass and mode (``condition``), timed in rounds against
    ``baseline`` in the same fresh processes (:attr:`PairedRatio.pairing` says how), as
    ``spec`` asked.

    ``results`` holds one :class:`VariantTiming` per non-baseline variant, in the order the
    variants were given; ``baseline_ratio`` is the baseline against itself (exactly 1) over its
    own processes. ``processes`` counts the processes that timed the baseline (the most any
    variant had); ``workers`` what each process measured (every arm of its group), failed
    ones included.
    """

    baseline: str
    baseline_record: LatencyRecord
    baseline_ratio: PairedRatio
    results: tuple[VariantTiming, ...]
    spec: TimingSpec
    condition: Condition
    wall_s: float
    processes: int = 1
    workers: tuple[ProcessRun, ...] = ()
    environment: Environment | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def failed_processes(self) -> tuple[ProcessRun, ...]:
        return tuple(run for run in self.workers if not run.ok)

    def result(self, name: str) -> VariantTiming:
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
