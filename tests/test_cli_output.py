"""Output that works in logs: with stdout not a terminal (a pipe, a file, a CI log), tables
come whole at their natural width, without colour codes; a requested output that cannot be
written exits non-zero with the reason and writes nothing."""

from __future__ import annotations

import shutil

import pytest

from attnprof.cli import main

ANSI = "\x1b["
ELLIPSIS = "…"


@pytest.fixture(autouse=True)
def no_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_whole(out: str) -> None:
    assert ELLIPSIS not in out and ANSI not in out
    assert max(len(line) for line in out.splitlines()) > 80  # wider than the old fallback
    rows = [line for line in out.splitlines() if line.startswith(("│", "┃"))]
    assert rows and all(line.rstrip().endswith(("│", "┃")) for line in rows)  # one line each


def test_list_is_whole_in_a_log(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert_whole(out)


def test_a_wide_breakdown_is_whole_in_a_log(capsys):
    code, out, _ = run(capsys, "profile", "--backbone", "resnet50", "--attention", "sa",
                       "--input", "32", "--by-module", "--depth", "3", "--by-op")
    assert code == 0
    assert_whole(out)
    assert "attention ◆" in out and "per operator" in out


def test_compare_is_whole_in_a_log(capsys):
    path = "results/train-compile/results.json"
    code, out, _ = run(capsys, "compare", path, path)
    assert code == 0
    assert_whole(out)


def test_explicit_columns_are_respected(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run(capsys, "list")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 100


def test_a_plot_that_cannot_be_drawn_is_refused_and_nothing_is_written(capsys, tmp_path):
    counted = tmp_path / "counted"
    code, _, err = run(capsys, "run", "--suite", "smoke", "--skip-latency", "--quiet",
                       "--out", str(counted))
    assert code == 0, err
    before = sorted(p.name for p in counted.iterdir())
    report_md = (counted / "report.md").read_bytes()
    code, out, err = run(capsys, "report", str(counted / "results.json"), "--format", "png",
                         "--format", "md")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--format png cannot be written" in err
    assert "Δ latency" in err and "--skip-latency" in err  # the reason, and what would work
    assert sorted(p.name for p in counted.iterdir()) == before  # nothing new, nothing lost
    assert (counted / "report.md").read_bytes() == report_md
    # asked for nothing in particular: the plot is skipped with a note, as before
    elsewhere = tmp_path / "elsewhere"
    code, _, err = run(capsys, "report", str(counted / "results.json"), "--out", str(elsewhere))
    assert code == 0 and "Plot skipped" in err
    assert not (elsewhere / "macs_vs_latency.png").exists()
    shutil.rmtree(elsewhere)
