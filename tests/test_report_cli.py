"""`attnprof report`: regenerates the reports from a results.json; a corrupt file is one line
on stderr, exit 2, and no report file (not even half of one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from attnprof import results
from attnprof.cli import EXIT_OK, EXIT_USAGE, main
from attnprof.report import build_report, render_csv, render_markdown
from attnprof.report import plot as report_plot

FIXTURE = Path(__file__).resolve().parent / "data" / "report_results.json"


@pytest.fixture
def results_file(tmp_path) -> Path:
    path = tmp_path / "run" / "results.json"
    path.parent.mkdir()
    shutil.copy(FIXTURE, path)
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip_writes_next_to_the_results(results_file, capsys):
    code, out, err = _run(capsys, str(results_file))
    assert code == EXIT_OK, err
    folder = results_file.parent
    data = build_report(results.load(results_file))
    assert (folder / "results.csv").read_text(encoding="utf-8") == render_csv(data)
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert report.startswith(render_markdown(data).split("## Plot")[0].rstrip())
    printed = out.splitlines()
    assert str(folder / "report.md") in printed and str(folder / "results.csv") in printed
    if report_plot.plot_available():
        assert (folder / "macs_vs_latency.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert "matplotlib is not installed" in err


def test_format_and_out(results_file, tmp_path, capsys):
    out_dir = tmp_path / "elsewhere"
    code, out, err = _run(capsys, str(results_file), "--format", "csv", "--out", str(out_dir))
    assert code == EXIT_OK, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["results.csv"]
    assert out.strip() == str(out_dir / "results.csv")
    assert sorted(p.name for p in results_file.parent.iterdir()) == ["results.json"]


@pytest.mark.parametrize(("fmt", "render"), [("md", render_markdown), ("csv", render_csv)])
def test_stdout_prints_one_format_and_writes_nothing(results_file, capsys, fmt, render):
    code, out, err = _run(capsys, str(results_file), "--stdout", "--format", fmt)
    assert code == EXIT_OK, err
    assert out == render(build_report(results.load(results_file)))
    assert sorted(p.name for p in results_file.parent.iterdir()) == ["results.json"]


def test_stdout_refuses_png(results_file, capsys):
    code, _, err = _run(capsys, str(results_file), "--stdout", "--format", "png")
    assert code == EXIT_USAGE
    assert "choose md or csv" in err


def _corrupt_cases() -> dict[str, str]:
    good = json.loads(FIXTURE.read_text(encoding="utf-8"))
    wrong_schema = dict(good, schema="attnprof-results/0")
    cells_not_list = dict(good, cells={"a": 1})
    missing_profile = json.loads(json.dumps(good))
    missing_profile["cells"][1].pop("profile")
    bad_latency = json.loads(json.dumps(good))
    bad_latency["cells"][0]["latency"][0]["median_ms"] = "fast"
    return {
        "not json": '{"schema": "attnprof-results/1", "cells": [',
        "wrong schema": json.dumps(wrong_schema),
        "cells not a list": json.dumps(cells_not_list),
        "ok cell without profile": json.dumps(missing_profile),
        "latency median not a number": json.dumps(bad_latency),
    }


EXPECTED = {
    "not json": "is not valid JSON",
    "wrong schema": "expected one of 'attnprof-results/1', 'attnprof-results/2'",
    "cells not a list": "cells: expected a list, found dict",
    "ok cell without profile": "cells[1] ('resnet18|se|fc@224x224'): lacks 'profile'",
    "latency median not a number": "latency[0].median_ms: expected a number",
}


@pytest.mark.parametrize("case", list(EXPECTED))
def test_corrupt_file_is_one_line_exit_2_and_no_files(results_file, capsys, case):
    results_file.write_text(_corrupt_cases()[case], encoding="utf-8")
    stale = results_file.parent / "report.md"
    stale.write_text("an earlier report\n", encoding="utf-8")
    code, out, err = _run(capsys, str(results_file))
    assert code == EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("attnprof: error: "), err
    assert EXPECTED[case] in lines[0], err
    assert str(results_file) in lines[0], err
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in results_file.parent.iterdir()) == ["report.md", "results.json"]
    assert stale.read_text(encoding="utf-8") == "an earlier report\n"


def test_missing_file_is_exit_2(tmp_path, capsys):
    code, _, err = _run(capsys, str(tmp_path / "nope.json"))
    assert code == EXIT_USAGE
    assert "does not exist" in err
