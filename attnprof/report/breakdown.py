"""Where the time goes: per variant, its attention operators (per module and in all), their
measured time and share of the variant's Δ, beside the ``full`` count's FLOPs and bytes of the
same operators; and how much of the Δ its extra bytes and its extra operators explain.

Caveats first: the operator times are measured under a profiler (one process per group,
:mod:`attnprof.attribution`), which adds its own cost to every call, so they are shares of a
profiled forward, not of the timed one; the profiled Δ and the paired Δ need not agree. The
explanation (:func:`attnprof.attribution.explain`) is an additive estimate: the Δ explained is
the paired timing's in ms where the group was timed in the same mode, pass, device and batch
(else the profiled one, and the row says which), the bytes are the attribution's own ``full``
count at the profiled batch size, the bandwidth and the fixed cost per operator the probe's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from attnprof.attribution import explain
from attnprof.attribution.records import Explanation, GroupAttribution, VariantAttribution
from attnprof.errors import AttnprofError
from attnprof.machine import MachineLimits
from attnprof.report.roofline import Limits, limits_for
from attnprof.report.tables import LatencyKey, delta_ms
from attnprof.results import AttributionEntry
from attnprof.suite.config import BASELINE

TOP_OPS = 3
"""How many of the longest attention operators a row names."""


ATTRIBUTION_TOLERANCE = 0.05
"""How far a variant's attributed time may be from its profiled forward (a fraction) before
the report calls its shares approximate."""

@dataclass(frozen=True)
class BreakdownRow:
    """One variant of a profiled group: its attention operators and the explanation of its Δ.

    ``calls_per_module``: the fewest and most operator calls of one attention module per
    forward; ``attention_calls``: of all of them; ``extra_calls``: beyond the baseline's;
    ``attention_ms``: measured inside the modules per forward; ``share``: that over the
    profiled Δ; ``flops`` and ``bytes``: the ``full`` count of the same operators (``None``
    where a runtime's operators were not counted); ``heaviest``: (operator, ms) longest first.
    ``explanation`` is ``None`` where it cannot be given, and ``note`` says why.
    """

    variant: str
    modules: int
    calls_per_module: tuple[int, int] | None
    attention_calls: int
    extra_calls: int
    attention_ms: float
    profiled_delta_ms: float
    share: float | None
    flops: int | None
    bytes: int | None
    heaviest: tuple[tuple[str, float], ...]
    explanation: Explanation | None = None
    delta_source: str = ""
    note: str | None = None


@dataclass(frozen=True)
class GroupBreakdown:
    """One profiled group (network, setting, device, batch, mode), or why it was not."""

    backbone: str
    setting: str
    device: str
    batch: int
    mode: str
    machine: str | None
    attribution: GroupAttribution | None
    error: str | None
    rows: tuple[BreakdownRow, ...] = ()
    limits: MachineLimits | None = None

    @property
    def largest_gap(self) -> float | None:
        """The largest relative gap between a variant's attributed time and its profiled
        forward: the attribution accounts for every moment of the span when it is 0."""
        if self.attribution is None:
            return None
        return max(abs(v.attributed_ms - v.forward_ms) / v.forward_ms
                   for v in self.attribution.variants)

    @property
    def noisy(self) -> tuple[str, ...]:
        """Variants whose profiled forwards scattered (see ``VariantAttribution.noisy``)."""
        if self.attribution is None:
            return ()
        return tuple(v.variant for v in self.attribution.variants if v.noisy)


def _key(keys: Sequence[LatencyKey], entry: AttributionEntry, threads: int) -> LatencyKey | None:
    """The paired timing of the same machine, device, batch and mode, as an inference pass."""
    return next((k for k in keys if (k.machine, k.device, k.batch, k.pass_name, k.mode)
                 == (entry.machine, entry.device, entry.batch, "inference", entry.mode)
                 and k.threads in (None, threads)), None)


def _heaviest(found: VariantAttribution) -> tuple[tuple[str, float], ...]:
    return tuple((row.op, row.ms) for row in found.attention_ops[:TOP_OPS])


def _total(values) -> int | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def group_breakdowns(entries: Sequence[AttributionEntry], frame: pd.DataFrame,
                     keys: Sequence[LatencyKey], limits: Limits) -> list[GroupBreakdown]:
    """A :class:`GroupBreakdown` per attribution entry, in the document's order."""
    records = frame.to_dict("records")
    out = []
    for entry in entries:
        head = (entry.network, entry.setting, entry.device, entry.batch, entry.mode,
                entry.machine)
        group = entry.attribution
        if group is None:
            out.append(GroupBreakdown(*head, None, entry.error or "no attribution recorded"))
            continue
        probed = limits_for(limits, entry.machine, entry.device, group.dtype)
        key = _key(keys, entry, group.threads)
        rows_of = {r["variant"]: r for r in records
                   if (r["backbone"], r["setting"]) == (entry.network, entry.setting)
                   and r["status"] == "ok"}
        rows = tuple(_row(group, found, probed, key, rows_of)
                     for found in group.variants if found.variant != group.baseline)
        out.append(GroupBreakdown(*head, group, entry.error, rows, probed))
    return out


def _row(group: GroupAttribution, found: VariantAttribution, probed: MachineLimits | None,
         key: LatencyKey | None, rows_of: dict[str, dict]) -> BreakdownRow:
    name = found.variant
    paired = (delta_ms(rows_of[name], rows_of.get(BASELINE), key)
              if key is not None and name in rows_of else None)
    explanation, note = None, None
    if group.runtime != "eager":
        # the probe's fixed cost is an eager PyTorch operator's, and the runtime's nodes carry
        # no full count of bytes: pricing them so would explain nothing
        note = (f"not split into bytes and operators: the probe prices eager PyTorch "
                f"operators, not {group.runtime}'s nodes")
    elif probed is None:
        note = "the machine's limits were not probed"
    elif probed.op_fixed_cost_us is None:
        note = "the probe did not measure a fixed cost per operator (probed before it was)"
    else:
        try:
            explanation = explain(group, name, probed, delta_ms=paired)
        except AttnprofError as exc:
            note = str(exc)
    return BreakdownRow(
        variant=name,
        modules=len(found.modules),
        calls_per_module=found.calls_per_module,
        attention_calls=found.attention_calls,
        extra_calls=group.extra_calls(name),
        attention_ms=found.attention_ms,
        profiled_delta_ms=group.delta_ms(name),
        share=group.attention_share(name),
        flops=_total(scope.flops for scope in found.modules),
        bytes=_total(scope.bytes for scope in found.modules),
        heaviest=_heaviest(found),
        explanation=explanation,
        delta_source=f"paired {key.label}" if paired is not None else "profiled",
        note=note,
    )
