"""The pytest plugin (``attnprof_bench``) as a user meets it: a test file in a scratch package,
run through pytest-benchmark in a fresh process, judged by ``attnprof compare``.

The scratch module is a stack of ``WORK`` conv3x3 + BN + ReLU passes, benchmarked beside the
``conv3x3`` reference (one such pass): the same kind of work on both sides of a round, so the
machine's noise cancels in the per-round ratio (10.0 and 13.3 in three runs each on the 2-core
VM it was written on). Made 30% slower is 13 passes instead of 10: its latency is flagged (its
MAC count changes too, which ``--metric latency`` leaves out of that verdict).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from support import outside_env
from torch import nn

from attnprof.cli import main
from attnprof.compare import compare, load_pooled
from attnprof.counting import count

pytestmark = pytest.mark.alone  # its scratch runs time a slowdown that must be flagged

SCRATCH_TEST = textwrap.dedent('''
    import os

    from torch import nn

    WORK = int(os.environ.get("SCRATCH_WORK", "10"))


    class Stack(nn.Module):
        """``work`` passes of one conv3x3 + BN + ReLU."""

        def __init__(self, channels, work):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(channels), nn.ReLU())
            self.work = work

        def forward(self, x):
            for _ in range(self.work):
                x = self.body(x)
            return x


    def test_stack(attnprof_bench):
        out = attnprof_bench(Stack(32, WORK), (32, 28, 28), name="stack", reference="conv3x3",
                             rounds=20, warmup_rounds=3)
        assert out.shape == (1, 32, 28, 28)
''')


def _pytest(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """pytest in a fresh process; hypothesis's plugin, which this environment has for other
    tests, is left out: it costs about a second of every start and the scratch tests use none of
    it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "no:hypothesispytest", *args],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env=outside_env(**(env or {})),
    )


def _benchmark(folder: Path, name: str, work: int) -> Path:
    out = folder / f"{name}.json"
    done = _pytest(folder, "test_scratch.py", "--benchmark-enable", "--benchmark-json", str(out),
                   env={"SCRATCH_WORK": str(work)})
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scratch_package")
    (folder / "test_scratch.py").write_text(SCRATCH_TEST, encoding="utf-8")
    return {"base": _benchmark(folder, "base", 10), "same": _benchmark(folder, "same", 10),
            "slower": _benchmark(folder, "slower", 13)}


def _attnprof(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_the_fixture_stores_what_compare_reads(runs):
    data = json.loads(runs["base"].read_text())
    (bench,) = data["benchmarks"]
    info = bench["extra_info"]
    assert info["id"] == "stack|32x28x28" and info["reference"] == "conv3x3-bn-relu|32x28x28"
    assert info["params"] == 32 * 32 * 9 + 2 * 32  # conv + BN's weight and bias
    # 10 passes of one conv3x3 + BN + ReLU, counted on the whole module as it ran
    with torch.device("meta"):
        one = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                            nn.ReLU())
    per_pass = count(one.eval(), (1, 32, 28, 28), "paper").value
    assert per_pass >= 32 * 32 * 9 * 28 * 28  # at least the convolution's multiply-adds
    assert info["counts"]["paper"] == {"value": 10 * per_pass, "unit": "MAC"}
    assert info["counts"]["full"]["unit"] == "FLOP"
    slower = json.loads(runs["slower"].read_text())["benchmarks"][0]["extra_info"]
    assert slower["counts"]["paper"]["value"] == 13 * per_pass
    assert len(info["reference_s"]) == len(bench["stats"]["data"]) == 20
    assert data["machine_info"]["torch_threads"] == 1
    cell = load_pooled(str(runs["base"])).by_id()["stack|32x28x28"]
    assert {(c.name, c.value, c.unit) for c in cell.counts} == {
        ("params", info["params"], "params"), ("paper", 10 * per_pass, "MAC"),
        ("full", info["counts"]["full"]["value"], "FLOP")}  # every convention is compared
    assert cell.timings[0].basis.startswith("ratio to conv3x3-bn-relu")


def test_the_same_module_is_not_flagged(runs, capsys):
    code, out = _attnprof(capsys, "compare", str(runs["base"]), str(runs["same"]),
                          "--threshold", "10%")
    assert code == 0, out


def test_a_module_made_30_percent_slower_is_flagged(runs, capsys):
    code, out = _attnprof(capsys, "compare", str(runs["base"]), str(runs["slower"]),
                          "--threshold", "10%", "--metric", "latency")
    assert code == 1, out
    comparison = compare(load_pooled(str(runs["base"])), load_pooled(str(runs["slower"])),
                         threshold=0.10, metrics=("latency",))
    (flagged,) = comparison.flagged
    assert (flagged.cell, flagged.metric, flagged.verdict.value) == \
        ("stack|32x28x28", "latency", "regression")
    # the 30%, measured: +23% to +37% in ten runs of this file with 20 rounds, hence the
    # margin either side
    assert 0.15 < flagged.change < 0.5


def test_a_changed_count_is_flagged(runs, capsys):
    code, out = _attnprof(capsys, "compare", str(runs["base"]), str(runs["slower"]),
                          "--metric", "macs")
    assert code == 1 and "stack|32x28x28" in out


BAD_TESTS = textwrap.dedent('''
    import torch
    from torch import nn


    def test_shape_changes(attnprof_bench):
        attnprof_bench(nn.Conv2d(8, 4, 1), (8, 6, 6))


    def test_bad_shape(attnprof_bench):
        attnprof_bench(nn.Identity(), (8, 6))


    def test_unknown_reference(attnprof_bench):
        attnprof_bench(nn.Identity(), (8, 6, 6), reference="block")


    def test_fails_inside(attnprof_bench):
        attnprof_bench(nn.Linear(3, 3), (8, 6, 6))


    def test_unknown_convention(attnprof_bench):
        attnprof_bench(nn.Identity(), (8, 6, 6), conventions=["flops"])
''')


NO_BENCHMARK_TESTS = textwrap.dedent('''
    from torch import nn


    def test_gate(attnprof_bench):
        attnprof_bench(nn.Identity(), (8, 6, 6))


    def test_other():
        pass
''')


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """The two scratch sessions whose benchmarks are refused, run side by side (nothing in
    them is timed): modules that do not fit, and a session without pytest-benchmark."""
    folder = tmp_path_factory.mktemp("refused")
    (folder / "test_bad.py").write_text(BAD_TESTS, encoding="utf-8")
    (folder / "test_nb.py").write_text(NO_BENCHMARK_TESTS, encoding="utf-8")
    wide = {"COLUMNS": "400"}
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(_pytest, folder, "test_bad.py", "-rf", env=wide)
        bare = pool.submit(_pytest, folder, "test_nb.py", "-p", "no:benchmark", env=wide)
        return {"bad": bad.result(), "no-benchmark": bare.result()}


def test_a_module_that_does_not_fit_fails_its_test_with_one_line(refused):
    done = refused["bad"]
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    expected = {
        "test_shape_changes": "turns a feature map of shape (1, 8, 6, 6) into (1, 4, 6, 6)",
        "test_bad_shape": "is not a feature map; give (C, H, W)",
        "test_unknown_reference": "unknown reference 'block'; valid: bottleneck, conv3x3",
        "test_fails_inside": "fails on a feature map of shape (1, 8, 6, 6): RuntimeError",
        "test_unknown_convention": "flops",
    }
    assert len(lines) == len(expected), done.stdout
    for name, fragment in expected.items():
        (line,) = [line for line in lines if f"::{name} " in line]
        assert "attnprof_bench: " in line and fragment in line, line
    assert "Traceback" not in done.stdout


def test_without_pytest_benchmark_the_fixture_says_what_is_missing(refused):
    done = refused["no-benchmark"]
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout  # the rest of pytest is untouched
    message = "attnprof_bench: needs pytest-benchmark (its 'benchmark' fixture): pip install"
    assert message in done.stdout and "Traceback" not in done.stdout
    assert "During handling" not in done.stdout  # one line, not a chained lookup error
