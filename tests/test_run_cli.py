"""``attnprof run``: the smoke suite end to end, resume, failures, and every kind of bad input."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

import attnprof.profiling
from attnprof import results
from attnprof.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def resume_smoke(capsys, out_dir):
    """Count whatever the smoke suite still lacks in ``out_dir``."""
    return run_cli(
        capsys,
        "run",
        "--suite",
        "smoke",
        "--skip-latency",
        "--out",
        str(out_dir),
        "--resume",
        "--quiet",
    )


def assert_one_clear_line(code, err, *fragments):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("attnprof: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One real run of the smoke suite (latency included), shared by the tests below."""
    out = tmp_path_factory.mktemp("smoke")
    code = main(["run", "--suite", "smoke", "--out", str(out), "--quiet"])
    return code, out


def test_smoke_run_writes_results_csv_report_and_plot(smoke_run):
    code, out = smoke_run
    assert code == 0
    raw = json.loads((out / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(raw, results.json_schema())  # what the runner writes is what it documents
    data = results.load(out / "results.json")
    assert [c.variant for c in data.cells] == ["none", "se", "sge"]
    assert all(c.status == "ok" for c in data.cells)
    for cell in data.cells:
        assert set(cell.profile.counts) == {"paper", "thop", "full"}
        (entry,) = cell.latency
        assert entry.device == "cpu" and entry.batch == 1 and entry.threads == 1
        # six fresh processes of two rounds each stand behind every interval
        assert entry.record.samples == 12 and len(entry.ratio.values) == 12
        assert entry.record.processes == 6 and entry.record.ci_over == "processes"
        assert entry.ratio.processes == 6 and entry.ratio.rounds_per_process == (2,) * 6
        assert entry.ratio.ci95[0] <= entry.ratio.median <= entry.ratio.ci95[1]
        assert entry.ratio.ci95 == (min(entry.ratio.process_medians),
                                    max(entry.ratio.process_medians))
    assert data.cells[0].latency[0].ratio.values == (1.0,) * 12
    report = (out / "report.md").read_text()
    assert "in 6 fresh processes of 2 rounds each" in report
    # where the time goes: the group profiled once, in a fresh process of its own
    (profiled,) = data.attributions
    assert profiled.ok and profiled.mode == "eager" and profiled.network == "resnet18"
    assert [v.variant for v in profiled.attribution.variants] == ["none", "se", "sge"]
    assert "## Where the time goes" in report
    provenance = data.provenance.to_dict()
    for key in ("attnprof", "torch", "fvcore", "thop", "python", "cpu", "threads", "utc"):
        assert provenance[key] is not None, key
    assert "git_commit" in provenance and "gpu" in provenance
    assert (out / "results.csv").read_text().startswith("id,")
    assert "| variant |" in (out / "report.md").read_text()
    assert (out / "macs_vs_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_regenerates_the_same_tables_without_measuring(smoke_run, tmp_path, capsys):
    _, out = smoke_run
    code, _, err = run_cli(capsys, "report", str(out / "results.json"), "--out", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "report.md").read_text() == (out / "report.md").read_text()
    assert (tmp_path / "results.csv").read_text() == (out / "results.csv").read_text()


def test_only_keeps_the_baseline_and_resume_completes_the_rest(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "run",
        "--suite",
        "smoke",
        "--only",
        "se",
        "--skip-latency",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert code == 0, err
    first = results.load(tmp_path / "results.json")
    assert [c.variant for c in first.cells] == ["none", "se"]
    code, out, err = resume_smoke(capsys, tmp_path)
    assert code == 0, err
    assert "1 cells counted" in out and "2 kept from before" in out
    second = results.load(tmp_path / "results.json")
    assert [c.variant for c in second.cells] == ["none", "se", "sge"]
    assert second.cells[0] == first.cells[0]  # the finished cell is kept as it was


def test_a_failing_cell_is_recorded_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    real_profile = attnprof.profiling.profile

    def flaky(backbone, attention, **kwargs):
        if attention == "se":
            raise RuntimeError("simulated out of memory")
        return real_profile(backbone, attention, **kwargs)

    monkeypatch.setattr(attnprof.profiling, "profile", flaky)
    code, out, _ = run_cli(
        capsys, "run", "--suite", "smoke", "--skip-latency", "--out", str(tmp_path), "--quiet"
    )
    assert code == 1
    cells = {c.variant: c for c in results.load(tmp_path / "results.json").cells}
    assert cells["se"].status == "error"
    assert cells["se"].failure.error.startswith("RuntimeError: simulated out of memory")
    assert "simulated out of memory" in cells["se"].failure.traceback.splitlines()[-1]
    assert cells["none"].status == cells["sge"].status == "ok"
    assert "failed" in out
    # the summary's status column is each cell's own: the others stay "ok", never "partial"
    rows = [line.strip("│ ").split("│") for line in out.splitlines() if "resnet18 ·" in line]
    statuses = [row[-1].strip() for row in rows]
    assert statuses == ["ok", "failed", "ok"], out
    assert "Failed cells" in (tmp_path / "report.md").read_text()


def test_an_interrupted_run_keeps_every_finished_cell(tmp_path, capsys, monkeypatch):
    real_profile = attnprof.profiling.profile

    def interrupted(backbone, attention, **kwargs):
        if attention == "sge":
            raise KeyboardInterrupt
        return real_profile(backbone, attention, **kwargs)

    monkeypatch.setattr(attnprof.profiling, "profile", interrupted)
    code, _, err = run_cli(
        capsys, "run", "--suite", "smoke", "--skip-latency", "--out", str(tmp_path), "--quiet"
    )
    assert code == 130
    assert "--resume" in err and "Traceback" not in err
    data = json.loads((tmp_path / "results.json").read_text())  # complete, valid JSON
    assert [c["variant"] for c in data["cells"]] == ["none", "se"]
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written temporary file left behind
    monkeypatch.setattr(attnprof.profiling, "profile", real_profile)
    code, out, err = resume_smoke(capsys, tmp_path)
    assert code == 0, err
    assert "1 cells counted" in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--suite", "imagenett"], ["unknown suite 'imagenett'", "valid suites:", "smoke"]),
        (["--suite", "smoke", "--only", "sx"], ["unknown variant(s) 'sx'", "none, se, sge"]),
        (["--suite", "smoke", "--device", "tpu"], ["invalid choice: 'tpu'", "cpu", "cuda"]),
        (["--suite", "smoke", "--processes", "3"],
         ["processes must be 1 (this process only), at least 6", "got 3"]),
        (["--suite", "smoke", "--budget", "soon"],
         ["--budget 'soon' is invalid", '"8 min"']),
        (["--suite", "smoke", "--target-width", "0"],
         ["target_width must be a positive number", "got 0.0"]),
        (["--suite", "smoke", "--processes", "1"],
         ["rounds (with processes=1) must be an integer >= 6", "got 2"]),
    ],
)
def test_bad_run_arguments_get_one_clear_line(tmp_path, capsys, argv, fragments):
    code, _, err = run_cli(capsys, "run", *argv, "--out", str(tmp_path / "out"))
    assert_one_clear_line(code, err, *fragments)
    assert not (tmp_path / "out").exists()


def test_processes_and_rounds_from_the_command_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "--suite", "smoke", "--only", "se", "--processes", "1",
                           "--rounds", "6", "--skip-attribution", "--out", str(tmp_path),
                           "--quiet")
    assert code == 0, err
    data = results.load(tmp_path / "results.json")
    assert not data.attributions and not data.suite.latency.attribution
    entry = data.cells[1].latency[0]
    assert entry.ratio.ci_over == "rounds" and len(entry.ratio.values) == 6
    assert data.suite.latency.processes == 1 and data.suite.latency.rounds == 6
    assert "in one process of 6 rounds" in (tmp_path / "report.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU-only machine")
def test_cuda_without_a_gpu_is_refused_before_anything_runs(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "run", "--suite", "smoke", "--device", "cuda", "--out", str(tmp_path / "out")
    )
    assert_one_clear_line(code, err, "no CUDA GPU is available", "--device cpu")
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_folder_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(
        capsys, "run", "--suite", "smoke", "--skip-latency", "--out", str(blocker / "results")
    )
    assert_one_clear_line(code, err, "is not writable", "--out")


def test_a_malformed_suite_file_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[models]\nbackbones = ['resnet18']\nvariants = ['none', 'se']\ninput = 'big'\n")
    code, _, err = run_cli(capsys, "run", "--suite", str(bad), "--out", str(tmp_path / "out"))
    assert_one_clear_line(code, err, str(bad), "models.input = 'big'")
    assert not (tmp_path / "out").exists()


def test_resume_refuses_a_folder_of_another_suite(tmp_path, capsys, smoke_run):
    _, out = smoke_run
    other = tmp_path / "results.json"
    data = json.loads((out / "results.json").read_text())
    data["suite"]["name"] = "imagenet"
    other.write_text(json.dumps(data))
    before = other.read_text()
    code, _, err = run_cli(
        capsys, "run", "--suite", "smoke", "--out", str(tmp_path), "--resume", "--skip-latency"
    )
    assert_one_clear_line(code, err, "holds suite 'imagenet', not 'smoke'")
    assert other.read_text() == before


def test_list_shows_suites_modules_backbones_and_conventions(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for word in ("imagenet", "detection", "paper-sge", "smoke", "sge", "resnet152", "fvcore"):
        assert word in out
