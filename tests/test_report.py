"""Reports from a hand-made results file: golden report.md / results.csv, claims, published rows.

The fixture ``tests/data/report_results.json`` is written by hand (no measurement): ResNet-18
and ResNet-50 at 224x224 with none/se/sge, the ResNet-50 SGE cell failed, latency at batch 1
and 8 (ResNet-50's batch-8 timing failed), and five published rows.

Golden files: after an intended change to the reports, regenerate them with

    ATTNPROF_UPDATE_GOLDEN=1 python -m pytest tests/test_report.py

and review the diff of ``tests/data/report_golden.md`` / ``report_golden.csv`` before committing.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from attnprof import results as results_document
from attnprof.errors import AttnprofError
from attnprof.report import (
    FILE_NAMES,
    build_report,
    plot_skip_reason,
    render_csv,
    render_markdown,
    write_reports,
)
from attnprof.report import plot as report_plot
from attnprof.report.claims import Outcome, count_verdict, interval_verdict
from attnprof.report.tables import UNIT_SUFFIXES, cell_frame

DATA = Path(__file__).resolve().parent / "data"
FIXTURE = DATA / "report_results.json"
UPDATE = os.environ.get("ATTNPROF_UPDATE_GOLDEN") == "1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def report_of(data: dict):
    """The report of a (possibly edited) results dict, read as ``attnprof report`` reads one."""
    return build_report(results_document.parse(data, "fixture"))


def _golden(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with ATTNPROF_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"{name} differs from the golden file; if the change is intended, regenerate with "
        "ATTNPROF_UPDATE_GOLDEN=1 and review the diff"
    )


# -- golden files -------------------------------------------------------------------------------


def test_markdown_matches_golden(results):
    _golden("report_golden.md", render_markdown(report_of(results)))


def test_csv_matches_golden(results):
    _golden("report_golden.csv", render_csv(report_of(results)))


def test_write_reports_writes_what_render_gives(results, tmp_path):
    written = write_reports(report_of(results), tmp_path, formats=("md", "csv"))
    assert written == [tmp_path / "report.md", tmp_path / "results.csv"]
    report = report_of(results)
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == render_markdown(report)
    assert (tmp_path / "results.csv").read_text(encoding="utf-8") == render_csv(report)


# -- the numbers --------------------------------------------------------------------------------


def test_deltas_against_the_same_backbone_baseline(results):
    frame = cell_frame(results_document.parse(results)).set_index("id")
    se50 = frame.loc["resnet50|se|fc@224x224"]
    # (28,088,024 - 25,557,032) / 25,557,032 = 2,530,992 / 25,557,032 = 9.903310%
    assert se50["params_delta_pct"] == pytest.approx(9.903310, abs=1e-6)
    # (4.130 - 4.122) / 4.122 GMAC = 0.008 / 4.122 = 0.194081%
    assert se50["paper_delta_pct"] == pytest.approx(0.194081, abs=1e-6)
    # bytes: (300 - 250) / 250 MB = +20%; intensity 8.316e9 FLOP / 3e8 byte = 27.72 FLOP/byte
    assert se50["full_bytes_delta_pct"] == pytest.approx(20.0)
    assert se50["full_FLOP_per_byte"] == pytest.approx(27.72)
    # fvcore was not counted for this cell: no value and no Δ, not a zero
    assert se50[["fvcore_MAC", "fvcore_delta_pct"]].isna().all()
    se18 = frame.loc["resnet18|se|fc@224x224"]
    # 89,080 / 11,689,512 = 0.762051%
    assert se18["params_delta_pct"] == pytest.approx(0.762051, abs=1e-6)
    # latency Δ comes from the recorded paired ratio, with its CI
    assert (se18["cpu_b1_delta_pct"], se18["cpu_b1_delta_ci95_lo_pct"]) == (20.0, 15.0)
    failed = frame.loc["resnet50|sge|fc@224x224"]
    assert failed["status"] == "error"
    assert failed[[c for c in frame.columns if c.endswith(UNIT_SUFFIXES)]].isna().all()


def test_latency_delta_falls_back_to_medians_without_a_ratio(results):
    cell = results["cells"][1]  # resnet18 se
    for entry in cell["latency"]:
        del entry["ratio"]
    row = cell_frame(results_document.parse(results)).set_index("id").loc[cell["id"]]
    # 12.0 ms / 10.0 ms - 1 = +20%, and no interval without the paired ratios
    assert row["cpu_b1_delta_pct"] == pytest.approx(20.0)
    assert row[["cpu_b1_delta_ci95_lo_pct", "cpu_b1_delta_ci95_hi_pct"]].isna().all()
    verdicts = {c.id: c for c in report_of(results).claims}
    latency = dict(verdicts[cell["id"]].latency)
    assert {v.outcome for v in latency.values()} == {Outcome.INCONCLUSIVE}


# -- claims -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "ci", "outcome"),
    [
        (20.0, (15.0, 25.0), Outcome.REFUTED),  # 15 > 5: even the low end is above
        (2.0, (1.0, 3.0), Outcome.HOLDS),  # 3 < 5: even the high end is below
        (3.0, (-1.0, 7.0), Outcome.INCONCLUSIVE),  # straddles 5
        (6.0, (5.0, 7.0), Outcome.INCONCLUSIVE),  # low end equal to the threshold: not above
        (4.0, (3.0, 5.0), Outcome.INCONCLUSIVE),  # high end equal to the threshold: not below
        (20.0, None, Outcome.INCONCLUSIVE),  # no interval, no verdict either way
        (None, None, Outcome.NOT_MEASURED),
    ],
)
def test_latency_verdict_uses_the_confidence_interval(delta, ci, outcome):
    verdict = interval_verdict("latency (cpu b1)", delta, ci, 5.0)
    assert verdict.outcome is outcome
    assert verdict.delta_pct == delta
    assert verdict.threshold_pct == 5.0


@pytest.mark.parametrize(
    ("delta", "outcome"),
    [(0.762, Outcome.HOLDS), (1.0, Outcome.HOLDS), (9.903, Outcome.REFUTED), (None, None)],
)
def test_count_verdict_is_a_plain_comparison(delta, outcome):
    verdict = count_verdict("parameters", delta, 1.0)
    assert verdict.outcome is (outcome or Outcome.NOT_MEASURED)


def test_verdict_descriptions_carry_the_numbers():
    assert (
        count_verdict("parameters", 9.9033, 1.0).describe() == "parameters: +9.90% > 1% → refuted"
    )
    assert (
        interval_verdict("latency (cpu b1)", 20.0, (15.0, 25.0), 5.0).describe()
        == "latency (cpu b1): +20.0% [95% CI +15.0, +25.0] vs 5% → refuted"
    )
    assert (
        interval_verdict("latency (cpu b1)", 20.0, None, 5.0).describe()
        == "latency (cpu b1): +20.0% (no 95% CI) vs 5% → inconclusive"
    )


def test_claims_of_the_fixture(results):
    claims = {c.id: c for c in report_of(results).claims}
    # baselines are not judged, the failed cell has no verdicts
    assert set(claims) == {
        "resnet18|se|fc@224x224",
        "resnet18|sge|fc@224x224",
        "resnet50|se|fc@224x224",
    }
    se50 = claims["resnet50|se|fc@224x224"]
    assert se50.params.outcome is Outcome.REFUTED  # +9.90% > 1%
    assert se50.macs.outcome is Outcome.HOLDS  # +0.19% <= 1%
    assert se50.macs.quantity == "MACs (paper)"
    assert [(k.label, v.outcome) for k, v in se50.latency] == [("cpu b1", Outcome.REFUTED)]
    sge18 = claims["resnet18|sge|fc@224x224"]
    assert [(k.label, v.outcome) for k, v in sge18.latency] == [
        ("cpu b1", Outcome.INCONCLUSIVE),  # +3.0 [-1.0, +7.0]
        ("cpu b8", Outcome.HOLDS),  # +2.0 [+1.0, +3.0]
    ]


def test_gap_summary_medians(results):
    gaps = {g.key.label: g for g in report_of(results).gaps}
    b1 = gaps["cpu b1"]
    # Δ MACs: 0.1 (r18 se), 0.05 (r18 sge), 0.194 (r50 se) -> median 0.1
    # Δ latency: 20, 3, 25 -> median 20; 20 / 0.1 = 200x
    assert (b1.cells, b1.median_macs_pct, b1.median_latency_pct) == (3, 0.1, 20.0)
    assert b1.factor == pytest.approx(200.0)
    b8 = gaps["cpu b8"]
    # (0.1 + 0.05) / 2 = 0.075 and (5 + 2) / 2 = 3.5 (ResNet-50 at batch 8 failed)
    assert b8.cells == 2
    assert (b8.median_macs_pct, b8.median_latency_pct) == pytest.approx((0.075, 3.5))
    text = render_markdown(report_of(results))
    assert "median Δ MACs (paper) +0.10% vs median Δ latency +20.0% over 3 cells" in text


# -- published rows -----------------------------------------------------------------------------


def test_published_rows_match_to_the_printed_digits(results):
    # The fixture is a version-3 file: its params_m / gmac rows were migrated to printed
    # figures with 2 and 3 decimals under the paper convention.
    rows = {(c.backbone, c.variant): c for c in report_of(results).published}
    # 25,557,032 -> 25.56 M and 4.122 GMAC: both as printed
    assert rows["resnet50", "none"].matches
    # 28,088,024 -> 28.09 M; 4.130 GMAC (the trailing 0 survives the migration)
    assert rows["resnet50", "se"].matches
    assert str(rows["resnet50", "se"].cost.figure) == "4.130 GMAC"
    assert rows["resnet50", "se"].notes() == []
    # 11,689,512 -> 11.69 M, not the printed 11.70
    assert rows["resnet18", "none"].params.reproduced is False
    assert rows["resnet18", "none"].cost.reproduced is True
    # 1,821,820,000 -> 1.822 GMAC, not the printed 1.819 (+0.155%)
    se = rows["resnet18", "se"]
    assert se.params.reproduced is True
    assert se.cost.diff_pct == pytest.approx(0.155, abs=1e-3)
    assert se.reproducing() == []
    assert se.notes() == [
        "resnet18 se (fc@224x224): hand-made prints 1.819 GMAC; measured under paper, printed "
        "the same way: 1.822 GMAC (+0.16%). No counted convention reproduces it."
    ]
    failed = rows["resnet50", "sge"]
    assert not failed.matches
    assert failed.notes() == [
        "resnet50 sge (fc@224x224): not measured: the cell failed "
        "(RuntimeError: fixture: sge exploded (at sge.py:42))."
    ]


def test_every_mismatch_gets_a_note_in_the_report(results):
    text = render_markdown(report_of(results))
    notes = text.split("Figures that do not reproduce:", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in notes.splitlines() if line.startswith("- ")]
    assert len(bullets) == 3  # resnet50 sge (failed), resnet18 none (params), resnet18 se (GMAC)
    assert "prints 11.70 M params" in notes


# -- units and robustness -----------------------------------------------------------------------


_NUMBER = re.compile(r"^[+-]?\d[\d.e+-]*( ± [\d.]+)?( \[[+-]?[\d.]+, [+-]?[\d.]+\])?( [✓✗?])?$")
_UNITS = ("(M)", "(%)", "(GMAC)", "(GFLOP)", "(MB)", "(FLOP/byte)", "(ms)", "(img/s)", "(s)",
          "(×)", "(calls)", "(MMAC)", "(MFLOP)", "(GB/s)", "(GFLOP/s)", "(% of Δ)")


def _tables(text: str):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|:-"):
            header = [h.strip() for h in line.strip("|").split(" | ")]
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("| "):
                    break
                body.append([v.strip() for v in row.strip("|").split(" | ")])
            yield header, body


def test_every_numeric_column_names_its_unit(results):
    report = report_of(results)
    text = render_markdown(report)
    checked = 0
    for header, body in _tables(text):
        for j, name in enumerate(header):
            assert not re.search(r"\bFLOPs\b", name), f"bare FLOPs in {name!r}"
            values = [row[j] for row in body if row[j] != "—"]
            if values and all(_NUMBER.match(v) for v in values):
                assert any(unit in name for unit in _UNITS), f"numeric column {name!r}: no unit"
                checked += 1
    assert checked > 40
    frame = cell_frame(results_document.parse(results))
    numeric = frame.select_dtypes("number").columns
    assert len(numeric) > 30
    assert all(column.endswith(UNIT_SUFFIXES) for column in numeric), list(numeric)
    header = render_csv(report).splitlines()[0].split(",")
    assert header == [column.key for column in report.columns]  # the contract's keys, in order
    assert all(column.key.endswith(UNIT_SUFFIXES) for column in report.columns if column.numeric)
    assert "paper_MAC" in header and "full_FLOP" in header and "full_bytes" in header
    assert "cpu_b1_median_ms" in header and "params_count" in header


def test_the_report_says_what_stands_behind_each_interval(results):
    """Timed across processes: the method line names them; under each verdict table, each
    interval's processes, rounds and stop reason, with the disagreement mark."""
    data = results_document.migrate(copy.deepcopy(results), "fixture")
    data["suite"]["latency"]["processes"] = 6
    for cell in data["cells"]:
        for entry in cell.get("latency") or ():
            ratio = entry.get("ratio")
            if not ratio:
                continue
            n = 5 if cell["variant"] == "sge" else 6
            ratio.update(ci_over="processes", processes=n, rounds_per_process=[2] * n,
                         values=[ratio["median"]] * 2 * n, process_medians=[ratio["median"]] * n,
                         disagreement_p=0.001 if cell["variant"] == "se" else 0.5,
                         design="fixed")
    text = render_markdown(report_of(data))
    assert "in 6 fresh processes of 2 rounds each" in text
    assert "order-statistic interval of those process medians" in text
    behind = text.split("### resnet18 · fc@224x224", 1)[1].split("### resnet50")[0]
    assert "| variant | cpu b1: processes · stop | cpu b8: processes · stop |" in behind
    assert "| se | 6 proc. × 2 rounds · fixed ‡ | 6 proc. × 2 rounds · fixed ‡ |" in behind
    assert "| sge | 5 proc. × 2 rounds · fixed | 5 proc. × 2 rounds · fixed |" in behind
    assert "- fixed: a fixed number of processes was asked for." in text
    frame = cell_frame(results_document.parse(data))
    assert set(frame["cpu_b1_processes_count"].dropna()) == {5, 6}
    assert frame["cpu_b1_disagreement_pvalue"].min() == pytest.approx(0.001)
    assert set(frame["cpu_b1_stopped"].dropna()) == {"fixed"}


def test_minimal_results_render_without_latency_published_or_provenance(results):
    minimal = copy.deepcopy(results)
    minimal["suite"] = {"name": "tiny"}
    del minimal["provenance"]
    minimal["cells"] = [c for c in minimal["cells"] if c["backbone"] == "resnet18"][:2]
    for cell in minimal["cells"]:
        cell.pop("latency")
        cell["profile"]["flops"] = {"paper": cell["profile"]["flops"]["paper"]}
    text = render_markdown(report_of(minimal))
    assert "## Published vs measured" not in text
    assert "records no provenance" in text
    assert "latency was not measured" in text
    assert "median ± IQR" not in text
    # both counts hold; a verdict without a timing says it judged the counts only
    assert "| se | +0.76 ✓ | +0.10 ✓ | holds (counts; not timed) |" in text
    assert render_csv(report_of(minimal)).splitlines()[0].startswith("id,backbone,setting,variant")
    reason = plot_skip_reason(report_of(minimal)) or ""
    assert "no attention cell has both" in reason or "matplotlib is not installed" in reason


def test_missing_baseline_gives_no_delta_and_says_so(results):
    broken = copy.deepcopy(results)
    broken["cells"] = [c for c in broken["cells"] if c["id"] != "resnet18|none|fc@224x224"]
    frame = cell_frame(results_document.parse(broken)).set_index("id")
    assert frame.loc["resnet18|se|fc@224x224", ["params_delta_pct", "paper_delta_pct"]].isna().all()
    assert "No counted `none` baseline here" in render_markdown(report_of(broken))


def test_empty_cells_render(results):
    results["cells"] = []
    assert "No cells in this results file." in render_markdown(report_of(results))
    assert render_csv(report_of(results)).startswith("id,backbone,setting,variant,status")


def test_validation_names_the_problem(results):
    results["cells"][1]["profile"]["flops"]["paper"]["unit"] = "FLOP"
    with pytest.raises(AttnprofError, match=r"counts\.paper\.unit: 'FLOP' here but 'MAC'"):
        results_document.parse(results, "x.json")
    results["cells"][1]["profile"]["flops"]["paper"]["unit"] = "MAC"
    results["cells"][0]["latency"][0]["median_ms"] = "fast"
    with pytest.raises(AttnprofError, match=r"latency\[0\]\.median_ms: expected a number"):
        results_document.parse(results, "x.json")
    del results["cells"][0]["latency"][0]["median_ms"]
    with pytest.raises(AttnprofError, match=r"latency\[0\]: lacks 'median_ms'"):
        results_document.parse(results, "x.json")


def test_unknown_format_is_refused_before_writing(results, tmp_path):
    with pytest.raises(AttnprofError, match="valid formats: md, csv, png"):
        write_reports(report_of(results), tmp_path, formats=("md", "html"))
    assert list(tmp_path.iterdir()) == []


# -- plot ---------------------------------------------------------------------------------------


def test_plot_is_a_png(results, tmp_path):
    pytest.importorskip("matplotlib")
    written = write_reports(report_of(results), tmp_path)
    png = tmp_path / FILE_NAMES["png"]
    assert png in written
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert f"]({FILE_NAMES['png']})" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_plot_is_skipped_with_a_note_without_matplotlib(results, tmp_path, monkeypatch):
    monkeypatch.setattr(report_plot, "plot_available", lambda: False)
    written = write_reports(report_of(results), tmp_path)
    assert [p.name for p in written] == ["report.md", "results.csv"]
    assert "matplotlib is not installed" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "matplotlib is not installed" in plot_skip_reason(report_of(results))


def test_bytes_follow_what_a_convention_declares_not_its_name(results):
    """A suite's own convention that declares bytes gets the bytes columns ``full`` gets."""
    before = cell_frame(results_document.parse(results, "fixture"))
    data = results_document.parse(results, "fixture").to_dict()
    data["suite"]["conventions"] = [("traffic" if n == "full" else n)
                                    for n in data["suite"]["conventions"]]
    data["suite"]["declared_conventions"] = {"traffic": {
        "unit": "MAC", "base": "full", "bytes": True,
        "description": "full's op rules, read as MACs, with the bytes each op moves"}}
    for cell in data["cells"]:
        counts = (cell.get("profile") or {}).get("counts", {})
        if "full" in counts:
            counts["traffic"] = {**counts.pop("full"), "convention": "traffic", "unit": "MAC"}
    report = report_of(data)
    frame = report.frame
    assert "full_bytes" not in frame.columns
    assert frame["traffic_bytes"].equals(before["full_bytes"])  # the failed cell: NaN in both
    ratio = frame["traffic_MAC"] / frame["traffic_bytes"]
    assert frame["traffic_MAC_per_byte"].dropna().tolist() == ratio.dropna().tolist()
    assert "traffic_attention_MAC_per_byte" in render_csv(report).splitlines()[0]
    text = render_markdown(report)
    assert "| bytes moved (MB) | Δ bytes (%) | intensity (MAC/byte) |" in text
    assert "arithmetic intensity is traffic MACs per byte moved" in text


def test_a_non_finite_output_is_flagged_beside_its_cell(results):
    data = copy.deepcopy(results)
    cell = next(c for c in data["cells"] if c["id"] == "resnet18|sge|fc@224x224")
    cell["profile"]["nonfinite"] = {"module": "layer4.0.attention.gate", "type": "Sigmoid",
                                    "attention": "layer4.0.attention", "nan": True,
                                    "inf": False, "input": [1, 3, 224, 224]}
    cell["profile"]["notes"] = ["resnet18 + sge: the profiled code issued 1 warning"]
    report = report_of(data)
    text = render_markdown(report)
    flagged = [line for line in text.splitlines() if line.startswith("| sge ⚠ non-finite output |")]
    assert len(flagged) == 1 and "| +0.01 ✓ | +0.05 ✓ |" in flagged[0]  # beside the cell's row
    assert "- ⚠ `sge`: the output is not finite on the profiling input (standard normal, seed " \
           "0): NaN from layer4.0.attention.gate (Sigmoid, inside attention module " \
           "layer4.0.attention)" in text
    assert "- `sge`: resnet18 + sge: the profiled code issued 1 warning" in text
    frame = report.frame.set_index("id")
    assert frame.loc["resnet18|sge|fc@224x224", "nonfinite_output"].startswith("NaN from layer4")
    assert frame["nonfinite_output"].notna().sum() == 1
    assert "nonfinite_output" in render_csv(report).splitlines()[0]
    assert "nonfinite_output" not in render_csv(report_of(results)).splitlines()[0]


def test_a_failed_timing_is_never_read_as_holds():
    from attnprof.report.claims import ClaimCheck, Outcome
    from attnprof.report.tables import LatencyKey
    from attnprof.report.verdict import LatencyCell, VerdictRow

    eager, onnx = LatencyKey("cpu", 1), LatencyKey("cpu", 1, mode="onnxruntime")
    fine = ClaimCheck("latency", 5.0, Outcome.HOLDS, 1.0, (0.0, 2.0))
    counts = ClaimCheck("parameters", 1.0, Outcome.HOLDS, 0.0)
    row = VerdictRow("id", "se", False, "partial", counts, counts, None,
                     {eager: LatencyCell(fine), onnx: LatencyCell(None, failed=True)})
    assert row.verdict([eager], "MAC") == "holds"
    assert row.verdict([eager, onnx], "MAC") == "timing failed 1/2"
    assert row.verdict([onnx], "MAC") == "timing failed"
