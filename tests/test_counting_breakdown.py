"""Where a count sits: per-module and per-operator breakdowns under every convention."""

from __future__ import annotations

import csv
import io
import json

import pytest

from attnprof import profile
from attnprof.cli import main
from attnprof.counting.breakdown import by_stage, collapse, exclusive, inclusive, tree_order
from attnprof.results.counts import ProfileRecord


@pytest.fixture(scope="module")
def record() -> ProfileRecord:
    return profile("resnet18", "sge", input=64, conventions=["paper", "fvcore", "thop", "full"],
                   breakdown=True, groups=8)


@pytest.mark.parametrize("convention", ["paper", "fvcore", "thop", "full"])
def test_module_and_operator_rows_sum_exactly_to_the_total(record, convention):
    count = record.counts[convention]
    b = count.breakdown
    assert sum(b.by_module.values()) == count.value
    assert sum(b.by_op.values()) == count.value
    assert inclusive(b.by_module)[""] == count.value
    # the attention modules' subtrees, summed per stage, are the convention's attention share
    assert sum(by_stage(b).values()) == count.attention
    assert set(by_stage(b)) == {0, 1, 2, 3}
    if convention == "full":
        assert sum(b.bytes_by_module.values()) == count.bytes
        assert sum(b.bytes_by_op.values()) == count.bytes
        assert b.by_op["aten::convolution"] > 0.9 * count.value


def test_the_conventions_agree_where_they_count_the_same_thing(record):
    """A 3x3 convolution costs the same MACs under paper, fvcore and thop, and twice as many
    FLOPs under full (plus nothing: no bias)."""
    conv = "layer1.0.conv1"
    macs = {name: record.counts[name].breakdown.by_module[conv]
            for name in ("paper", "fvcore", "thop")}
    assert len(set(macs.values())) == 1
    assert record.counts["full"].breakdown.by_module[conv] == 2 * macs["paper"]


def test_breakdown_arithmetic():
    self_counts = {"": 1, "a": 2, "a.x": 3, "a.y": 4, "b.z": 5}
    subtree = inclusive(self_counts)
    assert subtree == {"": 15, "a": 9, "a.x": 3, "a.y": 4, "b": 5, "b.z": 5}
    assert exclusive(subtree) == self_counts
    assert collapse(self_counts, 1) == {"": 15, "a": 9, "b": 5}
    assert tree_order(["b.z", "a.x", "a"]) == ["", "b", "b.z", "a", "a.x"]
    assert tree_order(["b.z", "a.x"], depth=1) == ["", "b", "a"]


def test_records_keep_their_breakdown_through_json(record):
    again = ProfileRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again.counts["full"].breakdown == record.counts["full"].breakdown
    plain = profile("resnet18", "se", input=32, conventions=["paper"])
    assert plain.counts["paper"].breakdown is None
    assert "breakdown" not in plain.to_dict()["counts"]["paper"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tables_csv_and_json(capsys):
    base = ["profile", "--backbone", "resnet18", "--attention", "se", "--input", "64",
            "--conventions", "paper,full"]
    code, out, _ = run_cli(capsys, *base, "--by-module", "--depth", "3", "--by-op")
    assert code == 0
    assert "Per module, to depth 3" in out and "attention ◆" in out
    assert "Attention modules summed per stage" in out and "full: per operator" in out
    code, out, _ = run_cli(capsys, *base, "--by-module", "--by-op", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    for convention in ("paper", "full"):
        modules = [r for r in rows if r["convention"] == convention and r["kind"] == "module"]
        ops = [r for r in rows if r["convention"] == convention and r["kind"] == "op"]
        root = next(r for r in modules if r["name"] == "")
        assert sum(int(r["self"]) for r in modules) == int(root["subtree"])
        assert sum(int(r["self"]) for r in ops) == int(root["subtree"])
        assert any(r["attention"] == "True" and r["stage"] == "0" for r in modules)
    code, out, _ = run_cli(capsys, *base, "--by-op", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data["counts"]["full"]["breakdown"]) >= {"by_module", "by_op", "bytes_by_op"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--depth", "2"], "--depth N needs --by-module"),
        (["--by-module", "--depth", "-1"], "--depth N needs --by-module and N >= 0"),
        (["--csv"], "--csv prints a breakdown"),
        (["--by-op", "--csv", "--json"], "--csv and --json"),
    ],
)
def test_cli_refusals(capsys, extra, message):
    code, _, err = run_cli(capsys, "profile", "--backbone", "resnet18", "--input", "32", *extra)
    assert code == 2 and message in err and "Traceback" not in err
