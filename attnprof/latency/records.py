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
    ``forwards_per_sample`` forwards (a block in the paired design is one round). ``median_ms``,
    ``iqr_ms`` and ``ci95_ms`` summarise them; ``ci95_ms`` is the distribution-free
    order-statistic interval of the median, whose exact coverage is ``ci_level``.
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
    ci95_ms: tuple[float, float]
    ci_level: float
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

    @classmethod
    def from_times(cls, times_ms: Sequence[float], *, batch: int, **meta) -> LatencyRecord:
        """Build a record from raw per-forward samples, deriving the summary statistics."""
        times = tuple(float(t) for t in times_ms)
        mid = stats.median(times)
        ci = stats.median_ci(times)
        return cls(
            batch=batch,
            median_ms=mid,
            iqr_ms=stats.iqr(times),
            ci95_ms=(ci.lo, ci.hi),
            ci_level=ci.coverage,
            samples=len(times),
            images_per_s=batch * 1000.0 / mid,
            times_ms=times,
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
    """One variant against the baseline, from interleaved rounds.

    ``ratios[i]`` is this variant's sample divided by the baseline's sample of round ``i``;
    ``ratio_median`` and its order-statistic interval ``ratio_ci95`` summarise them, and
    ``delta_pct`` / ``delta_ci95_pct`` restate them as a percentage change
    (``100 * (ratio - 1)``). ``record`` holds the variant's per-round samples in ms.
    """

    name: str
    baseline: str
    rounds: int
    ratios: tuple[float, ...]
    ratio_median: float
    ratio_ci95: tuple[float, float]
    ratio_ci_level: float
    delta_pct: float
    delta_ci95_pct: tuple[float, float]
    record: LatencyRecord

    @classmethod
    def from_samples(
        cls, name: str, baseline: str, variant_ms: Sequence[float], baseline_ms: Sequence[float],
        record: LatencyRecord,
    ) -> PairedResult:
        mid, ci, values = stats.median_ratio_ci(variant_ms, baseline_ms)
        return cls(
            name=name,
            baseline=baseline,
            rounds=len(values),
            ratios=tuple(values),
            ratio_median=mid,
            ratio_ci95=(ci.lo, ci.hi),
            ratio_ci_level=ci.coverage,
            delta_pct=100.0 * (mid - 1.0),
            delta_ci95_pct=(100.0 * (ci.lo - 1.0), 100.0 * (ci.hi - 1.0)),
            record=record,
        )

    @property
    def significant(self) -> bool:
        """True when the interval of the median ratio excludes 1 (no change)."""
        return self.ratio_ci95[0] > 1.0 or self.ratio_ci95[1] < 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**encode(self), "significant": self.significant}  # derived


@dataclass(frozen=True)
class DiscardedRound(JsonRecord):
    """A paired round re-run because other work was using the CPUs (kept for transparency)."""

    order: tuple[str, ...]
    other_cpus: float
    times_ms: dict[str, float]


@dataclass(frozen=True)
class PairedComparison(JsonRecord):
    """The variants of one model measured in interleaved rounds against ``baseline``.

    ``order[i]`` is the order the models ran in during round ``i`` (shuffled with ``seed``
    when ``shuffle`` is true). ``results`` holds one :class:`PairedResult` per non-baseline
    variant, in the order the variants were given.
    """

    baseline: str
    baseline_record: LatencyRecord
    results: tuple[PairedResult, ...]
    rounds: int
    shuffle: bool
    seed: int | None
    order: tuple[tuple[str, ...], ...]
    sample_time_s: float
    wall_s: float
    environment: Environment | None = None
    notes: tuple[str, ...] = field(default=())
    round_other_cpu_load: tuple[float | None, ...] = field(default=())
    """Per round, the average logical CPUs busy with other work (see ``other_cpu_load``):
    shows which rounds a neighbour disturbed."""
    max_other_cpus: float | None = None
    """The re-run threshold in force (``None``: contended rounds were kept)."""
    discarded_rounds: tuple[DiscardedRound, ...] = field(default=())

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
