"""How one group of variants is timed: one typed record, validated once, carried everywhere.

Caveats first: a :class:`TimingSpec` says how the timing *was asked for*; what actually ran
(the machine, how many processes, why each comparison stopped) is in the records the timing
produced (:mod:`attnprof.latency.records`). The spec is validated once, by :func:`timing_spec`
(what cannot run here is refused with one line); everything downstream (the scheduler, the
worker processes, the results file) takes the record as it is and never re-checks or re-packs
it field by field.

A *group* is one network at one input, device and batch size; its *conditions* are the pass x
mode pairs it is timed in (an eager forward, a compiled training step, an ONNX Runtime forward,
...). Every condition is a paired comparison of its own (each variant against the baseline
timed in the same rounds, the same pass and mode), and one fresh process times every
condition of the group, so the processes' start-up, model building and compilation are paid
once per process, not once per condition.

Replication (:class:`Replication`): a fixed number of fresh processes (``processes``; 1 means
this process only, and its interval describes that process), or, by default, *sequential*:
processes are added until every comparison's interval is narrow enough (``target_width``
points of Δ%, whichever side of the claim's ``threshold`` it lies), or ``max_processes`` or the
run's ``budget_s`` is reached. The intervals then come from
:mod:`attnprof.latency.sequential`, which keeps their coverage under that stopping.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from attnprof.errors import AttnprofError, choices
from attnprof.latency.defaults import (
    DEFAULT_MAX_WARMUP_ROUNDS,
    DEFAULT_ROUNDS,
    DEFAULT_SAMPLE_TIME,
    DEFAULT_SETTLE_TOLERANCE,
    MIN_WARMUP_ROUNDS,
)
from attnprof.latency.sequential import DEFAULT_MAX_PROCESSES, sequential_design
from attnprof.latency.stats import CI_LEVEL, min_samples_for_ci
from attnprof.records_json import JsonRecord

ALLOCATORS = {
    "steady": "glibc malloc with fixed thresholds (mmap above 32 MiB, trim above 256 MiB): "
              "freed activations are reused, not returned to the OS and faulted in again, as "
              "in a long-running server",
    "system": "the C library's allocator as the environment leaves it (glibc's dynamic "
              "thresholds: a fresh process pays page faults that a warm server does not)",
}
"""The allocator states a timing can measure, each with what it means."""
DEFAULT_ALLOCATOR = "steady"
DEFAULT_TARGET_WIDTH = 3.0
"""Points of Δ% (a ratio interval of 0.03): the width at which two runs can be expected to
agree within about 3 points. A comparison stopped at 6 points is decided, but two such runs
scatter by as much as the interval is wide (ResNet-50's SGE: 4.5 points over eight runs)."""
DEFAULT_THRESHOLD = 5.0


@dataclass(frozen=True)
class Condition(JsonRecord):
    """One pass x mode of a group: a paired comparison of its own."""

    pass_name: str = "inference"
    mode: str = "eager"

    @property
    def label(self) -> str:
        """``inference/eager``: how arms and logs name it."""
        return f"{self.pass_name}/{self.mode}"


@dataclass(frozen=True)
class Replication(JsonRecord):
    """How many fresh processes stand behind an interval, and when to stop adding them.

    ``processes``: a fixed count (1: this process only), or ``None`` for sequential
    replication: stop a comparison once its interval is at most ``target_width`` points wide,
    or after ``max_processes`` (the run's time budget, a property of the run, not of one
    comparison, is the scheduler's: :func:`attnprof.latency.schedule.run_groups`).
    ``threshold`` is the claim's Δ latency % the verdict is taken against.
    """

    processes: int | None = None
    max_processes: int = DEFAULT_MAX_PROCESSES
    target_width: float = DEFAULT_TARGET_WIDTH
    threshold: float = DEFAULT_THRESHOLD
    level: float = CI_LEVEL

    @property
    def sequential(self) -> bool:
        return self.processes is None

    @property
    def most(self) -> int:
        """The most processes a comparison may take."""
        return self.max_processes if self.sequential else self.processes  # type: ignore[return-value]

    def describe(self) -> str:
        if self.processes == 1:
            return "one process (the interval describes this process only)"
        if not self.sequential:
            return f"{self.processes} fresh processes"
        return (f"fresh processes until the interval is at most {self.target_width:g} points "
                f"wide (at most {self.max_processes})")


@dataclass(frozen=True)
class TimingSpec(JsonRecord):
    """Everything that decides how a group is timed; see the module docstring.

    ``device`` is resolved (``cpu``, ``cuda:0``); ``input_shape`` is ``(C, H, W)``;
    ``sample_time`` seconds of calls make one paired sample; ``rounds`` measured rounds per
    process after warm-up rounds (at most ``max_warmup_rounds``, until no arm ran more than
    ``settle_tolerance`` faster than its best warm-up round). ``allocator`` names the allocator
    state measured (:data:`ALLOCATORS`). ``max_other_cpus`` re-runs a round during which other
    work kept more CPUs busy. ``seed`` orders the rounds (``seed + process index``) and seeds
    the input and each variant's weights, the same in every process.
    """

    device: str
    threads: int
    batch: int
    input_shape: tuple[int, ...]
    conditions: tuple[Condition, ...] = (Condition(),)
    dtype: str = "float32"
    channels_last: bool = False
    compile_mode: str = "default"
    optimizer: str = "none"
    sample_time: float = DEFAULT_SAMPLE_TIME
    rounds: int = DEFAULT_ROUNDS
    max_warmup_rounds: int = DEFAULT_MAX_WARMUP_ROUNDS
    settle_tolerance: float = DEFAULT_SETTLE_TOLERANCE
    replication: Replication = Replication()
    allocator: str = DEFAULT_ALLOCATOR
    max_other_cpus: float | None = None
    shuffle: bool = True
    seed: int = 0
    memory: bool = True

    def with_conditions(self, conditions: tuple[Condition, ...]) -> TimingSpec:
        return replace(self, conditions=conditions)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise AttnprofError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive(name: str, value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            or not math.isfinite(value)):
        raise AttnprofError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AttnprofError(f"{name} must be a number, got {value!r}")
    return float(value)


def replication_plan(processes: int | None = None, *, max_processes: int = DEFAULT_MAX_PROCESSES,
                target_width: float = DEFAULT_TARGET_WIDTH, threshold: float = DEFAULT_THRESHOLD,
                level: float = CI_LEVEL, rounds: int = DEFAULT_ROUNDS) -> Replication:
    """A checked :class:`Replication` (``rounds``: per process, checked against it)."""
    if isinstance(level, bool) or not isinstance(level, float) or not 0.0 < level < 1.0:
        raise AttnprofError(f"level must be a probability strictly between 0 and 1, got "
                            f"{level!r}")
    needed = min_samples_for_ci(level)
    if processes is not None and (
            not isinstance(processes, int) or isinstance(processes, bool)
            or not (processes == 1 or processes >= needed)):
        raise AttnprofError(
            f"processes must be 1 (this process only), at least {needed} (the fewest fresh "
            f"processes for a {level:.0%} interval across processes), or unset (sequential: "
            f"fresh processes until the interval is narrow), got {processes!r}"
        )
    if processes == 1:
        _positive_int("rounds (with processes=1)", rounds, needed)
    else:
        _positive_int("rounds", rounds)
    max_processes = _positive_int("max_processes", max_processes)
    if processes is None:
        sequential_design(level, max_processes)  # refuses a horizon too short for an interval
    return Replication(
        processes=processes, max_processes=max_processes,
        target_width=_positive("target_width", target_width),
        threshold=_number("threshold", threshold),
        level=level,
    )


def timing_spec(
    *,
    device: str = "cpu",
    threads: int | None = None,
    batch: int = 1,
    input_shape: tuple[int, ...] = (3, 224, 224),
    conditions: tuple[Condition, ...] = (Condition(),),
    dtype: str = "float32",
    channels_last: bool = False,
    compile_mode: str | bool = "default",
    optimizer: str = "none",
    sample_time: float = DEFAULT_SAMPLE_TIME,
    rounds: int = DEFAULT_ROUNDS,
    max_warmup_rounds: int = DEFAULT_MAX_WARMUP_ROUNDS,
    settle_tolerance: float = DEFAULT_SETTLE_TOLERANCE,
    replication: Replication | None = None,
    allocator: str = DEFAULT_ALLOCATOR,
    max_other_cpus: float | None = None,
    shuffle: bool = True,
    seed: int = 0,
    memory: bool = True,
) -> TimingSpec:
    """The one place a timing's settings are checked; refuses what cannot run here.

    Every mode of ``conditions`` must be available on the device (its pip extra installed, a
    C++ compiler for compile and aoti, ...) and able to time its pass; the first that is not
    is refused with one line saying why and what would run.
    """
    from attnprof.latency.modes import check_condition
    from attnprof.latency.settings import (
        resolve_compile,
        resolve_device,
        resolve_dtype,
        resolve_threads,
    )
    from attnprof.passes import check_optimizer

    resolved = resolve_device(device)
    if not conditions:
        raise AttnprofError("a timing needs at least one pass and mode")
    if len(set(conditions)) != len(conditions):
        raise AttnprofError(f"conditions repeat: {[c.label for c in conditions]}")
    precision = resolve_dtype(dtype, resolved)
    for condition in conditions:
        check_condition(condition, resolved, precision)
    if allocator not in ALLOCATORS:
        raise AttnprofError(f"unknown allocator {allocator!r}; valid: {choices(ALLOCATORS)}")
    if any(c.mode == "compile" for c in conditions):
        compile_mode = resolve_compile(compile_mode or True, resolved) or "default"
    elif compile_mode is True or not compile_mode:
        compile_mode = "default"
    # a given plan is checked as a new one is (a horizon too short for an interval, a
    # fixed count too small for one, a width or threshold that is not a finite number)
    plan = replication_plan(**asdict(replication or Replication()), rounds=rounds)
    if plan.processes == 1:
        # one process times in the caller's own, whose allocator attnprof leaves as it is:
        # the state measured is the system's, and the record says so
        allocator = "system"
    return TimingSpec(
        device=str(resolved) if resolved.type == "cpu" else f"cuda:{resolved.index or 0}",
        threads=resolve_threads(threads),
        batch=_positive_int("batch", batch),
        input_shape=tuple(int(d) for d in input_shape),
        conditions=tuple(conditions),
        dtype=precision,
        channels_last=bool(channels_last),
        compile_mode=str(compile_mode),
        optimizer=check_optimizer(optimizer),
        sample_time=_positive("sample_time", sample_time),
        rounds=_positive_int("rounds", rounds),
        # what runs: at least MIN_WARMUP_ROUNDS, whatever was asked (the settling rule
        # compares a round with an earlier one)
        max_warmup_rounds=max(_positive_int("max_warmup_rounds", max_warmup_rounds, 0),
                              MIN_WARMUP_ROUNDS),
        settle_tolerance=_positive("settle_tolerance", settle_tolerance),
        replication=plan,
        allocator=allocator,
        max_other_cpus=None if max_other_cpus is None else _positive("max_other_cpus",
                                                                      max_other_cpus),
        shuffle=bool(shuffle),
        seed=int(seed),
        memory=bool(memory),
    )
