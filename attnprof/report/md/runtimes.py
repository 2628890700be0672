"""Passes, modes and runtimes: each module's Δ in every mode beside its Δ eager, in % and in
ms, how much of the eager overhead the mode took back, and the baseline's speed-up."""

from __future__ import annotations

from attnprof.report import columns as c
from attnprof.report.formats import fmt_ms
from attnprof.report.md.table import table, title
from attnprof.report.model import Report


def runtimes_section(report: Report) -> str:
    comparisons = report.runtimes
    if not comparisons:
        return ""
    out = [
        "## Modes and runtimes",
        "",
        "Each variant's Δ latency eager and in each other mode or runtime, each against the "
        "baseline timed in the same mode and rounds. A runtime that speeds up the backbone "
        "but not the module raises the module's Δ% without changing its cost, so the "
        "overhead is also given in ms (the baseline's median times the Δ%). Recovered: the "
        "share of the eager overhead in ms that the mode no longer pays, 1 − Δ ms in the "
        "mode / Δ ms eager, where the eager overhead is established (its 95% interval above "
        "0); negative when the mode costs the module more time than eager.",
        "",
    ]
    modes = list(dict.fromkeys(x.other.mode for x in comparisons))
    for mode in modes:
        said = next(x.description for x in comparisons if x.other.mode == mode)
        out.append(f"- **{mode}**: {said or 'a mode this attnprof does not describe'}.")
    for x in comparisons:
        mode = x.other.mode
        columns = [c.VARIANT, c.runtime_delta("eager"), c.runtime_delta(mode),
                   c.runtime_delta_ms("eager"), c.runtime_delta_ms(mode), c.RECOVERED]
        rows = [[r.variant, (r.eager_pct, r.eager_ci), (r.pct, r.ci), r.eager_ms, r.ms,
                 r.recovered_pct] for r in x.rows]
        where = x.eager.label
        out += ["", title(x.backbone, x.setting, f"{where} · {mode}"), ""]
        if x.speedup is not None:
            out += [f"Baseline: {fmt_ms(x.baseline_eager_ms)} ms eager, "
                    f"{fmt_ms(x.baseline_ms)} ms in {mode}: {x.speedup:.2f}× "
                    f"{'faster' if x.speedup >= 1 else 'as fast'}.", ""]
        out.append(table(columns, rows) if rows else "No attention variant timed in both.")
    return "\n".join(out)
