"""``attnprof compare``: reading both file kinds, the per-cell verdicts, and the command line."""

from __future__ import annotations

import json
import random
import re
import statistics

import pytest

from attnprof.cli import main
from attnprof.compare import (
    Verdict,
    compare,
    load_pooled,
    load_results,
    parse_metrics,
    render,
    to_json,
)
from attnprof.compare.loaders import (
    ABSOLUTE,
    ATTNPROF_RESULTS,
    ROLE_BASELINE,
    ROLE_REFERENCE,
    parse_results,
)
from attnprof.compare.stats import judge_shift
from attnprof.errors import AttnprofError

# --- builders ------------------------------------------------------------------------------------

PAPER = {"none": 4_122_000_000, "se": 4_130_000_000}
PARAMS = {"none": 25_557_032, "se": 28_088_024}


def _rounds(centre: float, n: int = 20, spread: float = 0.02, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [centre * (1.0 + rng.gauss(0.0, spread)) for _ in range(n)]


def cell(variant: str, *, ratio: float = 1.10, seed: int = 0, status: str = "ok",
         error: str | None = None, paper: int | None = None, rounds: int = 20) -> dict:
    """One attnprof-results/1 cell, its latency given as per-round ratios to ``none``."""
    cid = f"resnet50|{variant}|fc@224x224"
    if status == "error":
        return {"id": cid, "backbone": "resnet50", "variant": variant, "attention": variant,
                "options": {}, "setting": "fc@224x224", "head": "fc",
                "input": [1, 3, 224, 224], "status": "error",
                "error": error or "boom", "profile": None, "latency": []}
    ratios = [1.0] * rounds if variant == "none" else _rounds(ratio, rounds, seed=seed)
    params = PARAMS.get(variant, 26_000_000)
    default = PAPER.get(variant, 4_200_000_000)
    macs = paper if paper is not None else default
    return {
        "id": cid, "backbone": "resnet50", "variant": variant, "attention": variant,
        "options": {}, "setting": "fc@224x224", "head": "fc", "input": [1, 3, 224, 224],
        "status": "ok", "error": None,
        "profile": {
            "params": params,
            "attention_params": params - PARAMS["none"],
            "flops": {
                "paper": {"value": macs, "unit": "MAC", "attention": 0, "uncounted": {}},
                "full": {"value": 2 * default + 12_345, "unit": "FLOP", "attention": 0,
                         "bytes": 10**9},
            },
        },
        "latency": [{
            "device": "cpu", "threads": 2, "batch": 1, "median_ms": 60.0 * ratio,
            "iqr_ms": 1.0, "ci95_ms": [59.0, 61.0], "samples": rounds, "images_per_s": 16.0,
            "peak_mem_bytes": 1, "times_ms": [60.0 * r for r in ratios],
            "ratio": {"baseline": "none", "median": ratio, "ci95": [ratio, ratio],
                      "delta_pct": 100 * (ratio - 1), "values": ratios},
        }],
    }


def results(*cells: dict, cpu: str = "Test CPU @ 3 GHz", gpu: str | None = None,
            torch: str = "2.13.0", commit: str = "0123456789abcdef") -> dict:
    return {
        "schema": "attnprof-results/1",
        "suite": {"name": "test"},
        "provenance": {"attnprof": "0.1.0", "torch": torch, "cpu": cpu,
                       "gpu": {"name": gpu} if gpu else None,
                       "threads": 2, "git_commit": commit, "utc": "2025-01-01T00:00:00Z"},
        "cells": list(cells),
    }


def benchmark(bid: str, *, data: list[float] | None, reference: str | None = None,
              reference_s: list[float] | None = None, role: str | None = None,
              macs: int | None = 1000, params: int | None = 10) -> dict:
    """One pytest-benchmark entry (times in seconds), extra_info as attnprof's benchmarks write."""
    samples = data if data is not None else [0.001]
    ordered = sorted(samples)
    stats = {"min": ordered[0], "max": ordered[-1], "mean": sum(samples) / len(samples),
             "stddev": 0.0, "rounds": len(samples), "median": ordered[len(ordered) // 2],
             "iqr": 0.0, "q1": ordered[0], "q3": ordered[-1], "iqr_outliers": 0,
             "stddev_outliers": 0, "outliers": "0;0", "ld15iqr": ordered[0],
             "hd15iqr": ordered[-1], "ops": 1.0, "total": sum(samples)}
    if data is not None:
        stats["data"] = data
    extra = {"id": bid, "device": "cpu", "batch": 1}
    for key, value in (("reference", reference), ("reference_s", reference_s), ("role", role),
                       ("macs", macs), ("params", params)):
        if value is not None:
            extra[key] = value
    if macs is not None:
        extra["macs_convention"] = "paper"
    return {"group": "stage1", "name": f"test_x[{bid}]", "fullname": f"tests/x.py::test_x[{bid}]",
            "params": None, "param": None, "extra_info": extra, "options": {}, "stats": stats}


def bench_file(*benchmarks: dict, cpu: str = "Test CPU @ 3 GHz") -> dict:
    return {
        "machine_info": {"node": "n", "processor": "x86_64", "machine": "x86_64",
                         "python_version": "3.11.7", "cpu": {"brand_raw": cpu},
                         "torch": "2.13.0"},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "benchmarks": list(benchmarks),
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.3.1",
    }


def paired(bid: str, ratio: float, seed: int, n: int = 20, **kw) -> dict:
    """A module benchmark whose per-round time is ``ratio`` x its interleaved reference's."""
    ref = _rounds(0.004, n, spread=0.2, seed=seed + 1000)  # the machine swings 20% per round ...
    ratios = _rounds(ratio, n, seed=seed)  # ... the ratio only 2%
    return benchmark(bid, data=[r * t for r, t in zip(ratios, ref, strict=True)],
                     reference="block|stage1", reference_s=ref, **kw)


def write(tmp_path, name: str, doc) -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


# --- loading -------------------------------------------------------------------------------------


def test_reads_attnprof_results(tmp_path):
    loaded = load_results(write(tmp_path, "r.json", results(cell("none"), cell("se"))))
    assert loaded.kind == ATTNPROF_RESULTS
    assert loaded.machine.cpu == "Test CPU @ 3 GHz"
    none, se = loaded.cells
    assert none.role == ROLE_BASELINE and se.role == "cell"
    counts = {(c.metric, c.name): c.value for c in se.counts}
    assert counts == {("params", "params"): 28_088_024, ("params", "attention_params"): 2_530_992,
                      ("macs", "paper"): 4_130_000_000, ("macs", "full"): 8_260_012_345}
    (timing,) = se.timings
    assert timing.key == "cpu/b1" and timing.basis == "ratio to none" and len(timing.values) == 20


def test_reads_pytest_benchmark_with_interleaved_references(tmp_path):
    doc = bench_file(
        benchmark("block|stage1", data=[0.004, 0.005, 0.006], role="reference"),
        benchmark("se|stage1", data=[0.002, 0.003], reference="block|stage1",
                  reference_s=[0.004, 0.005]),
    )
    loaded = load_results(write(tmp_path, "b.json", doc))
    assert loaded.kind == "pytest-benchmark" and loaded.machine.torch == "2.13.0"
    ref, module = loaded.cells
    assert ref.role == ROLE_REFERENCE
    # per round: 0.002 / 0.004 = 0.5, 0.003 / 0.005 = 0.6
    assert module.timings[0].values == pytest.approx((0.5, 0.6))
    assert "same round" in module.timings[0].basis


def test_pytest_benchmark_without_interleaving_uses_the_reference_median(tmp_path):
    doc = bench_file(
        benchmark("block", data=[0.004, 0.005, 0.009]),  # median 0.005
        benchmark("se", data=[0.001, 0.002], reference="block"),
        benchmark("alone", data=[0.001, 0.002]),
    )
    _, module, alone = load_results(write(tmp_path, "b.json", doc)).cells
    assert module.timings[0].values == pytest.approx((0.2, 0.4))  # 0.001 / 0.005, 0.002 / 0.005
    assert alone.timings[0].basis == ABSOLUTE
    assert alone.timings[0].values == pytest.approx((1.0, 2.0))  # in ms


def test_reads_a_counting_benchmarks_extra_info(tmp_path):
    entry = benchmark("count", data=[1.0, 1.1], macs=None, params=44_549_160)
    entry["extra_info"].update(convention="paper", value=88_032_000_000, unit="MAC")
    (loaded,) = load_results(write(tmp_path, "b.json", bench_file(entry))).cells
    counts = {(c.metric, c.name): c.value for c in loaded.counts}
    assert counts == {("params", "params"): 44_549_160, ("macs", "paper"): 88_032_000_000}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1"),
        ("", "not valid JSON"),
        ([1, 2, 3], "unknown format (list)"),
        ({"hello": 1}, "unknown format (an object with keys ['hello'])"),
        ({"schema": "attnprof-results/9", "cells": []}, "written by a newer attnprof"),
        ({"schema": "attnprof-results/1", "suite": {"name": "t"}, "cells": {}},
         "cells: expected a list"),
        ({"schema": "attnprof-results/1", "suite": {"name": "t"}, "cells": [{"status": "ok"}]},
         "cells[0]: lacks 'id', 'backbone', 'variant', 'setting'"),
        (results(cell("se") | {"profile": {"params": "many", "flops": {}}}),
         "profile.params: expected an integer, found str 'many'"),
        (results(cell("se") | {"status": "maybe"}),
         "status: found 'maybe', expected one of 'ok', 'error'"),
        ({"benchmarks": {}}, "benchmarks: expected a list"),
        ({"benchmarks": [{"name": "x"}]}, "benchmarks[0] ('x'): lacks 'stats'"),
        ({"benchmarks": [benchmark("a", data=[1.0, 2.0], reference="b", reference_s=[1.0])]},
         "one reference time per round (2)"),
    ],
)
def test_malformed_files_fail_with_one_line_naming_the_file(tmp_path, content, message):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(AttnprofError) as info:
        load_results(path)
    text = str(info.value)
    assert path in text and "\n" not in text
    assert message in text


def test_a_missing_file_is_named(tmp_path):
    expected = re.escape("nope.json: no such file; expected attnprof results")
    with pytest.raises(AttnprofError, match=expected):
        load_results(tmp_path / "nope.json")


# --- judging -------------------------------------------------------------------------------------


def _compare(base: dict, new: dict, **kw):
    return compare(parse_results(base, "base.json"), parse_results(new, "new.json"), **kw)


def test_the_same_results_are_unchanged():
    doc = results(cell("none"), cell("se", seed=1))
    outcome = _compare(doc, doc)
    assert not outcome.failed and not outcome.notes
    verdicts = {(c.metric, c.verdict) for c in outcome.changes}
    assert ("latency", Verdict.INFO) in verdicts  # the baseline, shown not judged
    assert {c.verdict for c in outcome.changes if c.cell.endswith("|se|fc@224x224")} == {
        Verdict.UNCHANGED}


def test_a_slower_cell_is_flagged_and_a_noise_level_change_is_not():
    base = results(cell("none"), cell("se", ratio=1.10, seed=1), cell("sge", ratio=1.20, seed=2))
    new = results(cell("none"), cell("se", ratio=1.40, seed=3), cell("sge", ratio=1.22, seed=4))
    outcome = _compare(base, new, metrics="latency")
    (flagged,) = outcome.flagged
    assert flagged.cell == "resnet50|se|fc@224x224" and flagged.verdict is Verdict.REGRESSION
    assert flagged.change == pytest.approx(1.4 / 1.1 - 1, abs=0.03)  # +27%
    assert flagged.pvalue < 1e-6 and flagged.pvalue_margin < 0.05
    sge = next(c for c in outcome.changes if "|sge|" in c.cell)
    assert sge.verdict is Verdict.UNCHANGED


def across_processes(doc_cell: dict, levels: list[float], rounds: int = 3, seed: int = 0) -> dict:
    """``doc_cell`` timed in ``len(levels)`` fresh processes: per process a level (the
    between-process component), rounds tight around it."""
    rng = random.Random(seed)
    groups = [[level * (1 + rng.gauss(0.0, 0.005)) for _ in range(rounds)] for level in levels]
    ratio = doc_cell["latency"][0]["ratio"]
    ratio.update(values=[v for g in groups for v in g], ci_over="processes",
                 processes=len(levels), rounds_per_process=[rounds] * len(levels),
                 process_medians=[statistics.median(g) for g in groups])
    return doc_cell


def test_processes_are_the_unit_of_replication():
    """Rounds of one process share its conditions: judged as independent, 18 tight rounds a
    side call a shift between two runs significant that the six process medians a side, which
    scatter by several points, do not. A shift beyond the processes' own scatter is flagged."""
    spread = [1.08, 1.14, 1.19, 1.25, 1.30, 1.36]
    base = results(cell("none"), across_processes(cell("se", ratio=1.2), spread, seed=1))
    drift = results(cell("none"),
                    across_processes(cell("se", ratio=1.2), [v * 1.17 for v in spread], seed=2))
    (change,) = [c for c in _compare(base, drift, metrics="latency").changes if "|se|" in c.cell]
    assert change.sample_unit == "process" and (change.n_base, change.n_new) == (6, 6)
    assert change.change == pytest.approx(0.17, abs=0.01)
    assert change.verdict is Verdict.NOT_SIGNIFICANT
    rounds = [v for v in spread for _ in range(3)]
    pooled = judge_shift(rounds, [v * 1.17 for v in rounds], 0.10, 0.05)
    assert pooled.verdict is Verdict.REGRESSION  # the trap: rounds taken as independent
    slower = results(cell("none"),
                     across_processes(cell("se", ratio=1.2), [v * 1.6 for v in spread], seed=3))
    (change,) = [c for c in _compare(base, slower, metrics="latency").flagged]
    assert change.verdict is Verdict.REGRESSION and change.sample_unit == "process"
    # a one-process file against a multi-process one: both judged on their rounds
    (mixed,) = [c for c in _compare(results(cell("none"), cell("se", ratio=1.2, seed=4)),
                                    base, metrics="latency").changes if "|se|" in c.cell]
    assert mixed.sample_unit == "round" and (mixed.n_base, mixed.n_new) == (20, 18)


def test_counts_must_match_exactly():
    base = results(cell("none"), cell("se"))
    new = results(cell("none"), cell("se", paper=PAPER["se"] + 1))
    outcome = _compare(base, new, metrics="macs")
    assert {c.metric for c in outcome.changes} == {"macs"}
    (flagged,) = outcome.flagged
    assert flagged.quantity == "paper" and flagged.verdict is Verdict.CHANGED
    assert flagged.base == PAPER["se"] and flagged.new == PAPER["se"] + 1
    assert "+1 MAC" in flagged.detail
    assert not _compare(base, new, metrics="params").failed


def test_a_cell_that_starts_failing_is_a_regression_and_one_that_recovers_is_not():
    base = results(cell("none"), cell("se"), cell("sa", status="error", error="old bug"))
    new = results(cell("none"), cell("se", status="error", error="RuntimeError: x"), cell("sa"))
    outcome = _compare(base, new)
    status = {c.cell.split("|")[1]: c for c in outcome.by_metric("status")}
    assert status["se"].verdict is Verdict.REGRESSION and "RuntimeError: x" in status["se"].detail
    assert status["sa"].verdict is Verdict.INFO and "fixed" in status["sa"].detail
    assert [c.cell for c in outcome.flagged] == ["resnet50|se|fc@224x224"]


def test_cells_on_one_side_only_are_noted():
    outcome = _compare(results(cell("none"), cell("se")), results(cell("none"), cell("eca")))
    assert any("only in BASE" in n and "|se|" in n for n in outcome.notes)
    assert any("only in NEW" in n and "|eca|" in n for n in outcome.notes)
    assert not outcome.failed


def test_different_machines_are_noted():
    base = results(cell("none"), cell("se"), cpu="Intel Xeon 8370C")
    new = results(cell("none"), cell("se"), cpu="AMD EPYC 7763", gpu="NVIDIA H200",
                  torch="2.14.0")
    outcome = _compare(base, new)
    assert any("different machines" in note for note in outcome.notes)
    # files without a detailed description: their provenance's summary fields are compared
    assert outcome.machine_differences == (
        "provenance.cpu: Intel Xeon 8370C vs AMD EPYC 7763",
        "provenance.gpu: none vs NVIDIA H200",
        "provenance.torch: 2.13.0 vs 2.14.0",
    )
    assert not _compare(base, base).machine_differences


def test_pytest_benchmark_latency_is_judged_on_the_paired_ratios():
    ref = benchmark("block|stage1", data=[0.004] * 5, role="reference")
    base = bench_file(ref, paired("se|stage1", 0.10, seed=1), paired("eca|stage1", 0.05, seed=2))
    new = bench_file(ref, paired("se|stage1", 0.13, seed=3), paired("eca|stage1", 0.051, seed=4))
    outcome = _compare(base, new, metrics="latency")
    assert [c.cell for c in outcome.flagged] == ["se|stage1"]
    assert outcome.flagged[0].change == pytest.approx(0.3, abs=0.03)
    reference = next(c for c in outcome.changes if c.cell == "block|stage1")
    assert reference.verdict is Verdict.INFO


def test_pytest_benchmark_without_raw_timings_cannot_test_latency():
    base = bench_file(benchmark("se", data=None, params=5))
    new = bench_file(benchmark("se", data=None, params=6))
    with pytest.raises(AttnprofError, match="--benchmark-save-data"):
        _compare(base, new)
    outcome = _compare(base, new, metrics=["params"])
    assert [c.verdict for c in outcome.changes] == [Verdict.CHANGED]


def test_unpaired_slowdowns_warn_unless_asked_to_fail():
    base = bench_file(benchmark("alone", data=_rounds(0.010, seed=1)))
    new = bench_file(benchmark("alone", data=_rounds(0.015, seed=2)))
    (row,) = _compare(base, new, metrics="latency").changes
    assert row.verdict is Verdict.UNPAIRED and not row.flagged and row.unit == "ms"
    strict = _compare(base, new, metrics="latency", fail_unpaired=True)
    assert [c.verdict for c in strict.changes] == [Verdict.REGRESSION]


def test_different_kinds_cannot_be_compared():
    with pytest.raises(AttnprofError, match="give two files of the same kind"):
        _compare(results(cell("none")), bench_file(benchmark("x", data=[1.0])))


def test_pooling_runs_of_the_same_code(tmp_path):
    a = write(tmp_path, "a.json", results(cell("none"), cell("se", seed=1, rounds=10)))
    b = write(tmp_path, "b.json", results(cell("none"), cell("se", seed=2, rounds=12)))
    pooled = load_pooled(f"{a},{b}")
    assert pooled.path == f"{a},{b}"
    assert len(pooled.by_id()["resnet50|se|fc@224x224"].timings[0].values) == 22
    c = write(tmp_path, "c.json", results(cell("none"), cell("se", paper=1)))
    expected = re.escape("cannot pool: cell 'resnet50|se|fc@224x224' counts paper")
    with pytest.raises(AttnprofError, match=expected):
        load_pooled([a, c])
    d = write(tmp_path, "d.json", results(cell("none"), commit="fedcba9876543210"))
    with pytest.raises(AttnprofError, match="must measure the same code"):
        load_pooled([a, d])


def test_parse_metrics():
    assert parse_metrics(None) == ("latency", "macs", "params")
    assert parse_metrics(["params,MACS"]) == ("macs", "params")
    with pytest.raises(AttnprofError, match="unknown metric 'flops'; valid metrics: latency"):
        parse_metrics("flops")


def test_json_and_table_renderings():
    base = results(cell("none"), cell("se", seed=1))
    new = results(cell("none"), cell("se", ratio=1.5, seed=2))
    outcome = _compare(base, new)
    data = json.loads(to_json(outcome))
    assert data["flagged"] == 1 and data["metrics"] == ["latency", "macs", "params"]
    assert {c["verdict"] for c in data["changes"]} >= {"regression", "info", "unchanged"}

    from rich.console import Console

    console = Console(record=True, width=200)
    render(outcome, console)
    text = console.export_text()
    assert "Latency: median per-round ratio" in text and "Parameters (exact" in text
    assert "1 flagged: resnet50|se|fc@224x224 cpu/b1 +" in text


# --- the command line ----------------------------------------------------------------------------


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["compare", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path):
    base = write(tmp_path, "base.json", results(cell("none"), cell("se", seed=1)))
    same = write(tmp_path, "same.json", results(cell("none"), cell("se", seed=2)))
    slow = write(tmp_path, "slow.json", results(cell("none"), cell("se", ratio=1.4, seed=3)))
    return {"base": base, "same": same, "slow": slow, "dir": tmp_path}


def test_cli_exit_0_without_a_confirmed_regression(capsys, files):
    code, out, err = _run(capsys, files["base"], files["same"])
    assert code == 0, out + err
    assert "no confirmed regression" in out and "Latency" in out and err == ""


def test_cli_exit_1_on_a_regression(capsys, files):
    code, out, err = _run(capsys, files["base"], files["slow"], "--threshold", "10%")
    assert code == 1, out + err
    assert "1 flagged: resnet50|se|fc@224x224" in out
    code, out, err = _run(capsys, files["base"], files["slow"], "--threshold", "50%")
    assert code == 0, out + err


def test_cli_metric_macs_detects_a_changed_count_exactly(capsys, files):
    plus_one = write(files["dir"], "plus1.json",
                     results(cell("none"), cell("se", seed=1, paper=PAPER["se"] + 1)))
    code, out, err = _run(capsys, files["base"], plus_one, "--metric", "macs")
    assert code == 1, out + err
    assert "+1 MAC" in out and "Latency" not in out and "Parameters" not in out
    code, out, err = _run(capsys, files["base"], plus_one, "--metric", "params")
    assert code == 0, out + err


def test_cli_notes_different_machines(capsys, files):
    other = write(files["dir"], "other.json",
                  results(cell("none"), cell("se", seed=1), cpu="AMD EPYC 7763"))
    code, out, err = _run(capsys, files["base"], other)
    assert code == 0, out + err
    assert "note: BASE and NEW were measured on different machines" in " ".join(out.split())


def test_cli_json(capsys, files):
    code, out, err = _run(capsys, files["base"], files["slow"], "--json")
    assert code == 1, err
    assert json.loads(out)["flagged"] == 1


def test_cli_pools_comma_separated_runs(capsys, files):
    code, out, err = _run(capsys, f"{files['base']},{files['same']}", files["slow"])
    assert code == 1, out + err
    assert "2 runs pooled" in out


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["missing.json", "{base}"], "missing.json: no such file"),
        ("{{oops", ["{bad}", "{base}"], "bad.json: not valid JSON"),
        ({"results": []}, ["{base}", "{bad}"], "bad.json: unknown format"),
        (None, ["{base}", "{base}", "--threshold", "ten"], "threshold 'ten' is not a number"),
        (None, ["{base}", "{base}", "--threshold", "10"], "ambiguous"),
        (None, ["{base}", "{base}", "--metric", "flops"], "unknown metric 'flops'"),
        (None, ["{base}", "{base}", "--alpha", "2"], "alpha must be a probability"),
        (bench_file(benchmark("x", data=[1.0])), ["{base}", "{bad}"], "same kind"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(capsys, files, make, args, message):
    if make is not None:
        write(files["dir"], "bad.json", make)
    argv = [a.format(base=files["base"], bad=files["dir"] / "bad.json") for a in args]
    if argv[0] == "missing.json":
        argv[0] = str(files["dir"] / "missing.json")
    code, out, err = _run(capsys, *argv)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnprof: error: "), err
    assert message in lines[0]
    assert "Traceback" not in err and out == ""
