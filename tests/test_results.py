"""The results document: the JSON Schema, migration of old files, round trips, golden reports.

The committed results under ``results/`` are the project's published numbers: they must
validate against the schema of the current version and re-render to exactly the reports that
were committed with them. ``tests/data/report_results.json`` stays at ``attnprof-results/1``
on purpose: it is the old file every later version must still read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from attnprof import results
from attnprof.errors import AttnprofError
from attnprof.report import build_report, render_csv, render_markdown

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").glob("*/results.json"))
OLD_FILE = ROOT / "tests" / "data" / "report_results.json"


def _raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(results.json_schema())
    assert results.json_schema()["properties"]["schema"]["const"] == results.SCHEMA


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_results_are_current_and_valid(path):
    data = _raw(path)
    assert data["schema"] == results.SCHEMA
    jsonschema.validate(data, results.json_schema())
    doc = results.load(path)
    assert results.dumps(doc) == path.read_text(encoding="utf-8")  # nothing lost or reordered


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_results_re_render_byte_identical(path):
    report = build_report(results.load(path))
    md = (path.parent / "report.md").read_text(encoding="utf-8")
    # report.md embeds the plots written beside it; without them the rest is the same text
    second = "bytes_vs_latency.png" if (path.parent / "bytes_vs_latency.png").exists() else None
    assert render_markdown(report, plot_file="macs_vs_latency.png", bytes_plot=second) == md
    assert render_csv(report) == (path.parent / "results.csv").read_text(encoding="utf-8")


def test_committed_results_exist():
    assert {p.parent.name for p in COMMITTED} >= {"imagenet", "detection"}


def test_an_old_file_is_migrated_and_reads_the_same():
    old = _raw(OLD_FILE)
    assert old["schema"] == "attnprof-results/1"
    migrated = results.migrate(old, "old")
    assert migrated["schema"] == results.SCHEMA
    assert old["schema"] == "attnprof-results/1"  # the input is left untouched
    jsonschema.validate(migrated, results.json_schema())
    first = old["cells"][1]["profile"]
    assert migrated["cells"][1]["profile"]["counts"] == first["flops"]
    assert "flops" not in migrated["cells"][1]["profile"]
    doc = results.load(OLD_FILE)
    assert doc.cells[1].profile.counts["paper"].value == first["flops"]["paper"]["value"]
    # written back, it is a current file with the same content
    again = results.parse(json.loads(results.dumps(doc)), "again")
    assert again == doc


def test_a_newer_version_is_refused_with_a_hint():
    data = _raw(OLD_FILE) | {"schema": "attnprof-results/99"}
    with pytest.raises(AttnprofError, match="written by a newer attnprof: upgrade"):
        results.parse(data, "future.json")


def test_fields_a_newer_writer_added_survive_a_round_trip():
    data = results.migrate(_raw(OLD_FILE), "x")
    data["provenance"]["cpu_flags"] = ["avx2"]
    data["cells"][1]["latency"][0]["energy_j"] = 1.5
    doc = results.parse(data, "x")
    written = doc.to_dict()
    assert written["provenance"]["cpu_flags"] == ["avx2"]
    assert written["cells"][1]["latency"][0]["energy_j"] == 1.5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["cells"].append(copy.deepcopy(d["cells"][0])), "a second cell with this id"),
        (lambda d: d["cells"][1].update(variant="none"),
         "a second cell for resnet18/fc@224x224/none"),
        (lambda d: d["cells"][0]["latency"].append(copy.deepcopy(d["cells"][0]["latency"][0])),
         "a second timing for this machine, device, batch, pass and mode"),
        (lambda d: d["cells"][0]["profile"]["flops"]["paper"].update(value=-1),
         "counts.paper.value: found -1, expected at least 0"),
        (lambda d: d["cells"][0]["profile"]["flops"]["paper"].update(unit="GMAC"),
         "found 'GMAC', expected one of 'MAC', 'FLOP'"),
        (lambda d: d.pop("suite"), "top level: lacks 'suite'"),
        (lambda d: d["cells"][5].update(error=None), "cells[5] ('resnet50|sge|fc@224x224').error"),
    ],
)
def test_one_line_names_the_place_and_the_problem(edit, message):
    data = _raw(OLD_FILE)
    edit(data)
    with pytest.raises(AttnprofError) as info:
        results.parse(data, "bad.json")
    text = str(info.value)
    assert message in text and "'bad.json'" in text and "\n" not in text
