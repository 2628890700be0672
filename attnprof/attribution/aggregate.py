"""Profiled forwards of any runtime -> one :class:`VariantAttribution`.

Caveat first: operator counts are per forward and must be the same in every profiled forward
(a forward that runs different operators from one call to the next has no per-forward count);
a difference is refused rather than averaged into a fraction of a call. Times are means over
the faster half of the forwards (:func:`~attnprof.attribution.records.faster_half`), whole
forwards at a time, so that the rows still add up to a span.

This is the one place events become rows, whatever produced them: eager PyTorch's profiler
(:mod:`attnprof.attribution.eager`) today, another runtime's trace cut into the same
:class:`OpEvent` stretches tomorrow (``counted`` then ``None``, or a count of its own ops).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from attnprof.attribution.counted import Counted
from attnprof.attribution.records import (
    BACKBONE,
    ForwardProfile,
    OpRow,
    ScopeAttribution,
    VariantAttribution,
    faster_half,
)
from attnprof.errors import AttnprofError


def attribute_variant(
    variant: str,
    profiles: Sequence[ForwardProfile],
    unprofiled_ms: Sequence[float],
    stages: Mapping[str, int | None],
    counted: Mapping[tuple[str, str], Counted] | None = None,
) -> VariantAttribution:
    """Sum ``profiles`` (one per forward) into rows per scope and operator.

    ``stages`` maps every attention module's scope to its stage, in the order the model lists
    them; a scope met in the events but not in ``stages`` is refused (it would be attention
    time attributed to nothing). ``counted`` is the ``full`` count by (scope, operator), put
    beside the profiled rows.
    """
    if not profiles:
        raise AttnprofError(f"{variant}: no profiled forward to attribute")
    kept = faster_half([p.span_us for p in profiles])
    forwards = len(kept)
    calls: list[Counter] = []
    us: dict[tuple[str, str], float] = defaultdict(float)
    dispatch: dict[str, float] = defaultdict(float)
    between: dict[str, float] = defaultdict(float)
    for index, profile in enumerate(profiles):
        seen: Counter = Counter()
        timed = index in kept
        for event in profile.events:
            if event.scope != BACKBONE and event.scope not in stages:
                raise AttnprofError(f"{variant}: time in {event.scope!r}, which is not one of "
                                    f"the model's attention modules")
            if event.kind == "op":
                seen[event.scope, event.op] += 1
            if not timed:
                continue
            if event.kind == "op":
                us[event.scope, event.op] += event.duration_us
            elif event.kind == "dispatch":
                dispatch[event.scope] += event.duration_us
            else:
                between[event.scope] += event.duration_us
        calls.append(seen)
    everywhere = set().union(*calls)
    changed = sorted(key for key in everywhere if len({seen[key] for seen in calls}) > 1)
    if changed:
        scope, op = changed[0]
        raise AttnprofError(f"{variant}: the operators differ between profiled forwards "
                            f"({op} in {scope or 'the backbone'}); a per-forward count needs "
                            "the same operators every forward")
    keys = everywhere | set(counted or {})
    scopes = []
    for scope in [BACKBONE, *stages]:
        rows = []
        for key in sorted(k for k in keys if k[0] == scope):
            count = None if counted is None else counted.get(key, Counted())
            rows.append(OpRow(
                op=key[1], calls=calls[0].get(key, 0), ms=us.get(key, 0.0) / forwards / 1e3,
                counted_calls=None if count is None else count.calls,
                flops=None if count is None else count.flops,
                bytes=None if count is None else count.bytes,
            ))
        rows.sort(key=lambda row: (-row.ms, row.op))
        scopes.append(ScopeAttribution(
            scope=scope, stage=stages.get(scope), ops=tuple(rows),
            dispatch_ms=dispatch.get(scope, 0.0) / forwards / 1e3,
            between_ms=between.get(scope, 0.0) / forwards / 1e3,
        ))
    return VariantAttribution(
        variant=variant,
        span_ms=tuple(p.span_us / 1e3 for p in profiles),
        wall_ms=tuple(p.wall_us / 1e3 for p in profiles if p.wall_us is not None),
        unprofiled_ms=tuple(float(t) for t in unprofiled_ms),
        scopes=tuple(scopes),
        kept=kept,
        recorded=_mean_recorded([p.recorded for p in profiles]),
    )


def _mean_recorded(recorded: list[int | None]) -> int | None:
    """Events the profiler recorded per forward, the mean rounded (``None`` if unknown)."""
    if any(r is None for r in recorded):
        return None
    return round(sum(recorded) / len(recorded))
