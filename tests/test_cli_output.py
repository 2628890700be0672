"""Output that works in logs: with stdout a pipe (a file, a CI log), tables arrive whole at their
natural width, one line per row and without escape codes; a format asked for by name that
cannot be written exits 2 with the reason and writes nothing.

The piped commands run as real subprocesses, side by side (they are independent), so what is
checked is what a CI log receives; the rest runs in process.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table

from attnprof import results
from attnprof.cli import EXIT_OK, EXIT_USAGE, main
from attnprof.cli.console import LOG_WIDTH, console, log_width
from attnprof.counting.conventions import CONVENTIONS
from attnprof.errors import AttnprofError
from attnprof.report import build_report, write_reports
from attnprof.report import plot as report_plot
from attnprof.suite.config import available_suites, load_suite

ROOT = Path(__file__).resolve().parent.parent
TIMED = ROOT / "results" / "train-compile" / "results.json"  # committed, with latency
ESC = "\x1b"
ELLIPSIS = "…"
PLOT = "macs_vs_latency.png"


def problems(out: str) -> list[str]:
    """The lines of ``out`` that show a table squeezed, cut or coloured. A table row that rich
    wrapped goes on in a line whose first cell is blank (the cells that fit leave theirs
    empty), so every row line of a whole table starts with text."""
    bad = []
    for line in out.splitlines():
        if ESC in line or ELLIPSIS in line:
            bad.append(line)
        elif line.startswith(("│", "┃")):
            edge = line[0]
            first = line[1:].split(edge, 1)[0]
            if not first.strip() or not line.rstrip().endswith(edge):
                bad.append(line)
    return bad


def assert_whole(out: str) -> None:
    assert problems(out) == [], "\n".join(problems(out)[:5])
    assert max(len(line) for line in out.splitlines()) > 80  # wider than rich's fallback


def line_holding(out: str, *parts: str) -> str | None:
    """The first line that holds every one of ``parts``."""
    return next((line for line in out.splitlines() if all(p in line for p in parts)), None)


@pytest.fixture(autouse=True)
def no_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> Path:
    """A counts-only smoke run: results without latency, and its reports."""
    folder = tmp_path_factory.mktemp("counted")
    code = main(["run", "--suite", "smoke", "--skip-latency", "--quiet", "--out", str(folder)])
    assert code == EXIT_OK
    assert (folder / "report.md").exists() and not (folder / PLOT).exists()
    return folder


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def counted_before(counted) -> dict[str, tuple[int, bytes]]:
    """The counted folder's files before the refused report runs."""
    return snapshot(counted)


@pytest.fixture(scope="module")
def piped(counted, counted_before) -> dict[str, subprocess.CompletedProcess]:
    """Each command run as ``attnprof ...`` with stdout and stderr pipes, all at once. Colours
    are forced through the environment, to show that a log gets none anyway."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    env.update(FORCE_COLOR="1", TERM="xterm-256color", PYTHONIOENCODING="utf-8",
               OMP_NUM_THREADS="1")
    commands = {
        "list": ["list"],
        "profile": ["profile", "--backbone", "resnet50", "--attention", "sa", "--input", "32",
                    "--by-module", "--depth", "3", "--by-op"],
        "compare": ["compare", str(TIMED), str(TIMED)],
        "refused": ["report", str(counted / "results.json"), "--format", "md",
                    "--format", "png"],
    }
    started = {
        name: subprocess.Popen([sys.executable, "-m", "attnprof", *argv], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               encoding="utf-8")
        for name, argv in commands.items()
    }
    finished = {}
    try:
        for name, process in started.items():
            out, err = process.communicate(timeout=300)
            finished[name] = subprocess.CompletedProcess(process.args, process.returncode, out,
                                                         err)
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return finished


def test_list_is_whole_in_a_log(piped):
    done = piped["list"]
    assert done.returncode == EXIT_OK, done.stderr
    assert_whole(done.stdout)
    suite = load_suite("train-compile")  # one long description: loading all takes seconds
    assert len(suite.description) > 80 and suite.name in available_suites()
    assert line_holding(done.stdout, suite.name, suite.description)
    for convention in CONVENTIONS.values():
        assert line_holding(done.stdout, convention.name, convention.summary)


def test_a_wide_breakdown_is_whole_in_a_log(piped):
    done = piped["profile"]
    assert done.returncode == EXIT_OK, done.stderr
    assert_whole(done.stdout)
    header = line_holding(done.stdout, "┃ module ", "full: bytes moved (MB)")
    assert header and "paper (MMAC)" in header  # every column named on one header line
    assert "◆" in done.stdout and "per operator" in done.stdout


def test_compare_is_whole_in_a_log(piped):
    done = piped["compare"]
    assert done.returncode == EXIT_OK, done.stderr
    assert_whole(done.stdout)
    cells = {cell.id for cell in results.load(TIMED).cells}
    assert cells and all(line_holding(done.stdout, f"│ {cell} ", "unchanged") for cell in cells)


def test_a_plot_asked_for_that_cannot_be_drawn_is_refused_and_nothing_is_written(
        piped, counted, counted_before):
    done = piped["refused"]
    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.startswith("attnprof: error: ") and done.stderr.count("\n") == 1
    assert "'png' cannot be written" in done.stderr
    if report_plot.plot_available():  # the reason, and what would work
        assert "Δ latency" in done.stderr and "--skip-latency" in done.stderr
    else:
        assert report_plot.INSTALL_HINT in done.stderr
    assert "md or csv" in done.stderr
    assert "report.md" in counted_before  # written by the run, so a rewrite would show
    assert snapshot(counted) == counted_before  # the md asked for beside it was not written


def test_without_format_the_plot_is_skipped_with_a_note(counted, tmp_path, capsys):
    capsys.readouterr()
    code = main(["report", str(counted / "results.json"), "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert "note: Plot skipped" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "results.csv"]
    assert out.splitlines() == [str(tmp_path / "report.md"), str(tmp_path / "results.csv")]


def test_missing_matplotlib_is_named_with_its_remedy(monkeypatch, tmp_path):
    monkeypatch.setattr(report_plot, "plot_available", lambda: False)
    report = build_report(results.load(TIMED))
    with pytest.raises(AttnprofError, match=r"matplotlib is not installed") as raised:
        write_reports(report, tmp_path, ("md", "png"), required=("png",))
    assert report_plot.INSTALL_HINT in str(raised.value)
    assert "--skip-latency" not in str(raised.value)  # it has latency: that is not the cause
    assert list(tmp_path.iterdir()) == []
    # not asked for by name: skipped, the rest written
    written = write_reports(report, tmp_path, ("md", "png"))
    assert [p.name for p in written] == ["report.md"]


def test_an_unwritable_out_is_one_line(counted, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    capsys.readouterr()
    code = main(["report", str(counted / "results.json"), "--out", str(blocker / "reports")])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and "is not writable" in err and "--out" in err


def wide_table() -> Table:
    table = Table("name", "what")
    table.add_row("[red]long[/red]", "y" * 200)
    return table


def test_explicit_columns_are_respected(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    stream = io.StringIO()
    console(stream).print(wide_table())
    out = stream.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert problems(out)  # the check of the piped tables would catch rich's 80 columns


def test_a_log_console_is_wide_and_plain(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    for columns, width in ((None, LOG_WIDTH), ("x", LOG_WIDTH), ("0", LOG_WIDTH), ("132", 132)):
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        assert log_width() == width
    monkeypatch.delenv("COLUMNS")
    stream = io.StringIO()
    made = console(stream)
    assert made.width == LOG_WIDTH and not made.is_terminal and made.color_system is None
    made.print(wide_table())
    lines = stream.getvalue().splitlines()
    assert ESC not in stream.getvalue() and len(lines) == 5  # borders, header, one row
    assert len(lines[0]) < 220  # natural width, not expanded to the console's


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_console_is_richs_own(monkeypatch):
    monkeypatch.setenv("COLUMNS", "99")
    made = console(_Terminal())
    assert made.is_terminal and made.width == 99
