"""How much of a variant's Δ latency its extra bytes and its extra operators explain.

Caveats first: an additive estimate, not a measurement of causes. The bytes part is the
variant's extra bytes (``full`` convention: eager, unfused) at the probed DRAM bandwidth; a
feature map that fits in cache moves faster, so it can overstate. The operators part is the
variant's extra operator calls (profiled, at the ``full`` count's level) times the probed fixed
cost of one eager operator on a tiny tensor (Python binding, dispatch, allocation); calls that
a composite operator makes from C++ skip the Python binding, so it can overstate too. An
operator pays both, so the two parts may overlap; ``left`` is what neither accounts for
(negative when together they exceed the Δ).
"""

from __future__ import annotations

import math

from attnprof.attribution.records import Explanation, GroupAttribution
from attnprof.errors import AttnprofError
from attnprof.machine import MachineLimits, bytes_time_s


def explain(
    attribution: GroupAttribution,
    variant: str,
    limits: MachineLimits,
    delta_ms: float | None = None,
    delta_bytes: int | None = None,
) -> Explanation:
    """Explain ``variant``'s Δ (ms per forward) against the group's baseline.

    ``delta_ms`` should be the paired latency's Δ where there is one (default: the
    attribution's own profiled Δ, said so in ``delta_ms_source``); ``delta_bytes`` the ``full``
    count's Δ bytes (default: the attribution's own ``full`` count of the same forwards).
    ``limits`` must come from a probe that measured the fixed cost per operator.
    """
    if not isinstance(attribution, GroupAttribution):
        raise AttnprofError(f"attribution must be a GroupAttribution, got "
                            f"{type(attribution).__name__}")
    if not isinstance(limits, MachineLimits):
        raise AttnprofError(f"limits must be a MachineLimits, got {type(limits).__name__}")
    cost = limits.op_fixed_cost_us
    if cost is None:
        raise AttnprofError("the machine limits carry no fixed cost per operator (a probe from "
                            "before it was measured): probe the machine again")
    found = attribution.variant(variant)
    base = attribution.variant(attribution.baseline)
    if delta_ms is None:
        delta_ms, ms_source = attribution.delta_ms(variant), "profiled forwards (mean span)"
    else:
        ms_source = "given"
        if isinstance(delta_ms, bool) or not isinstance(delta_ms, (int, float)) \
                or not math.isfinite(delta_ms):
            raise AttnprofError(f"delta_ms must be a finite number (ms), got {delta_ms!r}")
    if delta_bytes is None:
        counts = [sum(scope.bytes for scope in v.scopes if scope.bytes is not None)
                  if all(scope.bytes is not None for scope in v.scopes) else None
                  for v in (found, base)]
        if None in counts:
            raise AttnprofError(f"{variant}: the attribution has no full count of bytes; "
                                "give delta_bytes")
        delta_bytes, bytes_source = counts[0] - counts[1], "full count of the profiled forwards"
    else:
        bytes_source = "given"
        if isinstance(delta_bytes, bool) or not isinstance(delta_bytes, int):
            raise AttnprofError(f"delta_bytes must be an integer (bytes), got {delta_bytes!r}")
    extra = attribution.extra_calls(variant)
    bytes_ms = math.copysign(bytes_time_s(abs(delta_bytes), limits), delta_bytes) * 1e3
    calls_ms = extra * cost / 1e3
    return Explanation(
        variant=variant, delta_ms=float(delta_ms), delta_ms_source=ms_source,
        delta_bytes=delta_bytes, delta_bytes_source=bytes_source, extra_calls=extra,
        bandwidth_bytes_per_s=limits.bandwidth_bytes_per_s, op_fixed_cost_us=cost,
        bytes_ms=bytes_ms, calls_ms=calls_ms, left_ms=float(delta_ms) - bytes_ms - calls_ms,
    )
