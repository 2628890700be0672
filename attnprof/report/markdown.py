"""report.md: the sections of :mod:`attnprof.report.md` in the order a reader needs them.

The answer first: after the suite's name, the verdict of every backbone and setting (Δ params,
Δ MACs, Δ bytes, Δ latency per pass, mode and runtime with its interval, and what stands
behind each interval); then how it was measured and where; then the counts per convention, the
timings, the roofline, the modes and runtimes, the builds and where the time goes; then the
training step, where the attention cost sits, published figures, what each convention left
uncounted, what failed, and the plots. A section with nothing to show is left out. Every
number is computed in :mod:`attnprof.report.model` and formatted by its column
(:mod:`attnprof.report.columns`); a missing number is "—".
"""

from __future__ import annotations

from attnprof.report.md.attention import attention_section
from attnprof.report.md.breakdown import breakdown_section
from attnprof.report.md.builds import builds_section
from attnprof.report.md.closing import failed_section, plot_section, uncounted_section
from attnprof.report.md.counts import counts_section
from attnprof.report.md.header import provenance_section, title
from attnprof.report.md.machine import limits_section
from attnprof.report.md.method import method_section
from attnprof.report.md.published import published_section
from attnprof.report.md.runtimes import runtimes_section
from attnprof.report.md.timings import timings_section
from attnprof.report.md.training import training_section
from attnprof.report.md.verdict import verdict_section
from attnprof.report.model import Report


def render(report: Report, plot_file: str | None = None, plot_note: str | None = None,
           bytes_plot: str | None = None) -> str:
    """The whole report.md. ``plot_file`` (a name next to the report) is embedded when given,
    with ``bytes_plot`` beside it; ``plot_note`` says why there is no plot."""
    parts = [
        title(report),
        verdict_section(report),
        method_section(report),
        provenance_section(report),
        counts_section(report),
        timings_section(report),
        limits_section(report),
        runtimes_section(report),
        builds_section(report),
        breakdown_section(report),
        training_section(report),
        attention_section(report),
        published_section(report),
        uncounted_section(report),
        failed_section(report),
        plot_section(plot_file, plot_note, bytes_plot),
    ]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"
