"""``attnprof run --shard K/N`` and ``attnprof merge``: a suite split across jobs and machines
comes back as one document, and the shards of one machine as the unsharded run's.

Latency runs here are tiny (32x32 inputs, one process of a few short rounds): they check what
goes where, never what a timing says.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attnprof import results
from attnprof.cli import main
from attnprof.errors import AttnprofError
from attnprof.report import build_report, render_markdown
from attnprof.results.merge import merge_documents
from attnprof.suite.config import load_suite
from attnprof.suite.runner import SuiteRunner, cell_id, planned_cells
from attnprof.suite.shard import Shard

SUITE = """
[suite]
name = "tiny"
description = "One backbone at two heads (two groups), three modules, 32x32."

[models]
backbones = ["resnet18"]
variants = ["none", "se", "eca", "gc"]
input = 32
heads = ["fc", "pool"]

[counting]
conventions = ["paper"]

[latency]
attribution = false
probe = false
devices = ["cpu"]
batch_sizes = [1]
processes = 1
rounds = 6
max_warmup_rounds = 1
sample_time = 0.002
threads = 1

[claims]
convention = "paper"
"""


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "tiny.toml"
    path.write_text(SUITE, encoding="utf-8")
    return load_suite(str(path))


class _Done:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(capsys, *argv) -> _Done:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return _Done(code, out, err)


def _run(suite, out: Path, shard: str | None = None, skip_latency: bool = True):
    runner = SuiteRunner(suite, out, skip_latency=skip_latency,
                         shard=Shard.parse(shard) if shard else None)
    runner.run()
    return results.load(out / "results.json")


@pytest.fixture(scope="module")
def timed(suite, tmp_path_factory):
    """The three shards of one machine with latency: every group straddles two shards."""
    root = tmp_path_factory.mktemp("timed")
    return [(str(root / f"s{k}" / "results.json"),
             _run(suite, root / f"s{k}", f"{k}/3", skip_latency=False)) for k in (1, 2, 3)]


@pytest.fixture(scope="module")
def counted(suite, timed, tmp_path_factory):
    """The unsharded counts, and the three shards' counts (the timed shards without their
    timings: what ``--skip-latency`` shards write)."""
    whole = _run(suite, tmp_path_factory.mktemp("counted") / "whole")
    shards = [(path, replace(doc, cells=tuple(replace(c, latency=()) for c in doc.cells),
                             provenance=replace(doc.provenance, machine_limits=())))
              for path, doc in timed]
    return whole, shards


def _without_times(text: str) -> str:
    """A report with its measured numbers and provenance masked: what a second run shares."""
    text = re.sub(r"^- \*\*Measured \(UTC\)\*\*.*$", "", text, flags=re.M)
    return re.sub(r"[-+]?\d+(\.\d+)?", "#", text)


# -- the shares ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a", "1-3", "", "2/"])
def test_bad_shard_is_refused_with_the_valid_form(text):
    with pytest.raises(AttnprofError, match=r"K/N|between 1 and N"):
        Shard.parse(text)


@given(variants=st.lists(st.integers(1, 5), min_size=1, max_size=5), count=st.integers(1, 7))
def test_shards_cover_every_variant_once_and_carry_their_baselines(variants, count):
    # groups of 'none' + n variants each, as a suite plans them
    planned = [(f"b{g}", "s", v == 0, (g, v)) for g, n in enumerate(variants)
               for v in range(n + 1)]
    shares = [Shard(k, count).select(planned) for k in range(1, count + 1)]
    variant_items = [item for share in shares for item in share if item[1] != 0]
    assert sorted(variant_items) == sorted(item for *_, item in planned if item[1] != 0)
    sizes = [sum(1 for item in share if item[1] != 0) for share in shares]
    assert max(sizes) - min(sizes) <= 1  # near-equal shares
    for share in shares:
        groups = {g for g, v in share if v != 0}
        assert {g for g, v in share if v == 0} == groups  # each group's baseline, only those
        assert share == sorted(share)  # in suite order


def test_the_share_depends_on_the_suite_only(suite, tmp_path):
    first = SuiteRunner(suite, tmp_path / "a", skip_latency=True, shard=Shard(2, 3))
    second = SuiteRunner(suite, tmp_path / "b", skip_latency=True, shard=Shard(2, 3))
    assert [cell_id(b, v.name, s) for b, v, s in first.plan_cells()] == \
        [cell_id(b, v.name, s) for b, v, s in second.plan_cells()]
    assert first.provenance.shard == "2/3"


# -- must hold: the merged shards are the unsharded run ---------------------------------------


def test_merged_shards_give_the_same_cells_counts_and_report(counted):
    whole, shards = counted
    merged = merge_documents(list(reversed(shards)))  # the order given does not matter
    assert [c.id for c in merged.cells] == [c.id for c in whole.cells]
    assert [c.to_dict() for c in merged.cells] == [c.to_dict() for c in whole.cells]
    assert merged.machines == ()  # one machine: no labels
    assert [p.split(" ")[0] for p in merged.merged_from] == [p for p, _ in shards]
    report = render_markdown(build_report(merged))
    assert report == render_markdown(build_report(replace(whole, provenance=merged.provenance)))
    assert _without_times(report) == _without_times(render_markdown(build_report(whole)))


def test_merged_timed_shards_have_every_condition_once(suite, timed):
    merged = merge_documents(timed)
    planned = [cell_id(b, v.name, s) for b, v, s in planned_cells(suite)]
    assert [c.id for c in merged.cells] == planned
    for cell in merged.cells:
        assert [e.condition for e in cell.latency] == [("cpu", 1, "inference", "eager")], cell.id
        assert cell.latency[0].ok and cell.latency[0].machine is None
    # a straddling group's baseline was timed in two shards; the lowest shard's is kept
    baseline = next(c for c in merged.cells if c.id == planned[0])
    first_shard = next(c for c in timed[0][1].cells if c.id == planned[0])
    assert baseline.latency == first_shard.latency
    report = build_report(merged)
    assert [k.label for k in report.latency_keys] == ["cpu b1"]
    assert all(claim.latency for claim in report.claims)  # every variant has its verdict


# -- machines kept apart ------------------------------------------------------------------------


def _elsewhere(doc: results.ResultsDocument, cpu: str) -> results.ResultsDocument:
    prov = replace(doc.provenance, cpu=cpu, machine={"cpu": {"model": cpu}})
    return replace(doc, provenance=prov)


def test_two_machines_are_kept_apart_with_a_column_group_each(timed, tmp_path, capsys):
    here = merge_documents(timed)
    there = _elsewhere(here, "Other CPU 9000")
    merged = merge_documents([("here.json", here), ("there.json", there)])
    assert [m.label for m in merged.machines] == ["A", "B"]
    assert merged.machines[1].provenance.cpu == "Other CPU 9000"
    for cell in merged.cells:
        assert sorted(e.machine for e in cell.latency) == ["A", "B"]
        by_machine = {e.machine: e for e in cell.latency}
        assert by_machine["A"].median_ms == by_machine["B"].median_ms  # kept, not averaged
    results.parse(merged.to_dict(), "merged")  # valid, reads back
    report = build_report(merged)
    assert [k.label for k in report.latency_keys] == ["A cpu b1", "B cpu b1"]
    text = render_markdown(report)
    assert "A cpu b1 Δ latency" in text and "B cpu b1 Δ latency" in text
    assert "**B**: Other CPU 9000" in text
    # and compare says the two machines differ
    results.write(tmp_path / "here.json", here)
    results.write(tmp_path / "there.json", there)
    done = run_cli(capsys, "compare", str(tmp_path / "here.json"), str(tmp_path / "there.json"))
    assert "different machines" in done.stdout, done.stdout


def test_a_second_timing_on_the_same_machine_is_refused(timed):
    merged = merge_documents(timed)
    with pytest.raises(AttnprofError, match="timed on the same machine"):
        merge_documents([("a.json", merged), ("b.json", merged)])


def test_different_counts_are_refused(counted):
    _, shards = counted
    path, doc = shards[0]
    cell = doc.cells[1]
    counts = dict(cell.profile.counts)
    counts["paper"] = replace(counts["paper"], value=counts["paper"].value + 1)
    changed = replace(doc, cells=(doc.cells[0], replace(cell, profile=replace(
        cell.profile, counts=counts)), *doc.cells[2:]))
    with pytest.raises(AttnprofError, match="counted differently"):
        merge_documents([(path, doc), ("changed.json", changed)])


def test_different_suites_are_refused(counted, suite):
    _, shards = counted
    path, doc = shards[0]
    other = replace(doc, suite=replace(doc.suite, conventions=("thop",)))
    with pytest.raises(AttnprofError, match="differs in conventions"):
        merge_documents([(path, doc), ("other.json", other)])
    renamed = replace(doc, suite=replace(doc.suite, name="other"))
    with pytest.raises(AttnprofError, match="merge results of one suite"):
        merge_documents([(path, doc), ("other.json", renamed)])


# -- the command line ---------------------------------------------------------------------------


def test_merge_command_writes_one_file_and_refuses_cleanly(counted, tmp_path, capsys):
    _, shards = counted
    paths = [p for p, _ in shards]
    out = tmp_path / "merged" / "results.json"
    done = run_cli(capsys, "merge", *paths, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["schema"] == results.SCHEMA
    report = run_cli(capsys, "report", str(out), "--format", "md")
    assert report.returncode == 0, report.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    refused = run_cli(capsys, "merge", paths[0], str(bad), "-o", str(tmp_path / "never.json"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and str(bad) in refused.stderr
    assert not (tmp_path / "never.json").exists()
    onto_input = run_cli(capsys, "merge", *paths, "-o", paths[0])
    assert onto_input.returncode == 2 and "one of the inputs" in onto_input.stderr


def test_run_shard_flag_and_resume_guard(suite, tmp_path, capsys):
    bad = run_cli(capsys, "run", "--suite", "smoke", "--shard", "3/2", "--skip-latency",
                  "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--shard 3/2" in bad.stderr
    _run(suite, tmp_path / "s", "1/2")
    with pytest.raises(AttnprofError, match="resume with the same --shard"):
        SuiteRunner(suite, tmp_path / "s", skip_latency=True, resume=True, shard=Shard(2, 2))
