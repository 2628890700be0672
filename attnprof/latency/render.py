"""Rich tables of latency records: whole-model timings and attention modules timed alone."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from attnprof.latency.records import LatencyRecord, ModuleTiming


def _table(title: str, headers: Sequence[str], left: str) -> Table:
    """Columns right-aligned (numbers) but the one named ``left``."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="left" if header == left else "right")
    return table


def latency_table(records: Sequence[LatencyRecord]) -> Table:
    """One row per device and batch size: median ± IQR, 95% CI, samples, throughput, memory."""
    table = _table(
        "Forward latency (eval, inference_mode; ms per batch)",
        ("device", "threads", "batch", "median (ms)", "IQR (ms)", "95% CI (ms)*", "samples",
         "throughput (img/s)", "peak memory (MB)"),
        left="device",
    )
    for r in records:
        memory = "—" if r.peak_mem_bytes is None else f"{r.peak_mem_bytes / 1e6:,.1f}"
        flag = " [yellow](high variance)[/yellow]" if r.high_variance else ""
        table.add_row(
            f"{r.device} {r.dtype}{' channels_last' if r.channels_last else ''}"
            f"{' compiled' if r.compile else ''}",
            str(r.threads),
            str(r.batch),
            f"{r.median_ms:,.3f}{flag}",
            f"{r.iqr_ms:,.3f}",
            "—" if r.ci95_ms is None else f"[{r.ci95_ms[0]:,.3f}, {r.ci95_ms[1]:,.3f}]",
            str(r.samples),
            f"{r.images_per_s:,.1f}",
            memory,
        )
    if records:
        over = ("across fresh processes: it holds for a new run"
                if all(r.ci_over == "processes" for r in records)
                else "over the samples of this one process: a new run can land outside it; "
                "`attnprof run` compares variants across fresh processes")
        table.caption = f"* 95% CI of the median, {over}. peak memory: {records[0].peak_mem_kind}"
    return table


def module_table(timings: Sequence[ModuleTiming]) -> Table:
    """Each attention module alone on its stage's feature map, and its share of a forward."""
    table = _table(
        "Attention modules timed alone (ms)",
        ("stage", "module", "input (NxCxHxW)", "per call (ms)", "calls", "per forward (ms)",
         "of forward (%)"),
        left="module",
    )
    for t in timings:
        share = "—" if t.pct_of_forward is None else f"{t.pct_of_forward:.1f}"
        table.add_row(
            "—" if t.stage is None else str(t.stage),
            t.module,
            "x".join(str(d) for d in t.input_shape),
            f"{t.ms_per_call:,.4f}",
            str(t.calls_per_forward),
            f"{t.ms_per_forward:,.3f}",
            share,
        )
    return table
