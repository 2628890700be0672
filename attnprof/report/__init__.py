"""Reports from a results document: report.md, results.csv and a plot, never measuring again.

Computing (:mod:`~attnprof.report.model`) is kept apart from rendering: :func:`build_report`
computes a :class:`Report` once and every renderer reads it. Every column's name, unit and
format is defined once, in :mod:`~attnprof.report.columns`: the CSV's header, report.md's
tables (:mod:`~attnprof.report.markdown`, one module per section under
:mod:`attnprof.report.md`) and the summary ``attnprof run`` prints (:mod:`.terminal`) all
take theirs from it.

:func:`write_reports` renders every requested format in memory first; only then does it write,
each file atomically, so a reader never sees half a report. The document it gets has been
validated by :func:`attnprof.results.load`, so rendering cannot meet a corrupt file. A format
the caller asked for by name (``required``) that cannot be produced is refused before anything
is written, so a refused call leaves the folder as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from attnprof.errors import AttnprofError, choices
from attnprof.files import ensure_writable_dir, write_atomic
from attnprof.report import csv as _csv
from attnprof.report import markdown as _markdown
from attnprof.report import plot as _plot
from attnprof.report.model import Report, build_report
from attnprof.report.terminal import summary_table

FORMATS = ("md", "csv", "png")
FILE_NAMES = {"md": "report.md", "csv": "results.csv", "png": "macs_vs_latency.png"}
BYTES_PLOT = "bytes_vs_latency.png"
"""The second plot, written with ``png`` wherever a point has a Δ bytes."""

render_markdown = _markdown.render
render_csv = _csv.render
plot_skip_reason = _plot.skip_reason


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise AttnprofError(
            f"unknown report format(s) {', '.join(map(repr, unknown)) or '(none)'}; "
            f"valid formats: {choices(FORMATS)}"
        )
    return wanted


def plot_problem(report: Report) -> str | None:
    """Why the plot cannot be drawn and what would let it be, in one clause; ``None`` when it
    can. Every cause is named at once (matplotlib missing and nothing timed), so fixing one
    does not reveal another."""
    if _plot.skip_reason(report) is None:
        return None
    problems = []
    if not _plot.plot_available():
        problems.append(f"matplotlib is not installed ({_plot.INSTALL_HINT})")
    if not report.points:
        problems.append(
            "no attention cell has both a Δ count and a Δ latency (time the suite: "
            "attnprof run without --skip-latency, and check that its baselines ran)"
        )
    return "; ".join(problems) or _plot.skip_reason(report)


def write_reports(report: Report, out_dir: Path, formats: Iterable[str] = FORMATS, *,
                  required: Iterable[str] = ()) -> list[Path]:
    """Write the requested reports into ``out_dir``; return the paths written, in order.

    Caveat: a plot that cannot be drawn is skipped, never an error, unless ``png`` is in
    ``required``: when matplotlib is missing or there is nothing to plot, report.md says why
    (see :func:`plot_skip_reason`). ``required`` names the formats the user asked for by name
    (written whether or not ``formats`` lists them); one of them that cannot be produced
    raises :class:`AttnprofError` before any file is written, the other formats included.

    ``formats`` is any of ``md`` (report.md), ``csv`` (results.csv), ``png`` (the Δ MACs vs
    Δ latency plot, and beside it the Δ bytes vs Δ latency plot where bytes were counted).
    """
    wanted = check_formats(formats)
    required = tuple(required)
    if required:
        wanted = check_formats((*wanted, *check_formats(required)))
    problem = plot_problem(report) if "png" in required else None
    if problem:
        raise AttnprofError(
            f"report format 'png' cannot be written: {problem}; ask for md or csv instead"
        )
    rendered: dict[str, str | bytes] = {}
    plot_file = bytes_plot = None
    plot_note = None
    if "png" in wanted:
        png = _plot.render_png(report)
        if png is None:
            plot_note = _plot.skip_reason(report)
        else:
            rendered[FILE_NAMES["png"]] = png
            plot_file = FILE_NAMES["png"]
            second = _plot.render_bytes_png(report)
            if second is not None:
                rendered[BYTES_PLOT] = second
                bytes_plot = BYTES_PLOT
    if "md" in wanted:
        rendered[FILE_NAMES["md"]] = _markdown.render(
            report, plot_file=plot_file, plot_note=plot_note, bytes_plot=bytes_plot)
    if "csv" in wanted:
        rendered[FILE_NAMES["csv"]] = _csv.render(report)
    out_dir = ensure_writable_dir(Path(out_dir))
    written = []
    for name in (FILE_NAMES["md"], FILE_NAMES["csv"], FILE_NAMES["png"], BYTES_PLOT):
        if name in rendered:
            path = out_dir / name
            write_atomic(path, rendered[name])
            written.append(path)
    return written


__all__ = [
    "BYTES_PLOT",
    "FILE_NAMES",
    "FORMATS",
    "Report",
    "build_report",
    "check_formats",
    "plot_problem",
    "plot_skip_reason",
    "render_csv",
    "render_markdown",
    "summary_table",
    "write_reports",
]
