"""The gap at a glance: Δ MACs % (x) against Δ latency % (y), one marker per measurement; and
beside it Δ bytes moved % (x) against Δ latency % (y), one marker per pass and mode.

Caveat first: matplotlib is an optional extra (``pip install 'attnprof[plot]'``). Without it,
or without any cell that has both a Δ count and a Δ latency, there is no plot and
:func:`skip_reason` says why; nothing here ever raises for that. The figure is drawn with the
Agg canvas directly (no pyplot, no global backend switch), so it works headless and inside
other programs.

Points: one per attention variant x backbone x setting x device x batch; colour = variant,
marker = backbone/setting/device/batch, each labelled with its variant. The dashed y = x line is
where latency would grow exactly as the count does; a point far above it is the paper's
"almost free" module costing real time. Error bars are the 95% CI of Δ latency.

The second plot (:func:`render_bytes_png`) takes the bytes moved under the first convention
that counts bytes (``full`` by default; the training step's, under ``full``, for a train pass):
colour = variant, marker = pass and mode, so whether the time follows memory traffic, and how
much of it a compiler takes back, shows at once.
"""

from __future__ import annotations

import importlib.util
import io

from attnprof.report.model import Report

INSTALL_HINT = "pip install 'attnprof[plot]'"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def plot_available() -> bool:
    """Whether matplotlib is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def skip_reason(report: Report) -> str | None:
    """Why no plot can be drawn for these results, or ``None`` when one can."""
    if not plot_available():
        return f"Plot skipped: matplotlib is not installed ({INSTALL_HINT})."
    if not report.points:
        return (
            "Plot skipped: no attention cell has both a Δ count and a Δ latency "
            "(latency not measured, or every baseline failed)."
        )
    return None


def render_png(report: Report) -> bytes | None:
    """The PNG bytes, or ``None`` when :func:`skip_reason` gives a reason."""
    if skip_reason(report) is not None:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    claims, unit, data = report.thresholds, report.claims_unit, report.points
    variants = list(dict.fromkeys(p.variant for p in data))
    group_names = list(dict.fromkeys(p.group for p in data))
    figure = Figure(figsize=(9.5, 5.5), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    palette = [f"C{i}" for i in range(10)]  # the default colour cycle
    for p in data:
        colour = palette[variants.index(p.variant) % len(palette)]
        marker = MARKERS[group_names.index(p.group) % len(MARKERS)]
        _draw_point(ax, p, p.macs_pct, marker, colour)
    xs = [0.0, claims.macs_pct, *(p.macs_pct for p in data)]
    ys = [0.0, claims.latency_pct, *(v for p in data for v in (p.latency_pct, *(p.ci95_pct or ())))]
    xpad = (max(xs) - min(xs)) * 0.12 or 1.0
    ypad = (max(ys) - min(ys)) * 0.08 or 1.0
    xlim = (min(xs) - xpad, max(xs) + xpad)
    ax.plot(xlim, xlim, "--", color="grey", lw=1, label="y = x (time grows as the count)")
    for line, value, colour, what in ((ax.axhline, claims.latency_pct, "firebrick", "latency"),
                                      (ax.axvline, claims.macs_pct, "steelblue", unit)):
        line(value, color=colour, lw=0.8, ls=":", label=f"{what} claim threshold ({value:g}%)")
    ax.set_xlim(*xlim)
    ax.set_ylim(min(ys) - ypad, max(ys) + ypad)
    ax.set_xlabel(f"Δ {unit}s, {claims.convention} convention (%)")
    ax.set_ylabel("Δ latency, median of paired ratios (%)")
    ax.set_title(f"Count vs time against the 'none' baseline ({report.suite.name})")
    ax.grid(True, alpha=0.3)
    markers = [(MARKERS[i % len(MARKERS)], name) for i, name in enumerate(group_names)]
    return _finish(figure, ax, palette, variants, markers)


PASS_MODE_MARKERS = {("inference", "eager"): "o", ("inference", "compile"): "s",
                     ("train", "eager"): "^", ("train", "compile"): "D"}


def _kind_markers(kinds: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A marker per pass and mode: the fixed ones for eager and compiled passes, the others
    (a runtime, a mode this install does not know) from :data:`MARKERS` not yet taken."""
    free = [m for m in MARKERS if m not in PASS_MODE_MARKERS.values()]
    others = [kind for kind in kinds if kind not in PASS_MODE_MARKERS]
    return {kind: PASS_MODE_MARKERS.get(kind) or free[others.index(kind) % len(free)]
            for kind in kinds}


def render_bytes_png(report: Report) -> bytes | None:
    """Δ bytes % against Δ latency %, or ``None`` when no point has both (or no matplotlib)."""
    data = [p for p in report.points if p.bytes_pct is not None]
    if not plot_available() or not data:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    variants = list(dict.fromkeys(p.variant for p in data))
    kinds = list(dict.fromkeys((p.pass_name, p.mode) for p in data))
    marker_of = _kind_markers(kinds)
    figure = Figure(figsize=(9.5, 5.5), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    palette = [f"C{i}" for i in range(10)]
    for p in data:
        colour = palette[variants.index(p.variant) % len(palette)]
        marker = marker_of[(p.pass_name, p.mode)]
        _draw_point(ax, p, p.bytes_pct, marker, colour)
    xs = [0.0, *(p.bytes_pct for p in data)]
    xpad = (max(xs) - min(xs)) * 0.1 or 1.0
    xlim = (min(xs) - xpad, max(xs) + xpad)
    ax.plot(xlim, xlim, "--", color="grey", lw=1, label="y = x (time grows as the bytes)")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_xlim(*xlim)
    source = report.byte_conventions[0] if report.byte_conventions else "full"
    ax.set_xlabel(f"Δ bytes moved, {source} convention, eager and unfused (%)")
    ax.set_ylabel("Δ latency, median of paired ratios (%)")
    ax.set_title(f"Memory traffic vs time against the 'none' baseline ({report.suite.name})")
    ax.grid(True, alpha=0.3)
    markers = [(marker_of[kind], f"{kind[0]}, {kind[1]}") for kind in kinds]
    return _finish(figure, ax, palette, variants, markers)


def _draw_point(ax, p, x: float, marker: str, colour: str) -> None:
    """One point at (``x``, its Δ latency) with its 95% CI as an error bar, labelled."""
    yerr = None
    if p.ci95_pct is not None:
        lo, hi = p.ci95_pct
        yerr = [[max(p.latency_pct - lo, 0.0)], [max(hi - p.latency_pct, 0.0)]]
    ax.errorbar([x], [p.latency_pct], yerr=yerr, fmt=marker, color=colour, ecolor=colour,
                elinewidth=1, capsize=3, markersize=7)
    ax.annotate(p.variant, (x, p.latency_pct), textcoords="offset points", xytext=(6, 4),
                fontsize=8, color=colour)


def _finish(figure, ax, palette, variants, markers) -> bytes:
    """The legend (a colour per variant, then ``(marker, label)`` pairs and the lines) outside
    the axes, where it hides no point; the PNG bytes."""
    handles = [
        _legend_marker(palette[i % len(palette)], "o", name) for i, name in enumerate(variants)
    ] + [_legend_marker("black", marker, label) for marker, label in markers]
    line_handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + line_handles, fontsize=7, loc="upper left",
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _legend_marker(colour: str, marker: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=colour, marker=marker, linestyle="none", label=label)
