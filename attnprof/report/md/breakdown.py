"""Where the time goes: per variant, the attention operators' count, measured time and share
of the Δ beside their ``full`` FLOPs and bytes; and how much of the Δ the extra bytes and the
extra operators' fixed cost explain."""

from __future__ import annotations

from attnprof.report import columns as c
from attnprof.report.breakdown import ATTRIBUTION_TOLERANCE, BreakdownRow, GroupBreakdown
from attnprof.report.formats import fmt_ms
from attnprof.report.md.table import table, title
from attnprof.report.model import Report


def breakdown_section(report: Report) -> str:
    groups = report.breakdowns
    if not groups:
        return ""
    out = [
        "## Where the time goes",
        "",
        "Each group's variants profiled in one process (operator by operator, the attention "
        "modules' apart from the backbone's): per variant, its attention modules' operator "
        "calls per module and in all, those beyond the baseline's, their measured time per "
        "forward and its share of the variant's profiled Δ, beside the `full` count's FLOPs "
        "and bytes of the same operators. Times are of profiled forwards, which the profiler "
        "slows a little; shares are within them.",
        "",
        "The explanation splits each variant's Δ (the paired timing's where the group was "
        "timed in the same mode, else the profiled one) into what its extra bytes cost at "
        "the probed bandwidth, what its extra operator calls cost at the probed fixed cost "
        "of one eager operator, and what is left. It is an additive estimate: an operator "
        "pays both, and a small tensor in cache moves faster than the bandwidth, so the two "
        "parts can overlap or overshoot (left below 0).",
    ]
    for group in groups:
        extra = f"{group.device} b{group.batch}" + (
            f" {group.mode}" if group.mode != "eager" else "")
        if group.machine:
            extra = f"{group.machine} {extra}"
        out += ["", title(group.backbone, group.setting, extra), ""]
        if group.attribution is None:
            out.append(f"Not profiled: {group.error}")
            continue
        out += [_about(group), "", _operators(group.rows)]
        explained = [row for row in group.rows if row.explanation is not None]
        if explained:
            out += ["", _explanations(explained)]
        for note in dict.fromkeys(row.note for row in group.rows if row.note):
            out += ["", f"No explanation: {note}."]
    return "\n".join(out)


def _about(group: GroupBreakdown) -> str:
    found = group.attribution
    base = found.variant(found.baseline)
    line = (f"{found.runtime}, profiled by {found.profiler}; {found.threads} threads, "
            f"{found.dtype}. The baseline's profiled forward: {fmt_ms(base.forward_ms)} ms, "
            f"{base.calls} operator calls")
    if base.profiler_ms is not None:
        line += f" ({fmt_ms(base.forward_ms - base.profiler_ms)} ms unprofiled)"
    gap = group.largest_gap
    if gap is None:
        line += "."
    elif gap <= ATTRIBUTION_TOLERANCE:
        line += (f". The operators, dispatch and time between them account for each variant's "
                 f"profiled forward within {100 * gap:.1f}%.")
    else:
        line += (f". The operators and the time between them differ from a variant's profiled "
                 f"forward by up to {100 * gap:.1f}%, more than "
                 f"{100 * ATTRIBUTION_TOLERANCE:.0f}%: the shares below are approximate.")
    if group.noisy:
        line += (f" Noisy (profiled forwards scattered): {', '.join(group.noisy)}; their "
                 "times are means of the faster half.")
    return line


def _operators(rows: tuple[BreakdownRow, ...]) -> str:
    columns = [c.VARIANT, c.OPS_PER_BLOCK, c.ATTENTION_OPS, c.EXTRA_OPS, c.ATTENTION_MS,
               c.PROFILED_DELTA_MS, c.SHARE, c.ATTENTION_MFLOP, c.ATTENTION_MB, c.HEAVIEST]
    body = []
    for row in rows:
        low_high = row.calls_per_module
        per = (None if low_high is None else str(low_high[0]) if low_high[0] == low_high[1]
               else f"{low_high[0]}–{low_high[1]}")
        heaviest = ", ".join(f"{op.removeprefix('aten::')} {fmt_ms(ms)}"
                             for op, ms in row.heaviest)
        body.append([
            f"{row.variant} ({row.modules} modules)", per, row.attention_calls,
            row.extra_calls, row.attention_ms, row.profiled_delta_ms, row.share, row.flops,
            row.bytes, heaviest,
        ])
    return table(columns, body)


def _explanations(rows: list[BreakdownRow]) -> str:
    columns = [c.VARIANT, c.DELTA_MS, c.DELTA_SOURCE, c.DELTA_MB, c.BYTES_PART, c.BYTES_SHARE,
               c.CALLS_PART, c.CALLS_SHARE, c.LEFT_PART, c.LEFT_SHARE]
    body = []
    for row in rows:
        x = row.explanation
        body.append([row.variant, x.delta_ms, row.delta_source, x.delta_bytes, x.bytes_ms,
                     x.bytes_share, x.calls_ms, x.calls_share, x.left_ms, x.left_share])
    return table(columns, body)
