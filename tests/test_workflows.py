"""The ready workflows of ``examples/ci``: parsed, and their steps' commands run here.

A scratch git repository stands in for a user's: a network with an attention slot, a module of
their own, and a suite file naming both by import path. Its steps run as GitHub would run them
(bash, the job's environment), with three stand-ins: ``uses:`` steps are skipped (the checkout
is the scratch repository itself), the install steps are skipped (this environment already has
attnprof; their commands are checked instead), and artifacts are laid out as
``actions/download-artifact`` lays them out. The suite counts only, so the verdicts are exact:
latency verdicts through the same ``compare`` are covered by tests/test_bench_plugin.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from support import outside_env

from attnprof import results

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ci"
BENCH = EXAMPLES / "attnprof-bench.yml"
MATRIX = EXAMPLES / "attnprof-matrix.yml"
SUITE_PATH = "bench/attnprof-suite.toml"

ZOO = '''
import torch
from torch import nn

import attnprof


class TinyNet(nn.Module):
    def __init__(self, width=16, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.attention = attnprof.AttentionSlot(width, stage=0)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.attention(self.body(x)))
        return self.fc(x.mean((2, 3)))


class Gate(nn.Module):
    def __init__(self, channels, reduction=4):
        super().__init__()
        self.fc = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(),
                                nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3), keepdim=True))
'''

SUITE = '''
[suite]
name = "zoo"

[models]
models = ["zoo:TinyNet"]
variants = ["none", "se", "eca", "zoo:Gate"]
input = 16

[counting]
conventions = ["paper", "full"]

[latency]
enabled = false
'''


def _workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=z", "-c", "user.email=z@z", *args],
                          cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _scratch_repo(root: Path, gate_change: str | None) -> tuple[Path, str, str]:
    """A repository with a base commit and a pull-request commit; ``gate_change`` edits the
    user's module in the pull request (``None``: a change elsewhere, counts untouched)."""
    repo = root / "zoo-repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "zoo.py").write_text(ZOO, encoding="utf-8")
    (repo / SUITE_PATH).write_text(SUITE, encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    if gate_change is None:
        (repo / "NOTES.md").write_text("a change that moves no count\n", encoding="utf-8")
    else:
        (repo / "zoo.py").write_text(ZOO.replace("reduction=4", gate_change), encoding="utf-8")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "pull request")
    return repo, base, _git(repo, "rev-parse", "HEAD")


def _run_steps(job: dict, workdir: Path, env: dict[str, str],
               skip: tuple[str, ...] = ("Install",)) -> subprocess.CompletedProcess | None:
    """Run a job's ``run:`` steps in order with bash, as a runner would; stop at a failure."""
    done = None
    for step in job["steps"]:
        if "uses" in step or step.get("name", "").startswith(skip):
            continue
        script = step["run"]
        assert "${{" not in script, f"step {step.get('name')!r} needs GitHub to expand it"
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=workdir,
                              env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return done
    return done


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    summary = tmp_path / "summary.md"
    summary.touch()
    bin_dir = str(Path(sys.executable).parent)  # attnprof and python of this environment
    return {**outside_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(temp), "GITHUB_STEP_SUMMARY": str(summary), **extra}


# -- the pull-request workflow ------------------------------------------------------------------


def test_bench_workflow_structure():
    flow = _workflow(BENCH)
    assert list(flow["on"]) == ["pull_request"]
    (job,) = flow["jobs"].values()
    env = job["env"]
    assert {"SUITE", "BENCH_TESTS", "RUNS", "THRESHOLD", "BASE_SHA", "HEAD_SHA"} <= set(env)
    assert "pull_request.base.sha" in env["BASE_SHA"] and "head.sha" in env["HEAD_SHA"]
    install = next(s["run"] for s in job["steps"] if s.get("name", "").startswith("Install"))
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    measure, compare = (s["run"] for s in job["steps"] if "run" in s
                        and not s.get("name", "").startswith("Install"))
    assert "attnprof run --suite" in measure and "--benchmark-json" in measure
    assert re.search(r"for side in base pr", measure)  # alternately, base first
    assert "attnprof compare" in compare and "exit $status" in compare  # its verdict, the job's


PULL_REQUESTS = {"unchanged": (None, 0), "count-changed": ("reduction=2", 1)}
"""name: (the edit to the user's module, the exit status the job must end with)."""


@pytest.mark.alone  # an unchanged PR must show no slowdown
def test_bench_workflow_passes_an_unchanged_pr_and_fails_a_changed_count(tmp_path):
    """Both pull requests at once, each in its own repository and runner folder, as two
    workflow runs on two runners would be (counts only: running side by side moves nothing)."""
    (job,) = _workflow(BENCH)["jobs"].values()
    written = {k: str(v) for k, v in job["env"].items() if "${{" not in str(v)}

    def pull_request(name: str, change: str | None):
        root = tmp_path / name
        repo, base, head = _scratch_repo(root, change)
        env = _env(root, **{**written, "RUNS": "1", "BASE_SHA": base, "HEAD_SHA": head})
        return repo, head, _run_steps(job, repo, env)

    with ThreadPoolExecutor(len(PULL_REQUESTS)) as pool:
        runs = {name: pool.submit(pull_request, name, change)
                for name, (change, _) in PULL_REQUESTS.items()}
    for name, (_, expected) in PULL_REQUESTS.items():
        repo, head, done = runs[name].result()
        assert done is not None
        assert done.returncode == expected, f"{name}: " + done.stdout + done.stderr
        compared = (tmp_path / name / "runner-temp" / "attnprof" / "compare.txt").read_text()
        assert "zoo" in compared
        if expected:
            assert "zoo:TinyNet|zoo:Gate" in compared
        assert bool(re.search(r"\bchanged\b", compared)) == bool(expected), compared
        # the verdict in the job summary
        assert "```" in (tmp_path / name / "summary.md").read_text()
        assert _git(repo, "rev-parse", "HEAD") == head  # left on the pull request


# -- the matrix workflow ------------------------------------------------------------------------


def _unsharded(repo: Path, out: Path) -> results.ResultsDocument:
    """The suite run whole, in this process (the user's modules imported from ``repo``)."""
    from attnprof.suite.config import load_suite
    from attnprof.suite.runner import SuiteRunner

    sys.path.insert(0, str(repo))
    try:
        SuiteRunner(load_suite(str(repo / SUITE_PATH)), out).run()
    finally:
        sys.path.remove(str(repo))
        for name in [n for n in sys.modules if n == "zoo"]:
            del sys.modules[name]
    return results.load(out / "results.json")


def test_matrix_workflow_structure():
    flow = _workflow(MATRIX)
    jobs = flow["jobs"]
    assert set(jobs) == {"cpu", "gpu", "merge"}
    shards = jobs["cpu"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and flow["env"]["SHARDS"] == str(len(shards))
    assert "inputs.gpu" in jobs["gpu"]["if"]  # optional: skipped unless asked for
    assert "--device cuda" in next(s["run"] for s in jobs["gpu"]["steps"]
                                   if s.get("name", "").startswith("Run"))
    assert jobs["merge"]["needs"] == ["cpu", "gpu"] and "always()" in jobs["merge"]["if"]


@pytest.mark.slow  # its steps run shards and merge, which test_shard_merge.py checks directly
def test_matrix_workflow_shards_merge_into_the_unsharded_run(tmp_path):
    repo, _, _ = _scratch_repo(tmp_path, None)
    flow = _workflow(MATRIX)
    jobs = flow["jobs"]
    artifacts = tmp_path / "merge-job" / "artifacts"
    shards = jobs["cpu"]["strategy"]["matrix"]["shard"]

    def cpu_job(shard: int) -> subprocess.CompletedProcess | None:
        return _run_steps(jobs["cpu"], repo, _env(tmp_path, **flow["env"], SHARD=str(shard)))

    with ThreadPoolExecutor(len(shards)) as pool:  # side by side, as the matrix's jobs run
        finished = list(pool.map(cpu_job, shards))
    for shard, done in zip(shards, finished, strict=True):
        assert done is not None and done.returncode == 0, done.stderr
        # actions/download-artifact with a pattern: one folder per artifact
        target = artifacts / f"results-shard-{shard}"
        target.mkdir(parents=True)
        shutil.copy(repo / f"shard-{shard}" / "results.json", target / "results.json")
    done = _run_steps(jobs["merge"], artifacts.parent, _env(tmp_path, **flow["env"]))
    assert done is not None and done.returncode == 0, done.stderr
    merged = results.load(artifacts.parent / "merged" / "results.json")
    whole = _unsharded(repo, tmp_path / "whole")
    assert [c.to_dict() for c in merged.cells] == [c.to_dict() for c in whole.cells]
    assert (artifacts.parent / "merged" / "report.md").exists()
    assert "attnprof report: zoo" in (tmp_path / "summary.md").read_text()
