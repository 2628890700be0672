"""What a results file says about the machine and the code: the CPU in detail, torch's build,
the GPU's nvidia-smi line, the suite file's repository and commit, each variant's source, and
the differences between two machine descriptions."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from attnprof.machine import describe_machine, identity, machine_differences, suite_source
from attnprof.machine.identity import ISA_EXTENSIONS, cache_sizes, parse_nvidia_smi, torch_build
from attnprof.suite import provenance
from attnprof.suite.config import load_suite

CPUINFO = Path("/proc/cpuinfo")
SYSFS_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def _cpuinfo_field(text: str, *names: str) -> str | None:
    for name in names:
        found = re.search(rf"^{name}\s*:\s*(.*)$", text, re.M)
        if found:
            return found[1].strip()
    return None


# --- the CPU -----------------------------------------------------------------------------------


@pytest.mark.skipif(not CPUINFO.exists(), reason="needs Linux's /proc/cpuinfo")
def test_the_cpu_is_described_as_proc_cpuinfo_says():
    cpu = describe_machine()["cpu"]
    text = CPUINFO.read_text()
    flags = set((_cpuinfo_field(text, "flags", "Features") or "").split())
    # every extension listed is one the kernel reports, and every one it reports of ours is listed
    assert set(cpu["isa"]) == set(ISA_EXTENSIONS) & flags
    assert cpu["isa"] == sorted(cpu["isa"])
    model = _cpuinfo_field(text, "model name")
    if model:
        assert cpu["model"] and (cpu["model"] in model or model in cpu["model"])
    family = _cpuinfo_field(text, "cpu family")
    if family:
        assert cpu["family"] == int(family)
    assert cpu["logical_cpus"] == os.cpu_count()
    assert 1 <= cpu["physical_cpus"] <= cpu["logical_cpus"]


@pytest.mark.skipif(not SYSFS_CACHES.is_dir(), reason="needs Linux's sysfs cache folders")
def test_cache_sizes_on_this_machine_are_bytes_of_one_instance():
    caches = describe_machine()["cpu"]["caches"]
    assert set(caches) == {"l1d", "l1i", "l2", "l3"}
    assert caches["l1d"] > 0 and caches["l1i"] > 0
    assert caches["l2"] > caches["l1d"]
    for folder in SYSFS_CACHES.glob("index*"):
        size = (folder / "size").read_text().strip()  # "1024K": kibibytes
        if (folder / "level").read_text().strip() == "2" and size.endswith("K"):
            assert caches["l2"] == int(size[:-1]) * 1024


def test_cache_sizes_read_sysfs_units(tmp_path):
    for index, (level, kind, size) in enumerate(
            [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"),
             ("3", "Unified", "105M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(value + "\n")
    # 48K = 48 * 1024 bytes; 2048K = 2 MiB; 105M = 105 MiB
    assert cache_sizes(tmp_path) == {"l1d": 48 << 10, "l1i": 32 << 10, "l2": 2 << 20,
                                     "l3": 105 << 20}
    assert cache_sizes(tmp_path / "absent") == {"l1d": None, "l1i": None, "l2": None, "l3": None}


def test_the_description_is_json_and_stable():
    import json

    first = describe_machine()
    assert json.loads(json.dumps(first)) == first
    assert describe_machine() == first  # nothing volatile: two readings agree
    assert set(first) == {"cpu", "torch_build"}  # no GPU part for the CPU


def test_no_gpu_part_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "gpu" not in describe_machine("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_gpu_is_described_from_torch():
    gpu = describe_machine("cuda")["gpu"]
    assert gpu["name"] == torch.cuda.get_device_name(0)
    assert gpu["memory_bytes"] == torch.cuda.get_device_properties(0).total_memory
    assert gpu["count"] == torch.cuda.device_count()


# --- torch's build -----------------------------------------------------------------------------


def test_torch_build_is_read_from_torch_own_configuration():
    build = torch_build()
    config = torch.__config__.show()
    assert build["version"] == torch.__version__
    if "BLAS_INFO=" in config:
        assert f"BLAS_INFO={build['blas']}," in config
    if "MKL-DNN v" in config:
        assert f"MKL-DNN v{build['onednn']} " in config
    if "Math Kernel Library Version" in config:
        assert f"Math Kernel Library Version {build['mkl']}" in config
    if "OpenMP" in config and "a.k.a." in config:
        assert f"(a.k.a. OpenMP {build['openmp']})" in config
    assert build["intra_op_threads"] == torch.get_num_threads()
    assert build["inter_op_threads"] == torch.get_num_interop_threads()
    assert build["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert build["cuda"] == torch.version.cuda


# The shape of the lines torch 2.x prints, for a build other than this machine's.
OTHER_BUILD = """PyTorch built with:
  - GCC 11.2
  - C++ Version: 201703
  - Intel(R) MKL-DNN v3.5.3 (Git Hash 66f0cb9eb66affd2da3bf5f8d897376f04aae6af)
  - OpenMP 201511 (a.k.a. OpenMP 4.5)
  - LAPACK is enabled (usually provided by MKL)
  - CPU capability usage: NO AVX
  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, USE_MKL=OFF, USE_OPENMP=ON,
"""
OTHER_PARALLEL = """ATen/Parallel:
\tat::get_num_threads() : 4
\tat::get_num_interop_threads() : 8
OpenMP 201511 (a.k.a. OpenMP 4.5)
ATen parallel backend: OpenMP
"""


def test_torch_build_parses_other_builds_and_never_guesses():
    other = torch_build(OTHER_BUILD, OTHER_PARALLEL)
    assert other["blas"] == "open" and other["onednn"] == "3.5.3" and other["mkl"] is None
    assert other["openmp"] == "4.5" and other["parallel_backend"] == "OpenMP"
    assert (other["intra_op_threads"], other["inter_op_threads"]) == (4, 8)
    no_openmp = torch_build("PyTorch built with:\n  - Build settings: USE_OPENMP=OFF, \n", "")
    assert no_openmp["openmp"] is False
    # text it does not recognise gives unknowns, never a guess
    unknown = torch_build(config="PyTorch built with:\n  - GCC 13\n", parallel="")
    assert unknown["blas"] is unknown["onednn"] is unknown["mkl"] is unknown["openmp"] is None
    assert unknown["intra_op_threads"] is unknown["parallel_backend"] is None


# --- the GPU -----------------------------------------------------------------------------------

# nvidia-smi --query-gpu=uuid,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
# on a machine with two GPUs (the second one's memory clock not reported)
SMI = """GPU-5f0ac2b1-7d43-4e1e-9c7b-1a2b3c4d5e6f, 550.54.15, 1980 MHz, 2619 MHz
GPU-0b42632a-bc5c-f731-724b-6936a19c4b24, 550.54.15, 1755 MHz, [N/A]
"""


def test_nvidia_smi_lines_are_parsed():
    first, second = parse_nvidia_smi(SMI)
    assert first == {"uuid": "5f0ac2b1-7d43-4e1e-9c7b-1a2b3c4d5e6f", "driver": "550.54.15",
                     "sm_max_mhz": 1980, "memory_max_mhz": 2619}
    assert second["uuid"] == "0b42632a-bc5c-f731-724b-6936a19c4b24"
    assert second["sm_max_mhz"] == 1755 and second["memory_max_mhz"] is None
    nounits = "GPU-5f0ac2b1-7d43-4e1e-9c7b-1a2b3c4d5e6f, 535.104.05, 1410, 1593"
    assert parse_nvidia_smi(nounits)[0]["sm_max_mhz"] == 1410
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("No devices were found") == []
    assert parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate") == []


def test_the_gpu_gets_its_own_clocks_by_uuid(monkeypatch):
    """The second nvidia-smi line belongs to the device torch sees as 0 (as with
    CUDA_VISIBLE_DEVICES=1): its clocks, not the first line's, are recorded."""
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0,
                            total_memory=85_031_714_816, multi_processor_count=132,
                            uuid="0b42632a-bc5c-f731-724b-6936a19c4b24")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(identity, "_nvidia_smi", lambda: SMI)
    gpu = identity.gpu_description(0)
    assert gpu == {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0",
                   "memory_bytes": 85_031_714_816, "multiprocessors": 132, "count": 1,
                   "driver": "550.54.15", "clocks": {"sm_max_mhz": 1755, "memory_max_mhz": None}}
    monkeypatch.setattr(identity, "_nvidia_smi", lambda: "")  # no nvidia-smi: unknown, no guess
    gpu = identity.gpu_description(0)
    assert gpu["driver"] is None and gpu["clocks"] == {"sm_max_mhz": None,
                                                        "memory_max_mhz": None}


# --- differences -------------------------------------------------------------------------------


def test_differences_name_every_key_that_differs():
    a = {"cpu": {"model": "AMD EPYC", "isa": ["avx2", "avx512f"], "caches": {"l3": 32 << 20}},
         "torch_build": {"onednn": "3.12.0", "mkl": None}}
    b = {"cpu": {"model": "Intel Xeon", "isa": ["amx_bf16", "avx2"], "caches": {"l3": 32 << 20}},
         "torch_build": {"onednn": "3.5.3", "mkl": "2024.2"},
         "gpu": {"name": "NVIDIA H100", "driver": "550.54.15"}}
    assert machine_differences(a, b) == [
        "cpu.isa: avx512f only in A; amx_bf16 only in B",
        "cpu.model: AMD EPYC vs Intel Xeon",
        "gpu: only in B",
        "torch_build.mkl: unknown vs 2024.2",
        "torch_build.onednn: 3.12.0 vs 3.5.3",
    ]
    assert machine_differences(a, a) == [] and machine_differences({}, None) == []
    assert machine_differences(a, {"cpu": {"model": "AMD EPYC"}}, ("BASE", "NEW")) == [
        "cpu.caches: only in BASE", "cpu.isa: ['avx2', 'avx512f'] vs absent",
        "torch_build: only in BASE"]


def test_differences_between_descriptions_of_this_machine_are_none():
    here = describe_machine()
    other = {**here, "cpu": {**here["cpu"], "caches": {**here["cpu"]["caches"], "l2": 1}}}
    assert machine_differences(here, describe_machine()) == []
    assert machine_differences(here, other) == [
        f"cpu.caches.l2: {here['cpu']['caches']['l2']} vs 1"]


# --- the suite file's repository ---------------------------------------------------------------


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
         "commit.gpgsign=false", *args],
        cwd=folder, check=True, capture_output=True, text=True).stdout.strip()


def test_suite_source_names_the_repository_commit_and_changes(tmp_path):
    repo = tmp_path / "zoo"
    (repo / "bench").mkdir(parents=True)
    suite = repo / "bench" / "suite.toml"
    suite.write_text("# a suite\n")
    (repo / "mynets.py").write_text("# a network\n")
    assert suite_source(suite) is None  # not in git yet
    _git(repo, "init", "-q")
    assert suite_source(suite) is None  # no commit yet
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    first = _git(repo, "rev-parse", "HEAD")
    assert suite_source(suite) == {"repository": "zoo", "commit": first,
                                   "path": "bench/suite.toml", "dirty": False,
                                   "file_dirty": False}
    (repo / "mynets.py").write_text("# a network, edited\n")  # another file: the repo is dirty
    assert suite_source(suite)["dirty"] is True and suite_source(suite)["file_dirty"] is False
    suite.write_text("# edited\n")
    assert suite_source(suite)["file_dirty"] is True
    _git(repo, "commit", "-q", "-am", "second")
    second = suite_source(suite)
    assert second["commit"] == _git(repo, "rev-parse", "HEAD") != first
    assert second["dirty"] is second["file_dirty"] is False
    (repo / "bench" / "new.toml").write_text("# not committed\n")
    untracked = suite_source(repo / "bench" / "new.toml")
    assert untracked["file_dirty"] is True and untracked["dirty"] is False
    _git(repo, "remote", "add", "origin", "https://example.org/lab/zoo.git")
    assert suite_source(suite)["repository"] == "https://example.org/lab/zoo.git"


def test_suite_source_is_about_the_file_even_inside_a_git_hook(tmp_path, monkeypatch):
    repo, other = tmp_path / "lab", tmp_path / "other"
    for folder in (repo, other):
        folder.mkdir()
        (folder / "suite.toml").write_text(f"# {folder.name}\n")
        _git(folder, "init", "-q")
        _git(folder, "add", ".")
        _git(folder, "commit", "-q", "-m", folder.name)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # as git sets it for a hook
    found = suite_source(repo / "suite.toml")
    monkeypatch.delenv("GIT_DIR")
    assert found["repository"] == "lab"
    assert found["commit"] == _git(repo, "rev-parse", "HEAD") != _git(other, "rev-parse", "HEAD")


def test_suite_source_is_none_for_a_shipped_suite_or_a_missing_file(tmp_path):
    from attnprof.suite.config import SUITES_DIR

    assert suite_source(SUITES_DIR / "smoke.toml") is None
    assert suite_source(tmp_path / "absent.toml") is None


# --- provenance --------------------------------------------------------------------------------


def test_provenance_records_the_machine_and_each_variant_source():
    prov = provenance.collect(load_suite("smoke"))
    assert prov.machine == describe_machine()
    assert prov.suite_source is None  # shipped: attnprof's own commit covers it
    assert set(prov.variant_sources) == {"none", "se", "sge"}
    assert all(re.fullmatch(r"[0-9a-f]{16}", v) for v in prov.variant_sources.values())
    assert len(set(prov.variant_sources.values())) == 3  # one file each
    bare = provenance.collect()
    assert bare.suite_source is None and bare.variant_sources is None
    assert provenance.collect(devices=("cpu",)).machine == prov.machine
    if not torch.cuda.is_available():  # the runner's positional device, and no GPU to describe
        assert "gpu" not in provenance.collect(load_suite("smoke"), "cuda").machine


def test_provenance_records_a_user_suite_repository(tmp_path):
    repo = tmp_path / "lab"
    repo.mkdir()
    (repo / "mine.toml").write_text("# a suite\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    suite = replace(load_suite("smoke"), source=str(repo / "mine.toml"))
    prov = provenance.collect(suite)
    assert prov.suite_source["path"] == "mine.toml"
    assert prov.suite_source["commit"] == _git(repo, "rev-parse", "HEAD")
    written = prov.to_dict()
    assert written["suite_source"] == prov.suite_source and written["machine"] == prov.machine
