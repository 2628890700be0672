"""Reports from a results document: report.md, results.csv and a plot, never measuring again.

Computing (:mod:`~attnprof.report.tables`, :mod:`~attnprof.report.claims`,
:mod:`~attnprof.report.published`) is kept apart from rendering
(:mod:`~attnprof.report.markdown`, :mod:`~attnprof.report.csv`, :mod:`~attnprof.report.plot`).

:func:`write_reports` validates the whole document and renders every requested format in memory
first; only then does it write, each file atomically. A corrupt document therefore raises one
:class:`~attnprof.errors.AttnprofError` and leaves no file, and a reader never sees half a
report.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from attnprof.errors import AttnprofError, choices
from attnprof.report import csv as _csv
from attnprof.report import markdown as _markdown
from attnprof.report import plot as _plot
from attnprof.report.tables import check_results
from attnprof.report.terminal import summary_table
from attnprof.suite.store import ensure_writable_dir, write_atomic

FORMATS = ("md", "csv", "png")
FILE_NAMES = {"md": "report.md", "csv": "results.csv", "png": "macs_vs_latency.png"}


def render_markdown(results: dict) -> str:
    """report.md's text (without a plot link). Raises :class:`AttnprofError` if corrupt."""
    return _markdown.render(results)


def render_csv(results: dict) -> str:
    """results.csv's text. Raises :class:`AttnprofError` if corrupt."""
    return _csv.render(results)


def plot_skip_reason(results: dict) -> str | None:
    """Why :func:`write_reports` would skip the plot (no matplotlib, nothing to plot), or None."""
    return _plot.skip_reason(results)


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise AttnprofError(
            f"unknown report format(s) {', '.join(map(repr, unknown)) or '(none)'}; "
            f"valid formats: {choices(FORMATS)}"
        )
    return wanted


def write_reports(
    results: dict, out_dir: Path, formats: Iterable[str] = FORMATS, *, source: str | None = None
) -> list[Path]:
    """Write the requested reports into ``out_dir``; return the paths written, in order.

    ``formats`` is any of ``md`` (report.md), ``csv`` (results.csv), ``png`` (the Δ MACs vs
    Δ latency plot). The plot is skipped, never an error, when matplotlib is missing or there
    is nothing to plot; report.md then says why (see :func:`plot_skip_reason`). ``source``
    names the results file in error messages.
    """
    wanted = check_formats(formats)
    check_results(results, source or "<results>")
    rendered: dict[str, str | bytes] = {}
    plot_file = None
    plot_note = None
    if "png" in wanted:
        png = _plot.render_png(results)
        if png is None:
            plot_note = _plot.skip_reason(results)
        else:
            rendered["png"] = png
            plot_file = FILE_NAMES["png"]
    if "md" in wanted:
        rendered["md"] = _markdown.render(results, plot_file=plot_file, plot_note=plot_note)
    if "csv" in wanted:
        rendered["csv"] = _csv.render(results)
    out_dir = ensure_writable_dir(Path(out_dir))
    written = []
    for fmt in FORMATS:
        if fmt in rendered:
            path = out_dir / FILE_NAMES[fmt]
            write_atomic(path, rendered[fmt])
            written.append(path)
    return written


__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "check_results",
    "plot_skip_reason",
    "render_csv",
    "render_markdown",
    "summary_table",
    "write_reports",
]
