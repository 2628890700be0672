"""What a results file says about the machine and the code: the CPU in detail, torch's build,
the GPU's nvidia-smi line, the suite file's repository and commit, and the differences compare
names between two machines."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from attnprof import results
from attnprof.compare import compare, load_pooled
from attnprof.machine import describe_machine, machine_differences
from attnprof.machine.identity import cache_sizes, parse_nvidia_smi, torch_build
from attnprof.suite import provenance
from attnprof.suite.config import load_suite

CPUINFO = Path("/proc/cpuinfo")


def test_the_cpu_is_described_from_what_the_system_says():
    cpu = describe_machine()["cpu"]
    assert cpu["model"] and cpu["logical_cpus"] >= 1
    if CPUINFO.exists():
        text = CPUINFO.read_text()
        flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M)[1].split())
        # each listed extension is one /proc/cpuinfo has; each one it has of ours is listed
        assert set(cpu["isa"]) == {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                   "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                                   "amx_bf16", "amx_int8"} & flags
        model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)[1].strip()
        assert cpu["model"] in model or model in cpu["model"]
    caches = cpu["caches"]
    if Path("/sys/devices/system/cpu/cpu0/cache").is_dir():
        assert caches["l1d"] > 0 and caches["l2"] > caches["l1d"]


def test_cache_sizes_read_sysfs_units(tmp_path):
    for index, (level, kind, size) in enumerate(
            [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"),
             ("3", "Unified", "105M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(value + "\n")
    assert cache_sizes(tmp_path) == {"l1d": 48 << 10, "l1i": 32 << 10, "l2": 2 << 20,
                                     "l3": 105 << 20}
    assert cache_sizes(tmp_path / "absent") == {"l1d": None, "l1i": None, "l2": None, "l3": None}


def test_torch_build_is_read_from_torch_own_configuration():
    build = torch_build()
    config = torch.__config__.show()
    assert build["version"] == torch.__version__
    if "BLAS_INFO=" in config:
        assert f"BLAS_INFO={build['blas']}" in config
    if "MKL-DNN" in config:
        assert f"MKL-DNN v{build['onednn']}" in config
    assert build["intra_op_threads"] == torch.get_num_threads()
    # text it does not recognise gives unknowns, never a guess
    unknown = torch_build(config="PyTorch built with:\n  - GCC 13\n", parallel="")
    assert unknown["blas"] is unknown["onednn"] is unknown["mkl"] is None
    assert unknown["intra_op_threads"] is None


def test_nvidia_smi_line_is_parsed():
    line = "550.54.15, 1980 MHz, 2619 MHz\n"
    assert parse_nvidia_smi(line) == {"driver": "550.54.15", "sm_clock_max_mhz": 1980,
                                      "memory_clock_max_mhz": 2619}
    assert parse_nvidia_smi("550.54.15, 1980, 2619") == {
        "driver": "550.54.15", "sm_clock_max_mhz": 1980, "memory_clock_max_mhz": 2619}
    assert parse_nvidia_smi("") == {} and parse_nvidia_smi("No devices were found") == {}


def test_differences_name_every_key_that_differs():
    a = {"cpu": {"model": "AMD EPYC", "isa": ["avx2", "avx512f"], "caches": {"l3": 32 << 20}},
         "torch_build": {"onednn": "3.12.0"}}
    b = {"cpu": {"model": "Intel Xeon", "isa": ["avx2", "amx_bf16"], "caches": {"l3": 32 << 20}},
         "torch_build": {"onednn": "3.5.3"}}
    assert machine_differences(a, b) == [
        "cpu.isa: avx512f only in A; amx_bf16 only in B",
        "cpu.model: AMD EPYC vs Intel Xeon",
        "torch_build.onednn: 3.12.0 vs 3.5.3",
    ]
    assert machine_differences(a, a) == []
    assert machine_differences(a, {}) == [
        "cpu.caches.l3: 33554432 vs unknown", "cpu.isa: avx2, avx512f only in A",
        "cpu.model: AMD EPYC vs unknown", "torch_build.onednn: 3.12.0 vs unknown"]


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder,
                   check=True, capture_output=True)


def test_suite_source_names_the_repository_commit_and_changes(tmp_path):
    repo = tmp_path / "zoo"
    (repo / "bench").mkdir(parents=True)
    suite = repo / "bench" / "suite.toml"
    suite.write_text("# a suite\n")
    assert provenance.suite_source(suite) is None  # not in git yet
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    clean = provenance.suite_source(suite)
    assert clean == {"repository": "zoo", "commit": head, "path": "bench/suite.toml",
                     "dirty": False, "file_dirty": False}
    suite.write_text("# edited\n")
    assert provenance.suite_source(suite)["file_dirty"] is True
    _git(repo, "remote", "add", "origin", "https://example.org/lab/zoo.git")
    assert provenance.suite_source(suite)["repository"] == "https://example.org/lab/zoo.git"
    assert provenance.suite_source(load_suite("smoke").source) is None  # shipped


def test_provenance_records_the_machine_and_each_variant_source():
    prov = provenance.collect(load_suite("smoke"))
    assert prov.machine == describe_machine()
    assert set(prov.variant_sources) == {"none", "se", "sge"}
    assert all(re.fullmatch(r"[0-9a-f]{16}", v) for v in prov.variant_sources.values())
    assert len(set(prov.variant_sources.values())) == 3  # one file each


@pytest.fixture
def committed() -> results.ResultsDocument:
    return results.load("results/detection/results.json")


def test_compare_names_every_difference_between_two_machines(committed, tmp_path):
    here = replace(committed, provenance=replace(committed.provenance,
                                                 machine=describe_machine()))
    other = json.loads(json.dumps(describe_machine()))
    other["cpu"]["model"] = "Intel(R) Xeon(R) Platinum 8480+"
    other["cpu"]["isa"] = sorted({*other["cpu"]["isa"], "amx_tile"})
    other["torch_build"]["onednn"] = "3.5.3"
    there = replace(committed, provenance=replace(committed.provenance, machine=other))
    results.write(tmp_path / "here.json", here)
    results.write(tmp_path / "there.json", there)
    done = compare(load_pooled(str(tmp_path / "here.json")),
                   load_pooled(str(tmp_path / "there.json")))
    (note,) = [n for n in done.notes if "different machines" in n]
    for fragment in ("cpu.model: ", "Intel(R) Xeon(R) Platinum 8480+",
                     "cpu.isa: amx_tile only in NEW", "torch_build.onednn: "):
        assert fragment in note, note
    same = compare(load_pooled(str(tmp_path / "here.json")),
                   load_pooled(str(tmp_path / "here.json")))
    assert not [n for n in same.notes if "machine" in n]
