"""``attnprof compare`` names every difference between the two files' machines: results files
(their provenance's detailed ``machine``, else its summary fields, as older files have) and
pytest-benchmark files (attnprof's ``machine_info["attnprof_machine"]``, else py-cpuinfo's own
record); identical machines give no note, and machine differences never fail a comparison."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from attnprof import results
from attnprof.cli import main
from attnprof.compare import compare, load_pooled, merge_results, to_json
from attnprof.compare.loaders import parse_results
from attnprof.machine import describe_machine

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "detection" / "results.json"


@pytest.fixture(scope="module")
def committed() -> results.ResultsDocument:
    """A results file written before provenance had a detailed machine."""
    doc = results.load(COMMITTED)
    assert doc.provenance.machine is None
    return doc


def _here() -> dict:
    """This machine's description, with the parts the expectations name set to known values."""
    here = copy.deepcopy(describe_machine())
    here["cpu"].update(model="AMD EPYC 7763", isa=["avx", "avx2", "avx512_bf16", "avx512f"])
    here["cpu"]["caches"]["l3"] = 32 << 20
    here["torch_build"]["onednn"] = "3.12.0"
    return here


def _there() -> dict:
    """Another machine: another CPU with other extensions and L3, an older oneDNN, a GPU."""
    there = _here()
    there["cpu"].update(model="Intel(R) Xeon(R) Platinum 8480+",
                        isa=["amx_bf16", "amx_tile", "avx", "avx2", "avx512f"])
    there["cpu"]["caches"]["l3"] = 105 << 20
    there["torch_build"]["onednn"] = "3.5.3"
    there["gpu"] = {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15"}
    return there


# Each line derived from _here() and _there(): 32 << 20 = 33554432, 105 << 20 = 110100480.
EXPECTED = [
    "cpu.caches.l3: 33554432 vs 110100480",
    "cpu.isa: avx512_bf16 only in BASE; amx_bf16, amx_tile only in NEW",
    "cpu.model: AMD EPYC 7763 vs Intel(R) Xeon(R) Platinum 8480+",
    "gpu: only in NEW",
    "torch_build.onednn: 3.12.0 vs 3.5.3",
]


def _write(tmp_path: Path, name: str, doc: results.ResultsDocument, **provenance) -> str:
    path = tmp_path / name
    results.write(path, replace(doc, provenance=replace(doc.provenance, **provenance)))
    return str(path)


def _machine_notes(notes) -> list[str]:
    return [note for note in notes if "machine" in note]


@pytest.fixture(scope="module")
def files(committed, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("machines")
    return {
        "older": str(COMMITTED),
        "here": _write(folder, "here.json", committed, machine=_here()),
        "here_again": _write(folder, "here-again.json", committed, machine=_here()),
        "there": _write(folder, "there.json", committed, machine=_there()),
    }


def test_two_results_files_differing_only_in_their_machine(files):
    done = compare(load_pooled(files["here"]), load_pooled(files["there"]))
    assert list(done.machine_differences) == EXPECTED
    (note,) = _machine_notes(done.notes)
    assert "different machines" in note and "5 differences" in note
    assert not done.failed  # the counts match; machines alone never fail a comparison
    document = json.loads(to_json(done))
    assert document["machine_differences"] == EXPECTED and note in document["notes"]


def test_the_cli_lists_each_difference(capsys, files):
    code = main(["compare", files["here"], files["there"], "--metric", "params,macs"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "machine differences (BASE vs NEW):" in lines
    for expected in EXPECTED:
        assert f"- {expected}" in lines, out


def test_identical_machines_give_no_note(capsys, files):
    done = compare(load_pooled(files["here"]), load_pooled(files["here_again"]))
    assert done.machine_differences == () and not _machine_notes(done.notes)
    assert main(["compare", files["here"], files["here_again"], "--metric", "params"]) == 0
    out = capsys.readouterr().out
    assert "machine differences" not in out and "different machines" not in out


def test_older_files_still_compare_on_their_summary(committed, files, tmp_path):
    older = load_pooled(files["older"])
    same = compare(older, older)
    assert same.machine_differences == () and not _machine_notes(same.notes)
    # one side without a detailed description: the summaries are compared, and agree
    mixed = compare(older, load_pooled(files["here"]))
    assert mixed.machine_differences == () and not mixed.failed
    moved = _write(tmp_path, "moved.json", committed, cpu="Intel Xeon 8370C", python="3.12.3",
                   machine=_here())
    done = compare(older, load_pooled(moved))
    assert list(done.machine_differences) == [
        f"provenance.cpu: {committed.provenance.cpu} vs Intel Xeon 8370C",
        f"provenance.python: {committed.provenance.python} vs 3.12.3",
    ]
    assert len(_machine_notes(done.notes)) == 1


def test_pooled_runs_from_different_machines_say_how(files):
    pooled = merge_results([load_pooled(files["here"]), load_pooled(files["there"])])
    (note,) = pooled.notes
    assert f"the pooled files {files['here']} and {files['there']} come from different" in note
    assert "cpu.model: AMD EPYC 7763 vs Intel(R) Xeon(R) Platinum 8480+" in note
    assert not merge_results([load_pooled(files["here"]),
                              load_pooled(files["here_again"])]).notes


# --- pytest-benchmark files --------------------------------------------------------------------


def _benchmark_file(machine_info: dict) -> dict:
    return {
        "machine_info": machine_info,
        "commit_info": {"id": "0123456789abcdef"},
        "benchmarks": [{"name": "test_se", "fullname": "tests/b.py::test_se",
                        "stats": {"median": 0.002, "data": [0.002, 0.0021, 0.0019]},
                        "extra_info": {"params": 10}}],
        "datetime": "2026-01-01T00:00:00+00:00",
        "version": "5.1.0",
    }


CPUINFO = {  # the stable part of what py-cpuinfo records, as pytest-benchmark stores it
    "brand_raw": "AMD EPYC 7763", "vendor_id_raw": "AuthenticAMD", "arch": "X86_64",
    "bits": 64, "count": 2, "family": 25, "model": 1, "stepping": 1,
    "flags": ["avx", "avx2", "avx512f", "sse4_2"], "l2_cache_size": 1048576,
    "hz_actual_friendly": "2.4500 GHz", "hz_actual": [2450000000, 0],
}
MACHINE_INFO = {"node": "runner-1", "processor": "x86_64", "machine": "x86_64",
                "python_implementation": "CPython", "python_version": "3.11.7",
                "release": "6.8.0-1019-azure", "system": "Linux", "cpu": CPUINFO}


def _compare_benchmarks(base_info: dict, new_info: dict):
    return compare(parse_results(_benchmark_file(base_info), "base.json"),
                   parse_results(_benchmark_file(new_info), "new.json"), metrics="params")


def test_benchmark_files_compare_attnprof_descriptions():
    base = {**MACHINE_INFO, "torch": "2.13.0", "gpu": None, "attnprof_machine": _here()}
    new = {**MACHINE_INFO, "torch": "2.13.0", "gpu": None, "attnprof_machine": _there()}
    assert list(_compare_benchmarks(base, new).machine_differences) == EXPECTED
    # another runner's host name and clock reading are not differences of the machine
    again = {**base, "node": "runner-7", "cpu": {**CPUINFO, "hz_actual": [3100000000, 0]}}
    same = _compare_benchmarks(base, again)
    assert same.machine_differences == () and not _machine_notes(same.notes)


def test_benchmark_files_without_attnprof_compare_what_pytest_benchmark_records():
    other_cpu = {**CPUINFO, "brand_raw": "Intel(R) Xeon(R) Platinum 8370C",
                 "flags": ["avx", "avx2", "avx512f", "avx512_vnni", "sse4_2"],
                 "l2_cache_size": 1310720, "hz_actual": [2800000000, 0]}
    new = {**MACHINE_INFO, "node": "runner-9", "release": "6.5.0-1025-azure", "cpu": other_cpu}
    done = _compare_benchmarks(MACHINE_INFO, new)
    assert list(done.machine_differences) == [
        "machine_info.cpu.brand_raw: AMD EPYC 7763 vs Intel(R) Xeon(R) Platinum 8370C",
        "machine_info.cpu.flags: avx512_vnni only in NEW",
        "machine_info.cpu.l2_cache_size: 1048576 vs 1310720",
        "machine_info.release: 6.8.0-1019-azure vs 6.5.0-1025-azure",
    ]
    assert len(_machine_notes(done.notes)) == 1
    # a field one file does not record is unknown there, not a difference
    bare = {key: value for key, value in MACHINE_INFO.items() if key != "release"}
    assert _compare_benchmarks(MACHINE_INFO, bare).machine_differences == ()
