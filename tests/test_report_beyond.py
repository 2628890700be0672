"""The report's sections beyond an eager forward, from a hand-made results file.

The fixture of tests/test_report.py (ResNet-18 none/se/sge, timed at batch 1) is given by hand:
training-step counts, a compiled and a training timing of batch 1, and the machine's probed
limits, with round numbers, so every figure the report derives can be checked exactly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from attnprof import results as results_document
from attnprof.report import BYTES_PLOT, build_report, render_csv, render_markdown, write_reports
from attnprof.report.plot import plot_available
from attnprof.report.tables import UNIT_SUFFIXES, cell_frame

FIXTURE = Path(__file__).resolve().parent / "data" / "report_results.json"
LIMITS = {
    "device": "cpu", "dtype": "float32", "threads": 2,
    "bandwidth_bytes_per_s": 10e9, "bandwidth_spread": 0.01,
    "bandwidth_method": "copy", "bandwidth_buffer_bytes": 2**27,
    "bandwidth_samples_bytes_per_s": [10e9], "peak_flops_per_s": 100e9,
    "peak_flops_spread": 0.01, "peak_flops_method": "mm", "matmul_n": 1024,
    "peak_flops_samples_per_s": [100e9], "repeats": 1, "seconds": 1.0, "other_cpu_load": 0.0,
}
# variant -> (training FLOPs, training bytes, activation bytes, eager Δ%, compiled Δ%)
TRAINING = {
    "none": (9e9, 300e6, 50e6, None, None),
    "se": (9.1e9, 330e6, 55e6, 20.0, 5.0),
    "sge": (9.05e9, 310e6, 60e6, 3.0, 3.0),
}


def _entry(base: dict, pass_name: str, mode: str, median: float, delta: float | None) -> dict:
    entry = {**copy.deepcopy(base), "pass_name": pass_name, "mode": mode,
             "median_ms": median, "first_call_s": [12.0, 4.0, 4.0] if mode == "compile" else
             [0.5]}
    entry["ratio"] = None if delta is None else {
        "baseline": "none", "delta_pct": delta, "delta_ci95_pct": [delta - 1, delta + 1],
        "median": 1 + delta / 100, "ci95": [1 + (delta - 1) / 100, 1 + (delta + 1) / 100],
        "values": [1 + delta / 100] * 6, "ci_over": "processes", "processes": 6,
        "rounds_per_process": [1] * 6, "process_medians": [1 + delta / 100] * 6,
    }
    return entry


@pytest.fixture
def beyond() -> dict:
    data = results_document.migrate(json.loads(FIXTURE.read_text(encoding="utf-8")), "fixture")
    data["provenance"]["machine_limits"] = [LIMITS]
    for cell in data["cells"]:
        if cell["backbone"] != "resnet18":
            continue
        flops, moved, saved, eager, compiled = TRAINING[cell["variant"]]
        cell["profile"]["training"] = {
            "forward": int(flops / 3), "backward": int(flops - int(flops / 3)),
            "forward_bytes": int(moved / 3), "backward_bytes": int(moved - int(moved / 3)),
            "activation_bytes": int(saved), "unit": "FLOP", "convention": "full",
        }
        base = next(e for e in cell["latency"] if e["batch"] == 1)
        cell["latency"] += [
            _entry(base, "inference", "compile", 8.0, compiled),
            _entry(base, "train", "eager", 40.0, eager),
        ]
    return data


def test_the_training_step_section_gives_each_delta(beyond):
    text = render_markdown(build_report(results_document.parse(beyond, "fixture")))
    section = text.split("## Training step")[1].split("\n## ")[0]
    se = next(line for line in section.splitlines() if line.startswith("| se |"))
    # 9.1 GFLOP (+1.11%), backward/forward 2.00, 330 MB (+10.0%), 55 MB saved (+10.0%)
    assert se.startswith("| se | 9.100 | +1.11 | 2.00 | 330.0 | +10.0 | 55.0 | +10.0 |")


def test_eager_and_compiled_side_by_side_with_the_overhead_recovered(beyond):
    report = build_report(results_document.parse(beyond, "fixture"))
    (forward,) = [x for x in report.runtimes if x.other.label == "cpu b1 compile"]
    assert {x.backbone for x in report.runtimes} == {"resnet18"}  # the one compiled
    # the baseline: 10 ms eager, 8 ms compiled: 1.25x faster
    assert forward.speedup == pytest.approx(1.25)
    rows = {row.variant: row for row in forward.rows}
    assert rows["se"].eager_pct == 20.0 and rows["se"].pct == 5.0
    # in ms: 10 ms x 20% = 2 ms eager, 8 ms x 5% = 0.4 ms compiled: 1 - 0.4 / 2 = 80%
    assert (rows["se"].eager_ms, rows["se"].ms) == pytest.approx((2.0, 0.4))
    assert rows["se"].recovered_pct == pytest.approx(80.0)
    assert rows["sge"].recovered_pct is None  # +3% [-1, +7]: no established overhead
    builds = {(b.variant, b.key.label): b for b in report.builds}
    assert builds["se", "cpu b1 compile"].build_s == 4.0  # the median first call of 12, 4, 4
    assert builds["se", "cpu b1 compile"].first_call
    assert ("se", "cpu b1") not in builds  # eager builds nothing
    text = render_markdown(report)
    assert "## Modes and runtimes" in text and "## Builds" in text
    assert "| se | +20.0 [+15.0, +25.0] | +5.0 [+4.0, +6.0] | +2.00 | +0.400 | 80 |" in text
    assert "Baseline: 10.00 ms eager, 8.00 ms in compile: 1.25× faster." in text
    assert "| se | compile | inference | 4.0 *first call* |" in text


def test_each_timed_cell_gets_its_roofline_and_the_bytes_alone_comparison(beyond):
    report = build_report(results_document.parse(beyond, "fixture"))
    train = [row for row in report.limits if row.key.train]
    se = next(row for row in train if row.variant == "se" and row.backbone == "resnet18")
    # 9.1 GFLOP at 100 GFLOP/s = 91 ms > 330 MB at 10 GB/s = 33 ms: compute-bound
    assert se.bound == "compute" and se.bound_ms == pytest.approx(91.0)
    assert se.achieved_flops_per_s == pytest.approx(9.1e9 / 0.040)
    # 30 MB more at 10 GB/s is 3 ms; the baseline's 40 ms x 20% = 8 ms measured
    assert se.bytes_alone_ms == pytest.approx(3.0) and se.delta_ms == pytest.approx(8.0)
    assert se.over_bytes_alone == pytest.approx(8.0 / 3.0)
    assert all(row.key.batch == 1 for row in report.limits)  # counted at batch 1 only
    text = render_markdown(report)
    assert "## The machine's limits" in text and "10.0 GB/s" in text and "100.0 GFLOP/s" in text
    assert "Timings at batch 8 have no roofline row: the counts are for a batch of 1." in text


def test_claims_cover_every_pass_and_mode(beyond):
    report = build_report(results_document.parse(beyond, "fixture"))
    labels = {key.label for claim in report.claims for key, _ in claim.latency}
    assert {"cpu b1", "cpu b1 compile", "cpu b1 train"} <= labels


def test_csv_columns_carry_units_and_the_pass_and_mode(beyond):
    frame = cell_frame(results_document.parse(beyond, "fixture"))
    assert {"cpu_b1_train_median_ms", "cpu_b1_compile_delta_pct", "train_FLOP",
            "train_activation_bytes_delta_pct"} <= set(frame.columns)
    numeric = [c for c in frame.columns if frame[c].dtype.kind == "f"]
    assert all(c.endswith(UNIT_SUFFIXES) for c in numeric)
    assert "cpu_b1_train_delta_pct" in render_csv(build_report(
        results_document.parse(beyond, "fixture")))


@pytest.mark.skipif(not plot_available(), reason="matplotlib is an optional extra")
def test_the_bytes_plot_is_written_beside_the_macs_plot(beyond, tmp_path):
    report = build_report(results_document.parse(beyond, "fixture"))
    kinds = {(p.pass_name, p.mode) for p in report.points if p.bytes_pct is not None}
    assert kinds == {("inference", "eager"), ("inference", "compile"), ("train", "eager")}
    written = write_reports(report, tmp_path)
    assert tmp_path / BYTES_PLOT in written
    assert (tmp_path / BYTES_PLOT).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"]({BYTES_PLOT})" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_a_forward_only_file_has_none_of_these_sections():
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    text = render_markdown(build_report(results_document.parse(data, "fixture")))
    for title in ("## Training step", "## Modes and runtimes", "## Builds",
                  "## The machine's limits", "## Where the time goes"):
        assert title not in text
