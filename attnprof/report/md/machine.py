"""The machine's limits and each timed cell against its roofline."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from attnprof.report import columns as c
from attnprof.report.md.table import table, title
from attnprof.report.model import Report
from attnprof.report.roofline import LimitRow, other_batches
from attnprof.suite.config import BASELINE


def limits_section(report: Report) -> str:
    rows, limits = report.limits, report.machine
    if not limits:
        return ""
    out = ["## The machine's limits", ""]
    for label, m in limits:
        where = f"{label} {m.device}" if label else m.device
        fixed = (f"; fixed cost of one eager operator {m.op_fixed_cost_us:.2f} µs "
                 f"({m.op_fixed_cost_method})" if m.op_fixed_cost_us is not None else "")
        out.append(
            f"- **{where}**, {m.dtype}, {m.threads} threads: memory bandwidth "
            f"{m.bandwidth_gb_per_s:.1f} GB/s ({m.bandwidth_method}); peak "
            f"{m.peak_gflops_per_s:.1f} GFLOP/s ({m.peak_flops_method}); ridge point "
            f"{m.ridge_point:.1f} FLOP/byte{fixed}."
        )
    skipped = other_batches(report.document, report.latency_keys)
    if skipped:
        out += ["", f"Timings at batch {', '.join(map(str, skipped))} have no roofline row: "
                f"the counts are for a batch of {report.suite.count_batch}."]
    if not rows:
        out += ["", "No timed cell has FLOP and byte counts to set against these limits."]
        return "\n".join(out)
    source = next((name for name in report.byte_conventions
                   if report.units[name] == "FLOP"), "full")
    out += [
        "",
        "Each timed cell against the roofline, max(FLOPs / peak, bytes / bandwidth), from its "
        f"`{source}` counts (the training step's for a train pass; eager, unfused bytes, which "
        "a compiler's fusion lowers). Δ bytes alone: what the variant's extra bytes cost at the "
        "measured bandwidth; measured / bytes alone near 1 means the module's cost is its "
        "memory traffic, far above 1 that it runs below the machine's bandwidth (small "
        "kernels, launch and framework overhead).",
    ]
    for line in _verdicts(rows):
        out.append(f"- {line}")
    beyond = [r for r in rows if r.of_bound_pct > 100]
    if beyond:
        out.append(
            f"- {len(beyond)} of {len(rows)} timed cells ran faster than their bound (of bound "
            "above 100%): their kernels reached more than the probe's GEMM and convolution, or "
            "did less arithmetic than the convention counts (a Winograd or FFT convolution), "
            "or their data stayed in cache. For them the bound is not a limit; it is shown, "
            "not hidden."
        )
    columns = [c.VARIANT, c.MEASURED_MS, c.BOUND_MS, c.BOUND_BY, c.OF_BOUND, c.ACHIEVED_FLOPS,
               c.ACHIEVED_BYTES, c.LIMIT_DELTA_MB, c.BYTES_ALONE_MS, c.DELTA_MEASURED_MS,
               c.OVER_BYTES_ALONE]
    for backbone, setting, key in dict.fromkeys((r.backbone, r.setting, r.key) for r in rows):
        body = []
        for r in rows:
            if (r.backbone, r.setting, r.key) != (backbone, setting, key):
                continue
            base = r.variant == BASELINE
            body.append([
                r.variant + (" (baseline)" if base else ""), r.measured_ms,
                r.bound_ms, r.bound, r.of_bound_pct, r.achieved_flops_per_s,
                r.achieved_bytes_per_s, *(None if base else x for x in (
                    r.delta_bytes, r.bytes_alone_ms, r.delta_ms, r.over_bytes_alone)),
            ])
        out += ["", title(backbone, setting, key.label), "", table(columns, body)]
    return "\n".join(out)


def _verdicts(rows: Sequence[LimitRow]) -> list[str]:
    """One sentence per pass and mode: the median of measured / bytes alone over variants."""
    lines = []
    for key in dict.fromkeys(r.key for r in rows):
        ratios = [r.over_bytes_alone for r in rows
                  if r.key == key and r.over_bytes_alone is not None]
        if not ratios:
            continue
        lines.append(
            f"{key.label}: the median variant's measured Δ is "
            f"{statistics.median(ratios):.1f}x what its extra bytes alone would cost at the "
            f"measured bandwidth ({len(ratios)} variants slower than their baseline)."
        )
    return lines
