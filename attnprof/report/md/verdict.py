"""The verdict section, first in report.md: per backbone and setting, each variant's Δ params,
Δ MACs, Δ bytes and Δ latency in every pass, mode and runtime, judged, with what stands behind
each interval, the notes on its cells, and a summary over all of them."""

from __future__ import annotations

from attnprof.latency.records import STOP_REASONS
from attnprof.report import columns as c
from attnprof.report.claims import Outcome, tally
from attnprof.report.md.table import table, title
from attnprof.report.model import Report
from attnprof.report.verdict import MAX_LATENCY_COLUMNS, NONFINITE_MARK, VerdictTable
from attnprof.suite.config import BASELINE


def verdict_section(report: Report) -> str:
    claims = report.thresholds
    moved = report.byte_conventions[0] if report.byte_conventions else None
    out = [
        "## Verdict",
        "",
        f"Each attention variant against the `{BASELINE}` baseline of its backbone and "
        f"setting: Δ params, Δ {report.claims_unit}s under `{claims.convention}` (the claims' "
        "convention)"
        + (f", Δ bytes moved under `{moved}`" if moved else "")
        + ", and Δ latency with its 95% interval in each pass, mode and runtime timed, each "
        f"judged against the claim: {c.MARKS['holds']} holds, {c.MARKS['refuted']} refuted, "
        f"{c.MARKS['inconclusive']} inconclusive (Δ params ≤ {claims.params_pct:g}%, "
        f"Δ {report.claims_unit}s ≤ {claims.macs_pct:g}%, Δ latency ≤ "
        f"{claims.latency_pct:g}%). A count is exact: it holds when its Δ is at most the "
        "threshold. A latency is measured: it is refuted only when its whole interval lies "
        "above the threshold, holds only when it lies wholly below, and is inconclusive "
        "otherwise. The verdict names what refutes the claim, or what leaves it open.",
    ]
    if any(t.part for t in report.verdicts):
        out += ["", f"More than {MAX_LATENCY_COLUMNS} timing conditions: each backbone and "
                "setting gets one verdict table per machine, device and batch size (and per "
                "pass where one of those is still too wide)."]
    if not report.verdicts:
        out += ["", "No cells in this results file."]
    stops: set[str] = set()
    for verdict in report.verdicts:
        out += ["", title(verdict.backbone, verdict.setting, verdict.part), "",
                _verdict_table(report, verdict)]
        behind = _behind(verdict)
        if behind:
            out += ["", behind]
            stops |= {cell.stopped for row in verdict.rows for k in verdict.keys
                      if (cell := row.latency.get(k)) is not None and cell.stopped}
        if verdict is _last_of_group(report, verdict):
            out += _notes(report, verdict)
    if stops:
        out += ["", "Why a comparison took no more processes:", ""]
        out += [f"- {code}: {STOP_REASONS[code]}." if code in STOP_REASONS
                else f"- {code}: a reason this attnprof does not describe." for code in
                [*(s for s in STOP_REASONS if s in stops), *sorted(stops - set(STOP_REASONS))]]
    if report.verdicts:
        out += ["", "### Summary", "", _summary(report)]
    return "\n".join(out)


def _last_of_group(report: Report, verdict: VerdictTable) -> VerdictTable:
    return [t for t in report.verdicts
            if (t.backbone, t.setting) == (verdict.backbone, verdict.setting)][-1]


def _verdict_table(report: Report, verdict: VerdictTable) -> str:
    claims = report.thresholds
    moved = report.byte_conventions[0] if report.byte_conventions else None
    columns = [c.VARIANT, c.VERDICT_PARAMS,
               c.verdict_count(claims.convention, report.claims_unit)]
    columns += [c.bytes_delta(moved)] if moved else []
    columns += [c.verdict_latency(k) for k in verdict.keys]
    columns.append(c.VERDICT)
    rows = []
    for row in verdict.rows:
        if row.baseline and row.status != "failed":
            continue
        values = [row.label, row.params, row.macs]
        values += [row.bytes_pct] if moved else []
        values += [row.latency.get(k) for k in verdict.keys]
        values.append(row.verdict(verdict.keys, report.claims_unit))
        rows.append(values)
    if not rows:
        return "No attention variant to judge."
    return table(columns, rows)


def _behind(verdict: VerdictTable) -> str:
    """What stands behind each interval: one line when it is the same for every one, else a
    table with a column per condition."""
    rows = [row for row in verdict.rows if not row.baseline and row.latency]
    if not verdict.keys or not rows:
        return ""
    columns = [c.VARIANT, *(c.behind(k) for k in verdict.keys)]
    values = [[row.variant, *(row.latency.get(k) for k in verdict.keys)] for row in rows]
    shown = {column.show(value) for row in values
             for column, value in zip(columns[1:], row[1:], strict=True)}
    if len(shown) == 1:
        return f"Behind each interval: {shown.pop()}."
    return "Behind each interval:\n\n" + table(columns, values)


def _notes(report: Report, verdict: VerdictTable) -> list[str]:
    cells = {cell.id: cell for cell in report.cells}
    said = []
    for row in verdict.rows:
        cell = cells[row.cell_id]
        profile = cell.profile
        if profile is None:
            continue
        if profile.nonfinite is not None:
            said.append(f"- {NONFINITE_MARK} `{row.variant}`: the output is not finite on the "
                        f"profiling input (standard normal, seed 0): "
                        f"{profile.nonfinite.describe()}; the counts stand, a latency "
                        "measured on it need not be that of real data.")
        said += [f"- `{row.variant}`: {note}" for note in profile.notes]
    out = ["", "Notes:", "", *said] if said else []
    if not any(row.baseline and row.status != "failed" for row in verdict.rows):
        out += ["", f"No counted `{BASELINE}` baseline here: no Δ% can be given."]
    return out


def _summary(report: Report) -> str:
    claims, unit, verdicts = report.thresholds, report.claims_unit, report.claims
    n = len(verdicts)
    params = tally([x.params for x in verdicts])
    macs = tally([x.macs for x in verdicts])
    latency = tally([v for x in verdicts for _, v in x.latency])
    timings = sum(latency.values())
    if not n:
        return "No counted attention variant to judge."
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
