"""`attnprof profile`, called in-process."""

from __future__ import annotations

import json

import pytest
import torch

from attnprof.cli import main

FAST = ["--backbone", "resnet18", "--input", "32", "--conventions", "paper,thop,full"]


def run(capsys, *argv):
    code = main(["profile", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_fields(capsys):
    attention = "se"
    code, out, err = run(capsys, *FAST, "--attention", attention, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["backbone"] == "resnet18" and data["attention"] == attention
    assert data["input"] == [1, 3, 32, 32] and data["head"] == "fc"
    assert data["params"] > data["attention_params"] >= 0
    assert list(data["counts"]) == ["paper", "thop", "full"]
    for name, entry in data["counts"].items():
        assert {"value", "unit", "attention", "uncounted"} <= set(entry), name
        assert isinstance(entry["value"], int) and isinstance(entry["uncounted"], dict)
    assert data["counts"]["paper"]["unit"] == data["counts"]["thop"]["unit"] == "MAC"
    assert data["counts"]["full"]["unit"] == "FLOP"
    assert data["counts"]["full"]["bytes"] > data["counts"]["full"]["attention_bytes"] >= 0


def test_table_states_units(capsys):
    code, out, err = run(capsys, *FAST, "--head", "pool", "--input", "32x48", "--batch", "2")
    assert code == 0, err
    for unit in ("GMAC", "GFLOP", "M params", "MB"):
        assert unit in out
    assert "2x3x32x48" in out


def test_each_requested_batch_size_is_counted(capsys):
    code, out, err = run(capsys, *FAST, "--batch", "1,4")
    assert code == 0, err
    assert out.count("Total N=1") == out.count("Total N=4") == 2  # the MAC and FLOP tables
    assert "Memory traffic at batch N=1" in out


def test_options_are_parsed(capsys):
    code, out, err = run(capsys, *FAST, "--attention", "sge", "--option", "groups=32", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["options"] == {"groups": 32}
    assert data["attention_params"] == 2 * 32 * 8  # 2G per block, 8 blocks


@pytest.mark.parametrize(
    "argv",
    [
        ["--backbone", "resnet19"],
        ["--attention", "nope"],
        ["--conventions", "paper,flops"],
        ["--input", "800x"],
        ["--input", "0"],
        ["--batch", "0"],
        ["--head", "fcc"],
        ["--option", "groups"],
        ["--option", "groups=32"],  # attention 'none' takes no options
        ["--attention", "se", "--option", "bogus=1"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv):
    # paper first, so a value that is unexpectedly accepted costs little; argv's own wins
    code, out, err = run(capsys, "--conventions", "paper", "--input", "32", *argv)
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("attnprof: error: ")
    assert "Traceback" not in err


def test_latency_adds_timings_per_batch_and_module_timings(capsys):
    code, out, err = run(
        capsys, *FAST, "--attention", "se", "--latency", "--batch", "1,2", "--threads", "1",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["input"] == [1, 3, 32, 32]  # the first batch size's counts are "counts"
    for name, count in data["other_batches"]["2"].items():  # and every other size is counted
        assert count["value"] == 2 * data["counts"][name]["value"] > 0, name
    assert [entry["batch"] for entry in data["latency"]] == [1, 2]
    for entry in data["latency"]:
        assert entry["device"] == "cpu" and entry["threads"] == 1
        assert entry["ci95_ms"][0] <= entry["median_ms"] <= entry["ci95_ms"][1]
        assert entry["iqr_ms"] >= 0 and entry["samples"] >= 6
        # images/s follows from the median: batch / (median in seconds)
        assert entry["images_per_s"] == pytest.approx(entry["batch"] / (entry["median_ms"] / 1e3))
        assert entry["peak_mem_bytes"] is None or entry["peak_mem_bytes"] > 0
    stages = [t["stage"] for t in data["module_latency"]]
    assert stages == [1, 2, 3, 4]
    assert all(t["calls_per_forward"] == 2 for t in data["module_latency"])  # 2 blocks a stage


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU-only machine")
def test_latency_on_cuda_without_a_gpu_is_refused(capsys):
    code, out, err = run(capsys, *FAST, "--latency", "--device", "cuda")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cuda" in err and "Traceback" not in err


def test_profile_is_importable_from_the_package_top_level():
    import attnprof

    record = attnprof.profile("resnet50", "se", input=224, conventions=["paper"])
    # SE-ResNet-50 under the classic counter: 4.130 GMAC as published.
    assert round(record.counts["paper"].value / 1e9, 3) == 4.130
    assert record.to_dict()["counts"]["paper"]["unit"] == "MAC"
