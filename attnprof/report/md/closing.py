"""The end of report.md: what each convention did not count, what failed, and the plots."""

from __future__ import annotations

from attnprof.report.model import Report
from attnprof.report.tables import failed_latency


def uncounted_section(report: Report) -> str:
    lines = []
    for cell in (c for c in report.cells if c.ok):
        for name in report.conventions:
            count = cell.profile.counts.get(name)
            uncounted = count.uncounted if count else {}
            if not uncounted:
                continue
            ops = sorted(uncounted.items(), key=lambda item: (-item[1], item[0]))
            shown = ", ".join(f"{op} ×{n:g}" for op, n in ops[:8])
            if len(ops) > 8:
                shown += f", and {len(ops) - 8} more"
            lines.append(f"- `{cell.id}` {name}: {shown}")
    if not lines:
        return ""
    intro = ("Calls of each op that contributed 0 to the count (not a bug of the counter: its "
             "convention).")
    return "\n".join(["## Operations each convention did not count", "", intro, "", *lines])


def failed_section(report: Report) -> str:
    failed_cells = [c for c in report.cells if not c.ok]
    failed_timings = failed_latency(report.document)
    out = ["## Failed cells", ""]
    if not failed_cells and not failed_timings:
        out.append("None: every cell was counted and every timing finished.")
        return "\n".join(out)
    for cell in failed_cells:
        out += _error_item(f"`{cell.id}`", cell.failure.error or "failed (no error recorded)")
    for cell, entry in failed_timings:
        where = f"`{cell.id}` latency {entry.device} b{entry.batch}"
        extra = " ".join(w for w in (entry.pass_name, entry.mode)
                         if w not in ("inference", "eager"))
        out += _error_item(where + (f" {extra}" if extra else ""), entry.failure.error)
    return "\n".join(out)


def _error_item(what: str, error: str) -> list[str]:
    lines = str(error).strip().splitlines() or [""]
    item = [f"- {what}: {lines[0]}"]
    if len(lines) > 1:
        item += ["", "  ```", *(f"  {line}" for line in lines[1:]), "  ```"]
    return item


def plot_section(plot_file: str | None, plot_note: str | None,
                 bytes_plot: str | None = None) -> str:
    if plot_file:
        text = (
            "## Plot\n\n"
            f"![Δ MACs % against Δ latency % per variant]({plot_file})\n\n"
            "Points far above the y = x line cost far more time than their count suggests."
        )
        if bytes_plot:
            text += (
                f"\n\n![Δ bytes moved % against Δ latency % per variant, pass and mode]"
                f"({bytes_plot})\n\n"
                "The same Δ latency against the Δ bytes moved: one marker per pass and mode. "
                "Points near y = x are paid in memory traffic; compiled points below their "
                "eager ones are overhead that fusion took back."
            )
        return text
    if plot_note:
        return f"## Plot\n\n{plot_note}"
    return ""
