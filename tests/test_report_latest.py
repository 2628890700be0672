"""Reports from a hand-made version-7 file: every stop reason, a runtime with its builds and
output checks, an attribution with its explanation, and a mode this install does not know.

The fixture ``tests/data/report_results_v7.json`` is written by hand (no measurement):
ResNet-18 at 64x64 with none/se/sge/sa, timed eager and in ``onnxruntime`` at batch 1 with
sequential intervals. The baseline runs 20 ms eager and 10 ms in onnxruntime; Δ latency (eager,
onnxruntime): se +20 [+17, +22] decided and +40 [+35, +44] failed; sge +5 [+2.5, +7.5] near and
+30 [+27, +33] max-processes; sa +10 [+2, +18] budget, and its onnxruntime build did not match
eager (max abs error 0.5), so it was not timed. The probe: 10 GB/s, 100 GFLOP/s, 10 µs per
eager operator. The attribution profiles none, se (two modules of 5 calls, 5 MB each) and sge
(7 and 6 calls, 2 MB each).

The golden report is rendered with ``onnxruntime`` unknown to this install, as a file from a
machine with a runtime this one lacks would be; regenerate with

    ATTNPROF_UPDATE_GOLDEN=1 python -m pytest tests/test_report_latest.py
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from attnprof import results as results_document
from attnprof.cli import EXIT_OK, main
from attnprof.errors import AttnprofError
from attnprof.latency import modes
from attnprof.latency.records import PAIRINGS
from attnprof.latency.rounds import CUDA_CACHE_STATE
from attnprof.report import build_report, render_csv, render_markdown, summary_table
from attnprof.report import columns as c
from attnprof.report.plot import _kind_markers
from attnprof.report.tables import UNIT_SUFFIXES, LatencyKey
from attnprof.report.verdict import MAX_LATENCY_COLUMNS, split_conditions

DATA = Path(__file__).resolve().parent / "data"
FIXTURE = DATA / "report_results_v7.json"
UPDATE = os.environ.get("ATTNPROF_UPDATE_GOLDEN") == "1"
EAGER = LatencyKey("cpu", 1)
RUNTIME = LatencyKey("cpu", 1, mode="onnxruntime")


@pytest.fixture
def unknown_runtime(monkeypatch):
    """This install as one without the onnxruntime mode."""
    monkeypatch.delitem(modes.MODES, "onnxruntime", raising=False)


@pytest.fixture
def report(unknown_runtime):
    return build_report(results_document.load(FIXTURE))


def _golden(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with ATTNPROF_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from the golden file; if the change is intended, regenerate with "
        "ATTNPROF_UPDATE_GOLDEN=1 and review the diff"
    )


def test_markdown_and_csv_match_golden(report):
    _golden("report_golden_v7.md", render_markdown(report))
    _golden("report_golden_v7.csv", render_csv(report))


def test_the_report_leads_with_the_verdict(report):
    text = render_markdown(report)
    assert text.index("## Verdict") < text.index("## How it was measured") \
        < text.index("## Counts per convention") < text.index("## The machine's limits") \
        < text.index("## Modes and runtimes") < text.index("## Builds") \
        < text.index("## Where the time goes")
    header = next(line for line in text.splitlines() if line.startswith("| variant | Δ params"))
    assert header == ("| variant | Δ params (%) | Δ paper MACs (%) | Δ full bytes (%) | cpu b1 Δ "
                      "latency (%) [95% CI] | cpu b1 onnxruntime Δ latency (%) [95% CI] | "
                      "verdict |")
    rows = {line.split(" | ")[0]: line for line in text.splitlines()
            if line.startswith(("| se |", "| sge |", "| sa |")) and "✓" in line}
    # se: +0.91% params (100,000 / 11,000,000) holds; both latencies refuted
    assert rows["| se"] == ("| se | +0.91 ✓ | +0.10 ✓ | +20.00 | +20.0 [+17.0, +22.0] ✗ | "
                            "+40.0 [+35.0, +44.0] ✗ | refuted: latency |")
    assert rows["| sge"].endswith("| refuted: latency 1/2; inconclusive: latency 1/2 |")
    assert "| timing failed | inconclusive: latency; timing failed 1/2 |" in rows["| sa"]


def test_each_interval_says_how_many_processes_and_why_it_stopped(report):
    (verdict,) = report.verdicts
    behind = {row.variant: {k.label: cell.behind for k, cell in row.latency.items()}
              for row in verdict.rows if not row.baseline}
    assert behind == {
        "se": {"cpu b1": "8 proc. × 2 rounds · decided ‡",  # its processes disagree
               "cpu b1 onnxruntime": "10 proc. × 2 rounds · failed ‡"},
        "sge": {"cpu b1": "12 proc. × 2 rounds · near",
                "cpu b1 onnxruntime": "40 proc. × 2 rounds · max-processes"},
        "sa": {"cpu b1": "9 proc. × 2 rounds · budget", "cpu b1 onnxruntime": "failed"},
    }
    text = render_markdown(report)
    for code in ("decided", "near", "max-processes", "budget", "failed"):
        assert f"\n- {code}: " in text, code
    assert "- fixed: " not in text
    method = text.split("## How it was measured")[1].split("\n## ")[0]
    assert "at most 6 points wide" in method and "until 40 processes" in method
    assert "budget of 600 s" in method and "valid however many processes were taken" in method
    assert "Allocator: `steady`, the steady state of a long-running server" in method
    assert report.frame.set_index("variant").loc["sge", "cpu_b1_stopped"] == "near"


def test_a_runtime_beside_eager_in_percent_and_in_ms(report):
    (runtime,) = report.runtimes
    assert (runtime.eager, runtime.other) == (EAGER, RUNTIME)
    assert runtime.speedup == pytest.approx(2.0)  # 20 ms eager / 10 ms
    rows = {row.variant: row for row in runtime.rows}
    # se: 20 ms x 20% = 4 ms eager, 10 ms x 40% = 4 ms in the runtime: nothing recovered
    assert (rows["se"].eager_ms, rows["se"].ms) == pytest.approx((4.0, 4.0))
    assert rows["se"].recovered_pct == pytest.approx(0.0)
    # sge: 1 ms eager, 3 ms in the runtime: 1 - 3 / 1 = -200%
    assert rows["sge"].recovered_pct == pytest.approx(-200.0)
    assert rows["sa"].pct is None and rows["sa"].recovered_pct is None  # not timed there
    text = render_markdown(report)
    assert "Baseline: 20.00 ms eager, 10.00 ms in onnxruntime: 2.00× faster." in text
    assert "| sge | +5.0 [+2.5, +7.5] | +30.0 [+27.0, +33.0] | +1.00 | +3.00 | -200 |" in text


def test_builds_and_their_output_checks(report):
    builds = {row.variant: row for row in report.builds}
    assert set(builds) == {"none", "se", "sge", "sa"}  # eager builds nothing
    assert builds["se"].build_s == 3.5 and builds["se"].check.ok
    assert not builds["sa"].check.ok and "not timed" in builds["sa"].error
    text = render_markdown(report)
    assert "| se | onnxruntime | inference | 3.5 | 2e-06 | 1e-05 | 0.0001, 0.001 | yes |" in text
    assert "| sa | onnxruntime | inference | 4.0 | 0.5 | 0.2 | 0.0001, 0.001 | no |" in text
    assert "- **onnxruntime** 1.32.0: a mode this attnprof does not describe." in text
    frame = report.frame.set_index("variant")
    assert frame.loc["se", "cpu_b1_onnxruntime_build_s"] == 3.5
    assert frame.loc["sa", "cpu_b1_onnxruntime_output_check"] == "failed"
    assert "cpu_b1_build_s" not in frame.columns  # eager: no build columns


def test_where_the_time_goes_and_what_explains_it(report):
    (group,) = report.breakdowns
    rows = {row.variant: row for row in group.rows}
    se, sge = rows["se"], rows["sge"]
    # se: two modules of 5 calls (mean, addmm x2, sigmoid, mul), 1 ms each
    assert (se.calls_per_module, se.attention_calls, se.extra_calls) == ((5, 5), 10, 10)
    assert se.attention_ms == pytest.approx(2.0) and se.share == pytest.approx(1.0)
    assert (se.flops, se.bytes) == (400_000, 10_000_000)
    assert se.heaviest[0] == ("aten::mean", pytest.approx(1.0))
    x = se.explanation
    # the paired Δ: 20 ms x 20% = 4 ms; 10 MB at 10 GB/s = 1 ms; 10 calls x 10 µs = 0.1 ms
    assert (x.delta_ms, x.bytes_ms, x.calls_ms) == pytest.approx((4.0, 1.0, 0.1))
    assert x.left_ms == pytest.approx(2.9) and se.delta_source == "paired cpu b1"
    # sge: 7 + 6 calls; 4 MB -> 0.4 ms; 13 x 10 µs = 0.13 ms; of 20 ms x 5% = 1 ms
    assert sge.calls_per_module == (6, 7)
    assert (sge.explanation.bytes_ms, sge.explanation.calls_ms,
            sge.explanation.left_ms) == pytest.approx((0.4, 0.13, 0.47))
    text = render_markdown(report)
    assert "| se | +4.00 | paired cpu b1 | 10.0 | +1.00 | 25 | +0.100 | 2 | +2.90 | 72 |" in text
    assert "| sge (2 modules) | 6–7 | 13 | +13 |" in text


def test_an_explanation_needs_the_fixed_cost_of_an_operator(unknown_runtime):
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    del data["provenance"]["machine_limits"][0]["op_fixed_cost_us"]
    report = build_report(results_document.parse(data, "fixture"))
    assert all(row.explanation is None for group in report.breakdowns for row in group.rows)
    assert "No explanation: the probe did not measure a fixed cost per operator" \
        in render_markdown(report)


def test_a_mode_this_install_knows_is_described(monkeypatch):
    said = "a runtime described by this install"
    monkeypatch.setitem(modes.MODES, "onnxruntime", modes.Mode(
        "onnxruntime", said, ("inference",), "attnprof.latency.modes:EAGER", builds=True))
    text = render_markdown(build_report(results_document.load(FIXTURE)))
    assert f"onnxruntime ({said})" in text and f"- **onnxruntime**: {said}." in text
    assert "does not describe" not in text


def test_headers_and_units_come_from_the_contract(report):
    """One column, three renderers: its header (with its unit) in report.md and the terminal
    summary, its key (ending in its unit) in results.csv."""
    out = io.StringIO()
    Console(file=out, width=10_000, no_color=True).print(summary_table(report))
    terminal = out.getvalue()
    markdown = render_markdown(report)
    csv_header = render_csv(report).splitlines()[0].split(",")
    assert csv_header == [column.key for column in report.columns]
    for column in (c.PARAMS_DELTA, c.verdict_latency(RUNTIME), c.bytes_delta("full")):
        assert f"({column.unit})" in column.header
        assert column.header in markdown and column.header in terminal, column.header
    for column in (c.PARAMS_DELTA, c.timing(RUNTIME).delta, c.timing(RUNTIME).median):
        assert column.key in csv_header and column.key.endswith(UNIT_SUFFIXES)
    assert c.timing(RUNTIME).delta.key == "cpu_b1_onnxruntime_delta_pct"
    # the terminal's rows: each variant, its verdict and its cell's status
    assert "│ resnet18 · fc@64x64 │ sa " in terminal and "partial │" in terminal


def test_many_conditions_split_into_narrow_verdict_tables():
    keys = [LatencyKey("cpu", 1, pass_name=p, mode=m) for p, m in (
        ("inference", "eager"), ("inference", "compile"), ("inference", "onnxruntime"),
        ("inference", "aoti"), ("train", "eager"), ("train", "compile"))]
    keys += [LatencyKey("cpu", 8)]
    parts = split_conditions(keys)
    assert [(label, len(some)) for label, some in parts] == [
        ("cpu b1 inference", 4), ("cpu b1 train", 2), ("cpu b8", 1)]
    assert all(len(some) <= MAX_LATENCY_COLUMNS for _, some in parts)
    assert split_conditions(keys[:5]) == [("", tuple(keys[:5]))]  # five fit in one table


def test_a_file_split_in_parts_renders_them_all(unknown_runtime):
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for cell in data["cells"]:  # the same timings again as a training step, and compiled
        extra = [{**entry, "pass_name": p, "mode": m} for entry in cell["latency"]
                 for p, m in (("train", entry["mode"]),) if entry["mode"] == "eager"]
        extra += [{**entry, "mode": "compile"} for entry in cell["latency"]
                  if entry["mode"] == "eager"]
        extra += [{**entry, "mode": "aoti"} for entry in cell["latency"]
                  if entry["mode"] == "onnxruntime"]
        extra += [{**entry, "pass_name": "train", "mode": "compile"}
                  for entry in cell["latency"] if entry["mode"] == "eager"]
        cell["latency"] += extra
    report = build_report(results_document.parse(data, "fixture"))
    assert [t.part for t in report.verdicts] == ["cpu b1 inference", "cpu b1 train"]
    text = render_markdown(report)
    assert "### resnet18 · fc@64x64 · cpu b1 inference" in text
    assert "### resnet18 · fc@64x64 · cpu b1 train" in text
    assert "More than 5 timing conditions" in text
    out = io.StringIO()
    Console(file=out, width=10_000, no_color=True).print(summary_table(report))
    assert "(cpu b1 train)" in out.getvalue()


def test_report_command_renders_the_file(tmp_path, capsys, unknown_runtime):
    code = main(["report", str(FIXTURE), "--stdout"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert out == render_markdown(build_report(results_document.load(FIXTURE)))


def test_cuda_timings_state_their_cache(unknown_runtime):
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for cell in data["cells"]:
        for entry in cell["latency"]:
            entry["device"] = "cuda"
    text = render_markdown(build_report(results_document.parse(data, "fixture")))
    assert f"CUDA timings: {CUDA_CACHE_STATE}." in text
    assert "CUDA timings" not in render_markdown(build_report(results_document.load(FIXTURE)))


def test_the_method_says_how_the_rounds_paired_as_recorded(unknown_runtime):
    """Bracketed ratios are described as bracketed; a file from before them (the fixture,
    without ``pairing``) keeps its old words; a file holding both names both."""
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    # the baselines' ratios to themselves keep no pairing, as files written before the
    # baseline recorded one: they say nothing of how the rounds paired
    entries = [e for cell in data["cells"] for e in cell["latency"]
               if e.get("ratio") and e["ratio"]["baseline"] != cell["variant"]]
    for entry in entries:
        entry["ratio"]["pairing"] = "bracketed"
    text = render_markdown(build_report(results_document.parse(data, "fixture")))
    bracketed = f"{PAIRINGS['bracketed'].rounds}, one sample of ≥ 0.05 s of calls per variant"
    assert bracketed in text and "interleaved rounds" not in text
    entries[0]["ratio"]["pairing"] = None
    both = render_markdown(build_report(results_document.parse(data, "fixture")))
    assert "interleaved rounds, one sample of ≥ 0.05 s of calls per model per round; others " \
           f"in {bracketed}" in both
    old = render_markdown(build_report(results_document.load(FIXTURE)))
    assert "in interleaved rounds, one sample of ≥ 0.05 s of calls per model per round, in " \
           "fresh processes" in old and "bracketed" not in old
    entries[0]["ratio"]["pairing"] = "nearby"
    with pytest.raises(AttnprofError, match="pairing"):
        results_document.parse(data, "fixture")


def test_each_pass_and_mode_gets_its_own_marker_in_the_bytes_plot():
    kinds = [("inference", "eager"), ("inference", "onnxruntime"), ("inference", "aoti"),
             ("train", "compile")]
    markers = _kind_markers(kinds)
    assert markers[("inference", "eager")] == "o" and markers[("train", "compile")] == "D"
    assert len(set(markers.values())) == len(kinds)
