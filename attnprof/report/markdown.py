"""report.md: the rendering half (every number computed in :mod:`attnprof.report.tables`).

Layout: a header (suite, provenance, the conventions in one line each), one table per backbone
and setting, the claims with their verdicts and a summary of the gap between counts and
latency, published figures beside measured ones, what each convention left uncounted, the
failed cells, and the plot. Every numeric column names its unit; a missing number is "—".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from attnprof.latency.stats import disagree
from attnprof.report.claims import Outcome, tally
from attnprof.report.model import Report
from attnprof.report.published import signed
from attnprof.report.tables import (
    LatencyKey,
    convention_summary,
    failed_latency,
    group_frame,
    latency_entry,
)
from attnprof.results import Cell
from attnprof.suite.config import BASELINE, LatencySettings

DASH = "—"


# -- number formats -----------------------------------------------------------------------------


def is_missing(value) -> bool:
    """``None`` or NaN: a number the report shows as a dash."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_millions(value) -> str:
    """Parameters in M, 3 decimals: ``25.557``."""
    return DASH if is_missing(value) else f"{value / 1e6:.3f}"


def fmt_giga(value) -> str:
    """GMAC or GFLOP: 3 decimals (``4.122``), 4 significant digits below 1 G (``0.1495``)."""
    if is_missing(value):
        return DASH
    giga = value / 1e9
    digits = 3 if abs(giga) >= 1 or giga == 0 else 3 - math.floor(math.log10(abs(giga)))
    return f"{giga:.{digits}f}"


def fmt_mb(value) -> str:
    """Bytes in MB (10^6 bytes), 1 decimal."""
    return DASH if is_missing(value) else f"{value / 1e6:.1f}"


def fmt_pct(value, digits: int = 2) -> str:
    """A signed percentage without the % sign (the header says %): ``+0.19``."""
    return DASH if is_missing(value) else signed(value, digits)


def fmt_ms(value, like=None) -> str:
    """Milliseconds with 3-4 significant digits (as many decimals as ``like`` would get)."""
    if is_missing(value):
        return DASH
    scale = abs(value if is_missing(like) else like)
    digits = 1 if scale >= 100 else 2 if scale >= 1 else 3
    return f"{value:.{digits}f}"


def fmt_plain(value, digits: int = 1) -> str:
    return DASH if is_missing(value) else f"{value:.{digits}f}"


def fmt_interval(delta, lo, hi) -> str:
    """``+20.0 [+15.0, +25.0]``; just the point when there is no interval."""
    if is_missing(delta):
        return DASH
    if is_missing(lo) or is_missing(hi):
        return signed(delta, 1)
    return f"{signed(delta, 1)} [{signed(lo, 1)}, {signed(hi, 1)}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A GitHub Markdown table. ``align`` has one letter per column, ``l`` or ``r``; by default
    the first column is left-aligned (a name) and the rest right-aligned (numbers)."""
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[_escape(h) for h in header], *([_escape(v) for v in row] for row in rows)]
    lines = ["| " + " | ".join(cells[0]) + " |"]
    lines.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- sections -----------------------------------------------------------------------------------


def render(report: Report, plot_file: str | None = None, plot_note: str | None = None,
           bytes_plot: str | None = None) -> str:
    """The whole report.md. ``plot_file`` (a name next to the report) is embedded when given,
    with ``bytes_plot`` beside it; ``plot_note`` says why there is no plot."""
    from attnprof.report import markdown_beyond as beyond  # it formats with this module's helpers

    parts = [
        _header(report),
        _results_section(report),
        _claims_section(report),
        beyond.training_section(report.training),
        beyond.modes_section(report.modes),
        beyond.limits_section(report.limits, report.machine),
        _attention_section(report),
        _published_section(report),
        _uncounted_section(report),
        _failed_section(report),
        _plot_section(plot_file, plot_note, bytes_plot),
    ]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


def _header(report: Report) -> str:
    suite, document = report.suite, report.document
    recorded = document.provenance.to_dict() if document.provenance else {}
    prov = {key: value for key, value in recorded.items() if value is not None}
    lines = [f"# attnprof report: {suite.name}"]
    if suite.description:
        lines += ["", suite.description]
    lines += ["", "## Provenance", ""]
    versions = " · ".join(
        f"{label} {prov.get(label.lower()) or 'unknown'}"
        for label in ("attnprof", "torch", "fvcore", "thop", "Python")
    )
    lines.append(f"- **Versions**: {versions}")
    lines.append(f"- **Platform**: {prov.get('platform') or 'unknown'}")
    cpu = str(prov.get("cpu") or "unknown")
    if prov.get("cpu_count"):
        cpu += f" ({prov['cpu_count']} logical CPUs)"
    lines.append(f"- **CPU**: {cpu}; torch threads: {prov.get('threads') or 'unknown'}")
    lines.append(f"- **GPU**: {_gpu(prov.get('gpu'))}")
    lines.append(f"- **Commit**: {prov.get('git_commit') or 'unknown'}")
    lines.append(f"- **Measured (UTC)**: {prov.get('utc') or 'unknown'}")
    if suite.source:
        lines.append(f"- **Suite file**: {suite.source}")
    if not prov:
        lines.append("- The results file records no provenance: where it was measured is unknown.")
    if document.machines:
        lines.append(
            f"- **Machines**: merged from {len(document.machines)} machines; each timing's "
            "columns name the machine they were measured on (the lines above are machine "
            f"{document.machines[0].label}'s):"
        )
        for run in document.machines:
            prov = run.provenance
            lines.append(
                f"  - **{run.label}**: {run.describe()}; commit {prov.git_commit or 'unknown'}; "
                f"measured (UTC) {prov.utc or 'unknown'}; from {', '.join(run.sources)}"
            )
    earlier = document.resumed_from
    if earlier is not None:
        lines.append(
            f"- **Resumed**: part of these results come from an earlier run (UTC "
            f"{earlier.utc or 'unknown'}, commit {earlier.git_commit or 'unknown'}, "
            f"CPU {earlier.cpu or 'unknown'})"
        )
    lines += ["", "## Conventions", ""]
    for name in report.conventions:
        note = convention_summary(document, name)
        lines.append(f"- **{name}** ({report.units[name]}): {note}.")
    claims = report.thresholds
    moved = report.byte_conventions
    intensity = "; ".join(f"{name} {report.units[name]}s" for name in moved)
    lines += [
        "",
        f"Counts are for one forward pass of a batch of {suite.count_batch}"
        + (" (one image)" if suite.count_batch == 1 else "") + ". "
        f"Δ% is against the `{BASELINE}` baseline of the same backbone and setting. "
        "MB are 10^6 bytes"
        + (f"; arithmetic intensity is {intensity} per byte moved." if moved else "."),
    ]
    if any(c.latency for c in report.cells if c.ok):
        lines += ["", _timing_line(suite.latency, report.cells)]
    else:
        lines += ["", "Latency: not measured in these results."]
    lines += [
        "",
        f"Claim thresholds: Δ params ≤ {claims.params_pct:g}%, Δ "
        f"{report.claims_unit}s ({claims.convention}) ≤ "
        f"{claims.macs_pct:g}%, Δ latency ≤ {claims.latency_pct:g}%.",
    ]
    return "\n".join(lines)


def _gpu(gpu) -> str:
    if not gpu:
        return "none"
    parts = [str(gpu.get("name") or "unknown")]
    if isinstance(gpu.get("memory_bytes"), (int, float)) and gpu["memory_bytes"] > 0:
        parts.append(f"{gpu['memory_bytes'] / 2**30:.1f} GiB")
    for label, key in (("driver", "driver"), ("CUDA", "cuda"), ("cuDNN", "cudnn")):
        if gpu.get(key):
            parts.append(f"{label} {gpu[key]}")
    return ", ".join(parts)


def _measured_threads(cells: tuple[Cell, ...]) -> str:
    """The thread counts the latency entries recorded, e.g. ``2``; empty when none did."""
    found = sorted({e.threads for c in cells for e in c.latency if e.threads is not None})
    return ", ".join(str(t) for t in found)


def _timing_line(latency: LatencySettings, cells: tuple[Cell, ...]) -> str:
    """How the timings were taken, from what the entries recorded (not the suite's defaults:
    an older file was measured differently)."""
    if not latency.enabled:
        return "Latency: not measured (disabled in the suite)."
    threads = latency.threads or "torch default"
    measured_threads = _measured_threads(cells)
    if measured_threads and str(threads) != measured_threads:
        threads = f"{measured_threads} ({threads})" if threads == "torch default" else threads
    mode = " and ".join("torch.compile" if m == "compile" else "eager" for m in latency.modes)
    if latency.passes != ("inference",):
        step = "forward, loss, backward" + (
            f", {latency.optimizer} step" if latency.optimizer != "none" else "")
        mode += " (" + "; ".join(
            "train: a training step, " + step if p == "train" else "inference: a forward"
            for p in latency.passes) + ")"
    layout = "channels_last" if latency.channels_last else "contiguous"
    ratios = [e.ratio for c in cells for e in c.latency if e.ok and e.ratio is not None]
    across = [r for r in ratios if r.ci_over == "processes"]
    head = (f"Latency: {mode}, {latency.dtype}, {layout}; threads: {threads}. Each backbone's "
            f"variants are timed together in interleaved rounds, one sample of ≥ "
            f"{latency.sample_time} s of forwards per model per round")
    if across:
        per = sorted({n for r in across for n in r.rounds_per_process})
        return (
            f"{head}, in {latency.processes} fresh processes of {'/'.join(map(str, per))} "
            "rounds each, after warm-up rounds until settled (no model more than "
            f"{latency.settle_tolerance:.0%} faster than in its best earlier warm-up round; "
            f"at most {latency.max_warmup_rounds}). Median ± IQR over all rounds. Δ latency is the "
            "median over processes of each process's median ratio to the baseline timed in the "
            "same rounds; its 95% CI is the order-statistic interval of those process medians, "
            "so it covers what a new run on this machine gives. "
            f"{DISAGREE_MARK}: the processes disagree beyond their rounds' noise (Kruskal-Wallis "
            "p < 0.01); (n proc.): only n processes finished."
        )
    rounds = sorted({len(r.values) for r in ratios}) or [latency.rounds]
    return (
        f"{head}, in one process of {'/'.join(map(str, rounds))} rounds. Median ± IQR over "
        "rounds; Δ latency is the median of per-round ratios to the baseline timed in the same "
        "rounds, with its 95% CI over those rounds: it describes this one process, not the "
        "variation between runs."
    )


def _group_title(backbone: str, setting: str) -> str:
    return f"### {backbone} · {setting}"


def _results_section(report: Report) -> str:
    out = ["## Results"]
    names, units, keys = list(report.conventions), report.units, report.latency_keys
    cells = {c.id: c for c in report.cells}
    for backbone, setting in report.groups:
        rows = group_frame(report.frame, backbone, setting)
        ids = [i for i in rows["id"] if i in cells]
        timed = [k for k in keys if any(latency_entry(cells[i], k) is not None for i in ids)]
        header = ["variant", "params (M)", "Δ params (%)"]
        for name in names:
            header += [f"{name} (G{units[name]})", f"Δ {name} (%)"]
        moved = report.byte_conventions
        for name in moved:  # unnamed when one convention counts bytes: the text names it
            said = f"{name} " if len(moved) > 1 else ""
            header += [f"{said}bytes moved (MB)", f"Δ {said}bytes (%)",
                       f"{said}intensity ({units[name]}/byte)",
                       f"{said}attention intensity ({units[name]}/byte)"]
        for k in timed:
            header += [f"{k.label} median ± IQR (ms)", f"{k.label} Δ latency (%) [95% CI]",
                       f"{k.label} throughput (img/s)"]
        body = []
        records = rows.to_dict("records")
        for row in records:
            body.append(_result_row(row, cells[row["id"]], names, units, moved, timed,
                                    report.document.suite.latency.processes))
        out += ["", _group_title(backbone, setting), "", table(header, body)]
        said = [
            *(f"- {NONFINITE_MARK} `{row['variant']}`: the output is not finite on the profiling "
              f"input (standard normal, seed 0): {row['nonfinite_output']}; the counts stand, "
              "a latency measured on it need not be that of real data."
              for row in records if _nonfinite(row)),
            *(f"- `{row['variant']}`: {note}" for row in records
              if (profile := cells[row["id"]].profile) is not None for note in profile.notes),
        ]
        if said:
            out += ["", "Notes:", "", *said]
        if not (rows["variant"].eq(BASELINE) & rows["status"].eq("ok")).any():
            out += ["", f"No counted `{BASELINE}` baseline here: no Δ% can be given."]
    if len(out) == 1:
        out += ["", "No cells in this results file."]
    return "\n".join(out)


NONFINITE_MARK = "⚠"
"""Beside a variant whose output was not finite on the profiling input."""


def _nonfinite(row: dict) -> bool:
    value = row.get("nonfinite_output")
    return isinstance(value, str) and bool(value)


def _result_row(
    row: dict, cell: Cell, names: list[str], units: dict, moved: Sequence[str],
    timed: list[LatencyKey], planned: int,
) -> list[str]:
    base = row["variant"] == BASELINE
    failed = row["status"] != "ok"
    label = row["variant"] + (" (baseline)" if base else "") + (" (failed)" if failed else "")
    if _nonfinite(row):
        label += f" {NONFINITE_MARK} non-finite output"

    def delta(column: str, digits: int = 2) -> str:
        return DASH if base else fmt_pct(row.get(column), digits)

    values = [label, fmt_millions(row["params_count"]), delta("params_delta_pct")]
    for name in names:
        unit = units[name]
        values += [fmt_giga(row.get(f"{name}_{unit}")), delta(f"{name}_delta_pct")]
    for name in moved:
        unit = units[name]
        values += [
            fmt_mb(row.get(f"{name}_bytes")),
            delta(f"{name}_bytes_delta_pct"),
            fmt_plain(row.get(f"{name}_{unit}_per_byte")),
            fmt_plain(row.get(f"{name}_attention_{unit}_per_byte"), 2),
        ]
    for k in timed:
        p = k.column
        entry = latency_entry(cell, k) if not failed else None
        if entry is not None and not entry.ok:
            values += ["failed", DASH, DASH]
            continue
        median, iqr = row.get(f"{p}_median_ms"), row.get(f"{p}_iqr_ms")
        spread = fmt_ms(median) + ("" if is_missing(iqr) else f" ± {fmt_ms(iqr, like=median)}")
        interval = fmt_interval(row.get(f"{p}_delta_pct"), row.get(f"{p}_delta_ci95_lo_pct"),
                                row.get(f"{p}_delta_ci95_hi_pct"))
        interval += _replication_marks(row, p, planned)
        values += [
            DASH if is_missing(median) else spread,
            DASH if base else interval,
            fmt_plain(row.get(f"{p}_images_per_s")),
        ]
    return values


DISAGREE_MARK = "‡"


def _replication_marks(row: dict, p: str, planned: int) -> str:
    """`` ‡`` where the processes disagree, `` (n proc.)`` where fewer than planned finished."""
    marks = ""
    processes = row.get(f"{p}_processes_count")
    if row.get(f"{p}_ci_over") == "processes" and processes != planned:
        marks += f" ({int(processes)} proc.)"
    if disagree(row.get(f"{p}_disagreement_pvalue")):
        marks += f" {DISAGREE_MARK}"
    return marks


def _claims_section(report: Report) -> str:
    claims, unit, verdicts = report.thresholds, report.claims_unit, report.claims
    out = [
        '## Claims: "almost no extra parameters or FLOPs"',
        "",
        f"Each attention variant against the `{BASELINE}` baseline of its backbone and setting. "
        f"A count (parameters, {unit}s) is exact: the claim holds when its Δ is at most the "
        "threshold. A latency is measured: the claim is refuted only when the whole 95% CI of "
        "its Δ lies above the threshold, holds only when the whole CI lies below it, and is "
        "inconclusive otherwise.",
    ]
    if not verdicts:
        out += ["", "No counted attention variant to judge."]
        return "\n".join(out)
    keys = [k for k in report.latency_keys if any(k == lk for c in verdicts for lk, _ in c.latency)]
    header = ["variant", "Δ params (%)", f"params ≤ {claims.params_pct:g}%",
              f"Δ {claims.convention} (%)", f"{unit}s ≤ {claims.macs_pct:g}%"]
    for k in keys:
        header += [f"{k.label} Δ latency (%) [95% CI]", f"latency ≤ {claims.latency_pct:g}%"]
    align = "lrlrl" + "rl" * len(keys)
    for backbone, setting in report.groups:
        rows = []
        for c in verdicts:
            if (c.backbone, c.setting) != (backbone, setting):
                continue
            latency = dict(c.latency)
            row = [c.variant, fmt_pct(c.params.delta_pct), c.params.outcome.value,
                   fmt_pct(c.macs.delta_pct), c.macs.outcome.value]
            for k in keys:
                v = latency.get(k)
                entry = latency_entry(report.cell(c.id), k)
                if v is None and entry is not None and not entry.ok:
                    row += [DASH, "timing failed"]
                elif v is None:
                    row += [DASH, Outcome.NOT_MEASURED.value]
                else:
                    lo, hi = v.ci95_pct or (None, None)
                    row += [fmt_interval(v.delta_pct, lo, hi), v.outcome.value]
            rows.append(row)
        if rows:
            out += ["", _group_title(backbone, setting), "", table(header, rows, align)]
    out += ["", "### Summary", "", _summary(report)]
    return "\n".join(out)


def _summary(report: Report) -> str:
    claims, unit, verdicts = report.thresholds, report.claims_unit, report.claims
    n = len(verdicts)
    params = tally([c.params for c in verdicts])
    macs = tally([c.macs for c in verdicts])
    latency = tally([v for c in verdicts for _, v in c.latency])
    timings = sum(latency.values())
    sentences = [
        f"Over {n} attention cell{'s' if n != 1 else ''}, the parameter claim "
        f"{_tally_phrase(params)}; the {unit} claim ({claims.convention}) {_tally_phrase(macs)}"
        + (
            f"; the latency claim {_tally_phrase(latency)} (of {timings} timing"
            f"{'s' if timings != 1 else ''})."
            if timings
            else "; latency was not measured."
        )
    ]
    for gap in report.gaps:
        factor = gap.factor
        sentences.append(
            f"The gap on {gap.key.phrase}: median Δ {unit}s ({claims.convention}) "
            f"{gap.median_macs_pct:+.2f}% vs median Δ latency {gap.median_latency_pct:+.1f}% "
            f"over {gap.cells} cell{'s' if gap.cells != 1 else ''}"
            + (
                f", latency growing {factor:.0f}× as much as the {unit} count."
                if factor is not None and factor >= 1.5
                else "."
            )
        )
    return " ".join(sentences)


def _tally_phrase(counts: dict[Outcome, int]) -> str:
    parts = [  # "holds in 3", "is refuted in 1", ...
        f"{'' if outcome is Outcome.HOLDS else 'is '}{outcome.value} in {counts[outcome]}"
        for outcome in Outcome
        if counts[outcome]
    ]
    if not parts:
        return "has nothing to judge"
    total = sum(counts.values())
    if len(parts) == 1 and total > 1:
        return parts[0].replace(f" in {total}", " in both" if total == 2 else f" in all {total}")
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _attention_section(report: Report) -> str:
    places = report.attention
    if not places:
        return ""
    unit = places[0].unit
    convention = places[0].convention
    moved = next((p.bytes_convention for p in places if p.bytes_convention), None)
    out = ["## Where the attention cost sits", "",
           f"Each attention variant's own part, summed per stage of the backbone (0 is the "
           f"first): {unit}s under `{convention}`"
           + (f", and the bytes it moves under `{moved}` with the operators that move most "
              "(share of the attention bytes)." if moved else ".")]
    for backbone, setting in dict.fromkeys((p.backbone, p.setting) for p in places):
        rows = [p for p in places if (p.backbone, p.setting) == (backbone, setting)]
        header = ["variant", f"attention (M{unit})", f"per stage (M{unit})"]
        if moved:
            header += ["attention (MB)", "per stage (MB)", "heaviest operators"]
        body = []
        for p in rows:
            row = [p.variant, fmt_millions(p.total), _per_stage(p.by_stage)]
            if moved:
                row += [fmt_mb(p.bytes_total), _per_stage(p.bytes_by_stage or {}),
                        ", ".join(f"{op.removeprefix('aten::')} {share:.0%}"
                                  for op, share in p.heaviest_ops) or DASH]
            body.append(row)
        out += ["", _group_title(backbone, setting), "",
                table(header, body, align="lrlrll"[:len(header)])]
    return "\n".join(out)


def _per_stage(values: dict[str, int]) -> str:
    return " · ".join(f"{stage}: {value / 1e6:.3g}" for stage, value in values.items()) or DASH


def _published_section(report: Report) -> str:
    comparisons = report.published
    if not comparisons:
        return ""
    header = ["backbone", "variant", "setting", "figure", "published", "measured, as printed",
              "difference (%)", "convention", "reproduces", "reproduced by", "source"]
    rows = []
    for c in comparisons:
        where = [c.backbone, c.variant, c.setting or DASH]
        if not c.checks:
            rows.append([*where, DASH, DASH, DASH, DASH, DASH, DASH, DASH, c.source or DASH])
        for check in c.checks:
            is_cost = check is c.cost
            rows.append([
                *where,
                "cost" if is_cost else "params",
                str(check.figure),
                DASH if check.measured is None
                else f"{check.measured_printed} {check.figure.unit_text()}",
                DASH if check.diff_pct is None else signed(check.diff_pct, 2),
                check.convention or DASH,
                _yes_no(check.reproduced),
                (", ".join(c.reproducing()) or "none") if is_cost and check.measured is not None
                else DASH,
                c.source or DASH,
            ])
    out = [
        "## Published vs measured",
        "",
        "Each figure is compared at the precision it was printed with: the measured value in "
        "the same scale, rounded to the same decimals, must print the same digits. A cost is "
        "judged under the convention it was counted in; *reproduced by* lists every counted "
        "convention in its unit that prints the same digits.",
        "",
        table(header, rows, align="lllll" + "rr" + "llll"),
        "",
    ]
    notes = [note for c in comparisons for note in c.notes()]
    if notes:
        out += ["Figures that do not reproduce:", ""]
        out += [f"- {note}" for note in notes]
    else:
        out.append("Every published figure is reproduced to the printed digits.")
    return "\n".join(out)


def _yes_no(value: bool | None) -> str:
    return DASH if value is None else "yes" if value else "no"


def _uncounted_section(report: Report) -> str:
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


def _failed_section(report: Report) -> str:
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
        out += _error_item(where, entry.failure.error)
    return "\n".join(out)


def _error_item(what: str, error: str) -> list[str]:
    lines = str(error).strip().splitlines() or [""]
    item = [f"- {what}: {lines[0]}"]
    if len(lines) > 1:
        item += ["", "  ```", *(f"  {line}" for line in lines[1:]), "  ```"]
    return item


def _plot_section(plot_file: str | None, plot_note: str | None,
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
