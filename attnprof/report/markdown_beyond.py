"""report.md's sections on the cost beyond an eager forward (computed in :mod:`.beyond_eager`).

Each section is absent when the results hold nothing for it: a forward-only, eager run reads
as it always did.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from attnprof.passes import LOSS
from attnprof.report.beyond_eager import LimitRow, ModeRow, TrainingRow
from attnprof.report.markdown import (
    DASH,
    fmt_giga,
    fmt_interval,
    fmt_mb,
    fmt_ms,
    fmt_pct,
    fmt_plain,
    is_missing,
    table,
)
from attnprof.suite.config import BASELINE


def _groups(rows: Sequence) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r.backbone, r.setting) for r in rows))


def _title(backbone: str, setting: str, extra: str = "") -> str:
    return f"### {backbone} · {setting}{extra}"


def training_section(rows: Sequence[TrainingRow]) -> str:
    if not rows:
        return ""
    out = [
        "## Training step",
        "",
        "One training step counted under `full` on meta tensors: the forward in train mode, "
        f"the loss ({LOSS}), and the backward, summed over the aten ops that actually run "
        "(never a fixed multiple of the forward: the first layer computes no input "
        "gradient). Activations: the bytes of the distinct tensors autograd saves for the "
        "backward (saved-tensor hooks), parameters excluded; they stay in memory from the "
        "forward to the backward, per batch.",
    ]
    for backbone, setting in _groups(rows):
        body = []
        for r in (r for r in rows if (r.backbone, r.setting) == (backbone, setting)):
            base = r.variant == BASELINE
            body.append([
                r.variant + (" (baseline)" if base else ""),
                fmt_giga(r.flops), DASH if base else fmt_pct(r.flops_delta_pct),
                fmt_plain(r.backward_ratio, 2),
                fmt_mb(r.bytes), DASH if base else fmt_pct(r.bytes_delta_pct, 1),
                fmt_mb(r.activation_bytes), DASH if base else fmt_pct(r.activation_delta_pct, 1),
                fmt_mb(r.attention_activation_bytes),
            ])
        header = ["variant", "train step (GFLOP)", "Δ (%)", "backward / forward",
                  "bytes moved (MB)", "Δ bytes (%)", "activations saved (MB)",
                  "Δ activations (%)", "attention's activations (MB)"]
        out += ["", _title(backbone, setting), "", table(header, body)]
    return "\n".join(out)


def modes_section(rows: Sequence[ModeRow]) -> str:
    if not rows:
        return ""
    out = [
        "## Eager and compiled",
        "",
        "Each variant's Δ latency against the baseline timed in the same mode and rounds. "
        "Recovered: the share of the eager overhead the compiled model no longer pays, "
        "1 − Δ compiled / Δ eager, where the eager overhead is established (its 95% CI above "
        "0). Compilation: the median over "
        "processes of the compiled model's first call (compiling it and one run), timed "
        "apart and never mixed into the timings; a process that found inductor's cache warm "
        "compiles faster.",
    ]
    conditions = list(dict.fromkeys((r.backbone, r.setting, r.device, r.batch, r.pass_name)
                                    for r in rows))
    for backbone, setting, device, batch, pass_name in conditions:
        body = []
        for r in rows:
            if (r.backbone, r.setting, r.device, r.batch, r.pass_name) != \
                    (backbone, setting, device, batch, pass_name):
                continue
            base = r.variant == BASELINE
            body.append([
                r.variant + (" (baseline)" if base else ""),
                DASH if base else _interval(r.eager_pct, r.eager_ci),
                DASH if base else _interval(r.compiled_pct, r.compiled_ci),
                DASH if base or r.recovered_pct is None else f"{r.recovered_pct:.0f}",
                DASH if r.compile_s is None else f"{r.compile_s:.1f}",
            ])
        header = ["variant", "Δ eager (%) [95% CI]", "Δ compiled (%) [95% CI]",
                  "recovered (%)", "compilation, first call (s)"]
        extra = f" · {device} b{batch} · {pass_name}"
        out += ["", _title(backbone, setting, extra), "", table(header, body)]
    return "\n".join(out)


def _interval(delta, ci) -> str:
    lo, hi = ci if ci else (None, None)
    return fmt_interval(delta, lo, hi)


def limits_section(rows: Sequence[LimitRow], limits: Sequence) -> str:
    if not limits:
        return ""
    out = ["## The machine's limits", ""]
    for label, m in limits:
        where = f"{label} {m.device}" if label else m.device
        out.append(
            f"- **{where}**, {m.dtype}, {m.threads} threads: memory bandwidth "
            f"{m.bandwidth_gb_per_s:.1f} GB/s ({m.bandwidth_method}); peak "
            f"{m.peak_gflops_per_s:.1f} GFLOP/s ({m.peak_flops_method}); ridge point "
            f"{m.ridge_point:.1f} FLOP/byte."
        )
    if not rows:
        out += ["", "No timed cell has `full` counts to set against these limits."]
        return "\n".join(out)
    out += [
        "",
        "Each timed cell against the roofline, max(FLOPs / peak, bytes / bandwidth), from its "
        "`full` counts (the training step's for a train pass; eager, unfused bytes, which a "
        "compiler's fusion lowers). Δ bytes alone: what the variant's extra bytes cost at the "
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
    conditions = list(dict.fromkeys((r.backbone, r.setting, r.key) for r in rows))
    for backbone, setting, key in conditions:
        body = []
        for r in rows:
            if (r.backbone, r.setting, r.key) != (backbone, setting, key):
                continue
            base = r.variant == BASELINE
            body.append([
                r.variant + (" (baseline)" if base else ""),
                fmt_ms(r.measured_ms), fmt_ms(r.bound_ms, like=r.measured_ms), r.bound,
                f"{r.of_bound_pct:.0f}", f"{r.achieved_flops_per_s / 1e9:.1f}",
                f"{r.achieved_bytes_per_s / 1e9:.1f}",
                DASH if base else fmt_mb(r.delta_bytes),
                DASH if base or is_missing(r.bytes_alone_ms) else fmt_ms(r.bytes_alone_ms),
                DASH if base or is_missing(r.delta_ms) else fmt_ms(r.delta_ms),
                DASH if base or r.over_bytes_alone is None else f"{r.over_bytes_alone:.1f}x",
            ])
        header = ["variant", "measured (ms)", "roofline bound (ms)", "bound by",
                  "of bound (%)", "achieved (GFLOP/s)", "achieved (GB/s)", "Δ bytes (MB)",
                  "Δ bytes alone (ms)", "Δ measured (ms)", "measured / bytes alone"]
        out += ["", _title(backbone, setting, f" · {key.label}"), "", table(header, body)]
    return "\n".join(out)


def _verdicts(rows: Sequence[LimitRow]) -> list[str]:
    """One sentence per pass and mode: the median of measured / bytes alone over variants."""
    lines = []
    keys = list(dict.fromkeys(r.key for r in rows))
    for key in keys:
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
