"""``attnprof run`` with a training pass: counted, timed paired, probed, reported; and the
compile mode refused where torch.compile cannot run."""

from __future__ import annotations

import json

import jsonschema
import pytest

from attnprof import results
from attnprof.cli import main
from attnprof.latency import settings as settings_module

SUITE = """
[suite]
name = "tiny-train"
description = "ResNet-18 at 32x32, forward and training step."
[models]
backbones = ["resnet18"]
variants = ["none", "se"]
input = 32
heads = ["fc"]
[counting]
conventions = ["paper", "full"]
batch = 2
[latency]
attribution = false
devices = ["cpu"]
batch_sizes = [2]
passes = ["inference", "train"]
processes = 1
rounds = 6
sample_time = 0.005
max_warmup_rounds = 2
threads = 1
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-train")
    suite = folder / "tiny.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = folder / "out"
    code = main(["run", "--suite", str(suite), "--out", str(out), "--quiet"])
    return code, suite, out


def test_a_train_pass_is_counted_and_timed_beside_the_forward(tiny_run):
    code, _, out = tiny_run
    assert code == 0
    raw = json.loads((out / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(raw, results.json_schema())
    doc = results.load(out / "results.json")
    for cell in doc.cells:
        training = cell.profile.training
        assert training is not None and training.backward > training.forward > 0
        assert training.activation_bytes > 0 and not training.uncounted
        assert {(e.pass_name, e.mode) for e in cell.latency} == {("inference", "eager"),
                                                                  ("train", "eager")}
        train = next(e for e in cell.latency if e.pass_name == "train")
        forward = next(e for e in cell.latency if e.pass_name == "inference")
        assert train.ok and train.ratio is not None
        assert train.median_ms > forward.median_ms  # a step does a forward and more
        assert len(train.record.first_call_s) == 1
    se = next(c for c in doc.cells if c.variant == "se")
    assert se.profile.training.attention_activation_bytes > 0
    (limits,) = doc.provenance.machine_limits
    assert limits.device == "cpu" and limits.threads == 1
    assert limits.bandwidth_bytes_per_s > 0 and limits.peak_flops_per_s > 0
    report = (out / "report.md").read_text(encoding="utf-8")
    for title in ("## Training step", "## The machine's limits", "cpu b2 train Δ latency"):
        assert title in report


def test_resume_keeps_every_pass_it_has(tiny_run, capsys):
    _code, suite, out = tiny_run
    before = results.load(out / "results.json")
    assert main(["run", "--suite", str(suite), "--out", str(out), "--resume", "--quiet"]) == 0
    after = results.load(out / "results.json")
    assert [c.latency for c in after.cells] == [c.latency for c in before.cells]


def test_compile_mode_is_refused_where_torch_compile_cannot_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(settings_module.shutil, "which", lambda name: None)
    suite = tmp_path / "compiled.toml"
    suite.write_text(SUITE.replace('passes = ["inference", "train"]', 'modes = ["compile"]'),
                     encoding="utf-8")
    out = tmp_path / "out"
    code = main(["run", "--suite", str(suite), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("attnprof: error:")]
    assert "mode 'compile' cannot run on cpu here" in line and "C++ compiler" in line
    assert not (out / "results.json").exists()
