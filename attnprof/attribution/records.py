"""The typed records of an attribution: measured time per operator, per attention module.

Caveats first: every time here was measured *under a profiler*, which adds its own cost to
each operator call (a few microseconds on a CPU), so a profiled forward is slower than an
unprofiled one; both are kept (``span_ms``, ``unprofiled_ms``) so a reader can see by how much.
Shares and sums are taken within profiled forwards only, and over the faster half of them
(:func:`faster_half`): on a shared machine a neighbour only ever slows a forward down, by up
to 30x on the 2-core machine this was written on, and averaging whole forwards keeps every
row adding up to the span it came from.

Units: milliseconds per forward of the whole batch (``*_ms``), calls per forward, FLOPs and
bytes per forward under the ``full`` convention (every aten op priced; bytes eager and unfused,
see :mod:`attnprof.counting.rules`).

The records are runtime-neutral: what a runtime's profiler has to supply is a list of
:class:`OpEvent` per forward (an operator type, its node name where it has one, the attention
module it ran in, its duration) plus the forward's span;
:func:`~attnprof.attribution.aggregate.attribute_variant` turns that into a
:class:`VariantAttribution`. Eager PyTorch feeds it from
``torch.profiler`` (:mod:`attnprof.attribution.eager`); another runtime's trace (ONNX Runtime's
per-node JSON, say) fits the same shape, with ``counted_calls``, ``flops`` and ``bytes`` left
``None`` where its operators are not aten ops.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from attnprof.errors import AttnprofError
from attnprof.latency import stats
from attnprof.latency.records import HIGH_VARIANCE_IQR
from attnprof.records_json import JsonRecord

EVENT_KINDS = ("op", "dispatch", "between")
"""What a stretch of a profiled forward was:

- ``op``: one operator call at the level the ``full`` count counts (for eager PyTorch, see
  :mod:`attnprof.attribution.levels`), from its start to its end, what it called included;
- ``dispatch``: the own time of a composite operator (``aten::linear``, ``aten::conv2d``) that
  only handed its work to the counted operators inside it;
- ``between``: time inside the forward but inside no operator: the Python of ``forward``
  methods, module calls and hooks (attnprof's own labelling hooks included), what a runtime
  does between nodes.
"""

BACKBONE = ""
"""The scope of everything outside the attention modules."""


@dataclass(frozen=True)
class OpEvent:
    """One stretch of one profiled forward: ``kind`` (:data:`EVENT_KINDS`), the operator type
    (``aten::sigmoid``; an ONNX op type; ``""`` for ``between``), the attention module it ran
    in (``scope``, :data:`BACKBONE` outside all), its duration in microseconds, and the node
    name where the runtime has one."""

    kind: str
    op: str
    scope: str
    duration_us: float
    name: str = ""

    def __post_init__(self):
        if self.kind not in EVENT_KINDS:
            raise AttnprofError(f"event kind {self.kind!r} is not one of {', '.join(EVENT_KINDS)}")
        if not self.duration_us >= 0:
            raise AttnprofError(f"event {self.op or self.kind!r} has a negative duration "
                                f"({self.duration_us!r} us)")


@dataclass(frozen=True)
class ForwardProfile:
    """One profiled forward: its span as the profiler timed it, the same forward as a
    ``perf_counter`` around it saw it (``wall_us``, ``None`` when not taken), every stretch
    of time inside the span, and how many events the profiler recorded inside it (every
    level of nesting; ``None`` when the runtime does not say), which is what its own cost
    scales with."""

    span_us: float
    events: tuple[OpEvent, ...]
    wall_us: float | None = None
    recorded: int | None = None


@dataclass(frozen=True)
class OpRow(JsonRecord):
    """One operator type in one scope, per forward.

    ``calls`` and ``ms`` as profiled (``ms`` is the mean over the profiled forwards of the
    calls' durations, what each call ran inside it included). ``counted_calls``, ``flops`` and
    ``bytes`` are the ``full`` count of the same operator in the same scope: in eager mode
    ``counted_calls == calls`` (checked by the tests); ``flops`` is ``None`` where the
    convention has no rule for the operator (reported, not counted as 0); all three ``None``
    where nothing was counted (another runtime's operator types).
    """

    op: str
    calls: int
    ms: float
    counted_calls: int | None = None
    flops: int | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class ScopeAttribution(JsonRecord):
    """The time of one attention module's forward (or of the backbone, scope ``""``), split.

    ``ops`` are its operators, longest first; ``dispatch_ms`` the own time of the composite
    operators that dispatched to them; ``between_ms`` its time outside any operator (see
    :data:`EVENT_KINDS`). ``stage`` is the module's stage as the model tags it.
    """

    scope: str
    stage: int | None
    ops: tuple[OpRow, ...]
    dispatch_ms: float
    between_ms: float

    @property
    def calls(self) -> int:
        """Operator calls per forward, as profiled."""
        return sum(row.calls for row in self.ops)

    @property
    def counted_calls(self) -> int | None:
        """Operator calls per forward under the ``full`` count (``None``: not counted)."""
        counted = [row.counted_calls for row in self.ops]
        return None if any(c is None for c in counted) else sum(counted)

    @property
    def op_ms(self) -> float:
        return sum(row.ms for row in self.ops)

    @property
    def ms(self) -> float:
        """Everything measured in this scope per forward."""
        return self.op_ms + self.dispatch_ms + self.between_ms

    @property
    def flops(self) -> int | None:
        return _total(row.flops for row in self.ops)

    @property
    def bytes(self) -> int | None:
        return _total(row.bytes for row in self.ops)


@dataclass(frozen=True)
class VariantAttribution(JsonRecord):
    """Where one model's profiled forward time went.

    ``span_ms``: each profiled forward as the profiler timed it (its own top-level span);
    ``wall_ms``: the same forwards by ``perf_counter`` around them; ``unprofiled_ms``: as many
    forwards with neither profiler nor labels, for the profiler's own cost. ``scopes``: the
    backbone first, then each attention module in the order the forward ran them.
    ``recorded`` is the mean number of events the profiler recorded per forward (every level
    of nesting; ``None`` when unknown). Times per forward (the rows, :attr:`forward_ms`) are
    means over the forwards listed in ``kept``, the faster half (:func:`faster_half`), so that
    they add up; ``spread`` says how far all the forwards scattered.
    """

    variant: str
    span_ms: tuple[float, ...]
    wall_ms: tuple[float, ...]
    unprofiled_ms: tuple[float, ...]
    scopes: tuple[ScopeAttribution, ...]
    kept: tuple[int, ...]
    recorded: int | None = None

    def __post_init__(self):
        if not self.span_ms:
            raise AttnprofError(f"{self.variant}: an attribution needs at least one forward")
        if not self.kept or not all(0 <= i < len(self.span_ms) for i in self.kept):
            raise AttnprofError(f"{self.variant}: kept must index its forwards, got "
                                f"{self.kept!r} for {len(self.span_ms)}")
        if not self.scopes or self.scopes[0].scope != BACKBONE:
            raise AttnprofError(f"{self.variant}: the first scope must be the backbone ('')")

    @property
    def forwards(self) -> int:
        return len(self.span_ms)

    @property
    def forward_ms(self) -> float:
        """The mean profiled forward (span) over the kept forwards."""
        return sum(self.span_ms[i] for i in self.kept) / len(self.kept)

    @property
    def spread(self) -> float:
        """Interquartile range of the profiled spans over their median (0.05: within about
        5%); above :data:`~attnprof.latency.records.HIGH_VARIANCE_IQR` the means are noisy."""
        return stats.iqr(self.span_ms) / stats.median(self.span_ms)

    @property
    def noisy(self) -> bool:
        return self.spread > HIGH_VARIANCE_IQR

    @property
    def profiler_ms(self) -> float | None:
        """What profiling added per forward: :attr:`forward_ms` minus the mean of the faster
        half of the unprofiled forwards (``None`` without them). Divided by :attr:`recorded`,
        the profiler's cost per event."""
        if not self.unprofiled_ms:
            return None
        faster = [self.unprofiled_ms[i] for i in faster_half(self.unprofiled_ms)]
        return self.forward_ms - sum(faster) / len(faster)

    @property
    def attributed_ms(self) -> float:
        """Everything the events account for, per forward: equals :attr:`forward_ms` when
        each moment of the span is in exactly one event."""
        return sum(scope.ms for scope in self.scopes)

    @property
    def backbone(self) -> ScopeAttribution:
        return self.scopes[0]

    @property
    def modules(self) -> tuple[ScopeAttribution, ...]:
        """The attention modules' scopes (empty for a plain model)."""
        return self.scopes[1:]

    @property
    def calls(self) -> int:
        """Operator calls per forward, backbone and attention together."""
        return sum(scope.calls for scope in self.scopes)

    @property
    def attention_calls(self) -> int:
        return sum(scope.calls for scope in self.modules)

    @property
    def attention_ms(self) -> float:
        """Everything measured inside the attention modules, per forward."""
        return sum(scope.ms for scope in self.modules)

    @property
    def calls_per_module(self) -> tuple[int, int] | None:
        """The fewest and most operator calls of one attention module (``None``: none)."""
        calls = [scope.calls for scope in self.modules]
        return (min(calls), max(calls)) if calls else None

    @property
    def attention_ops(self) -> tuple[OpRow, ...]:
        """The attention modules' operators summed over all modules, longest first."""
        return merge_rows(row for scope in self.modules for row in scope.ops)


@dataclass(frozen=True)
class GroupAttribution(JsonRecord):
    """One group of variants profiled in one process: the same input, batch and threads.

    ``runtime`` is what ran the forwards (``"eager"``), ``profiler`` what timed the operators,
    ``level`` which operator calls count as one (the rule of
    :mod:`attnprof.attribution.levels` for eager PyTorch). ``other_cpu_load`` is the average
    number of CPUs other work kept busy while the group ran (``None``: unknown).
    """

    runtime: str
    profiler: str
    level: str
    input_shape: tuple[int, ...]
    batch: int
    threads: int
    dtype: str
    baseline: str
    warmup: int
    torch_version: str
    variants: tuple[VariantAttribution, ...]
    other_cpu_load: float | None = None

    def __post_init__(self):
        names = [v.variant for v in self.variants]
        if len(set(names)) != len(names):
            raise AttnprofError(f"variant names repeat in a group attribution: {names}")
        if self.baseline not in names:
            raise AttnprofError(f"the baseline {self.baseline!r} is not among the group's "
                                f"variants ({', '.join(names)})")

    def variant(self, name: str) -> VariantAttribution:
        for found in self.variants:
            if found.variant == name:
                return found
        raise AttnprofError(f"no variant {name!r} in this attribution; valid variants: "
                            f"{', '.join(v.variant for v in self.variants)}")

    def delta_ms(self, name: str) -> float:
        """The variant's mean profiled forward minus the baseline's (ms)."""
        return self.variant(name).forward_ms - self.variant(self.baseline).forward_ms

    def extra_calls(self, name: str) -> int:
        """Operator calls per forward the variant makes beyond the baseline's (negative when
        it makes fewer; SK, which replaces a convolution, removes some of its own)."""
        return self.variant(name).calls - self.variant(self.baseline).calls

    def attention_share(self, name: str) -> float | None:
        """The variant's attention time over its Δ (both profiled, per forward); ``None``
        when the Δ is not positive (no share of nothing)."""
        delta = self.delta_ms(name)
        return self.variant(name).attention_ms / delta if delta > 0 else None


@dataclass(frozen=True)
class Explanation(JsonRecord):
    """How much of one variant's Δ latency its extra bytes and its extra operators explain.

    Caveat first: this is an additive model, ``Δ ≈ Δbytes / bandwidth + extra calls x fixed
    cost + left``; an operator that moves bytes also pays its fixed cost, and a small tensor
    served from cache moves faster than the DRAM bandwidth, so the two parts are estimates
    side by side, not a decomposition that must add up. ``left_ms`` is what neither explains
    (negative: the two overshoot).

    ``delta_ms`` (per forward) and ``delta_bytes`` (``full`` convention) are as given, with
    where they came from; ``bandwidth_bytes_per_s`` and ``op_fixed_cost_us`` from the
    machine's probe (:class:`attnprof.machine.MachineLimits`).
    """

    variant: str
    delta_ms: float
    delta_ms_source: str
    delta_bytes: int
    delta_bytes_source: str
    extra_calls: int
    bandwidth_bytes_per_s: float
    op_fixed_cost_us: float
    bytes_ms: float
    calls_ms: float
    left_ms: float

    @property
    def bytes_share(self) -> float | None:
        """:attr:`bytes_ms` over :attr:`delta_ms` (``None`` when the Δ is not positive)."""
        return self.bytes_ms / self.delta_ms if self.delta_ms > 0 else None

    @property
    def calls_share(self) -> float | None:
        return self.calls_ms / self.delta_ms if self.delta_ms > 0 else None

    @property
    def left_share(self) -> float | None:
        return self.left_ms / self.delta_ms if self.delta_ms > 0 else None


def faster_half(values) -> tuple[int, ...]:
    """Indices of the values at or below their median, in order: the faster half of a set of
    timed forwards (with two, the faster one; with one, itself)."""
    values = list(values)
    middle = stats.median(values)
    return tuple(i for i, value in enumerate(values) if value <= middle)


def merge_rows(rows) -> tuple[OpRow, ...]:
    """Rows of the same operator summed (counts, times, FLOPs, bytes), longest first."""
    merged: dict[str, list] = defaultdict(lambda: [0, 0.0, [], [], []])
    for row in rows:
        entry = merged[row.op]
        entry[0] += row.calls
        entry[1] += row.ms
        entry[2].append(row.counted_calls)
        entry[3].append(row.flops)
        entry[4].append(row.bytes)
    out = [OpRow(op, calls, ms, _total(counted), _total(flops), _total(moved))
           for op, (calls, ms, counted, flops, moved) in merged.items()]
    return tuple(sorted(out, key=lambda row: (-row.ms, row.op)))


def _total(values) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else sum(values)
