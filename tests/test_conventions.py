"""Conventions as data: conv-linear, conventions declared in Python and in a suite file, rule
texts, and the one-line errors a bad declaration gets."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import attnprof
from attnprof import build_model
from attnprof.cli import main
from attnprof.counting import CONVENTIONS, count
from attnprof.counting.conventions import BUILT_IN, Convention, check_convention
from attnprof.counting.rule_text import parse_rule
from attnprof.errors import AttnprofError
from attnprof.suite.config import load_suite

SHAPE = (1, 3, 224, 224)


def _conv_linear_by_hand(model: nn.Module, shape) -> int:
    """Multiply-adds of every Conv2d and Linear, written out: shapes from a real forward."""
    outputs: dict[nn.Module, tuple] = {}

    def record(module, args, output):
        outputs[module] = tuple(output.shape)

    hooks = [m.register_forward_hook(record)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(shape))
    for hook in hooks:
        hook.remove()
    total = 0
    for module, out in outputs.items():
        if isinstance(module, nn.Conv2d):
            n, c_out, h, w = out
            k_h, k_w = module.kernel_size
            total += n * c_out * h * w * k_h * k_w * (module.in_channels // module.groups)
        else:
            total += math.prod(out) * module.in_features
    return total


def test_conv_linear_on_mobilenet_v2_is_the_sum_of_its_convs_and_linears():
    model = build_model("mobilenet_v2", "none").eval()
    by_hand = _conv_linear_by_hand(model, SHAPE)
    assert by_hand == 300_774_272  # the MobileNet papers' "300 M MAdds" (300.8 M)
    measured = count(build_model("mobilenet_v2", "none", device="meta"), SHAPE, "conv-linear")
    assert (measured.value, measured.unit) == (by_hand, "MAC")
    # what it leaves out is listed, not hidden: BN, ReLU6, the residual adds
    assert {"BatchNorm2d", "ReLU6", "aten::add"} <= set(measured.uncounted)


def test_every_built_in_rules_convention_is_declared_in_the_public_form():
    for convention in BUILT_IN:
        assert isinstance(convention, Convention) and convention.origin == "built-in"
        assert check_convention(convention) is convention
        assert convention.uses_rules == (convention.name in ("paper", "full", "conv-linear"))
    paper_rules = CONVENTIONS["paper"].tables()[0]
    assert paper_rules["Conv2d"] == "macs + bias" and paper_rules["ReLU"] == "output"


def test_module_rules_and_op_rules_agree_on_the_same_arithmetic():
    """conv-linear by module type equals the same multiply-adds priced per aten op."""
    model = build_model("resnet50", "se", device="meta")
    by_module = count(model, SHAPE, "conv-linear").value
    by_op = Convention("conv-linear-ops", "MAC", "conv and addmm multiply-adds, per op",
                       ops={"aten::convolution": "macs", "aten::addmm": "macs"})
    assert count(model, SHAPE, by_op).value == by_module


def test_a_convention_registered_in_python_counts_like_a_built_in():
    attnprof.register_convention(
        name="paper-sigmoid", unit="MAC", base="paper",
        description="paper, plus one MAC per sigmoid output element",
        modules={"Sigmoid": "output"},
    )
    try:
        model = build_model("resnet50", "se", device="meta")
        paper = count(model, SHAPE, "paper")
        mine = count(model, SHAPE, "paper-sigmoid")
        gates = 3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048  # one sigmoid per channel per block
        assert mine.value == paper.value + gates
        assert mine.attention == paper.attention + gates
        assert "Sigmoid" in paper.uncounted and "Sigmoid" not in mine.uncounted
        record = attnprof.profile("resnet18", "se", input=64, conventions="paper,paper-sigmoid")
        assert record.counts["paper-sigmoid"].description.startswith("paper, plus one MAC")
    finally:
        CONVENTIONS.pop("paper-sigmoid", None)


def test_python_rules_may_be_functions():
    def gelu_like(module, in_numel, out_numel):
        return 7 * out_numel

    convention = Convention("sigmoid-7", "FLOP", "sigmoid at 7 per element",
                            modules={nn.Sigmoid: gelu_like})
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sigmoid())
    found = count(model, (2, 3, 5, 5), convention)
    assert found.value == 7 * 2 * 4 * 25 and found.uncounted == {"Conv2d": 1}


@pytest.mark.parametrize(("declaration", "message"), [
    (dict(name="paper"), "built-in convention's name"),
    (dict(name="Bad Name"), "invalid name"),
    (dict(unit="GFLOP"), "valid units: MAC, FLOP"),
    (dict(description=""), "a description is required"),
    (dict(modules={"Conv2D": "macs"}), "'Conv2D' is not a module type"),
    (dict(ops={"aten::convolve": "macs"}), "'aten::convolve' is not an aten op"),
    (dict(modules={"Conv2d": "2 * macs +"}), "is not a rule; write a sum of terms"),
    (dict(modules={"Conv2d": "macs ** 2"}), "is not a rule"),
    (dict(modules={}), "no rules"),
    (dict(base="fvcore"), "wraps an external counter"),
    (dict(counter="x:y", modules={"Conv2d": "macs"}), "either a counter or rules"),
])
def test_a_bad_declaration_is_one_error_naming_what_is_wrong(declaration, message):
    fields = dict(name="mine", unit="MAC", description="mine", modules={"Conv2d": "macs"})
    with pytest.raises(AttnprofError, match=message):
        attnprof.register_convention(**{**fields, **declaration})
    assert "mine" not in CONVENTIONS


def test_macs_is_refused_where_it_means_nothing():
    convention = Convention("sig-macs", "MAC", "nonsense", modules={"Sigmoid": "macs"})
    with pytest.raises(AttnprofError, match="'macs' is defined for convolution and linear"):
        count(nn.Sequential(nn.Sigmoid()), (1, 2), convention)


def test_rule_texts_parse_into_terms():
    rule = parse_rule("2 * macs + bias + 3", "x")
    assert dict(rule.terms) == {"macs": 2, "bias": 1} and rule.constant == 3
    assert dict(parse_rule("output * 4", "x").terms) == {"output": 4}
    assert parse_rule("0", "x").terms == ()


SUITE = """
[suite]
name = "declared"

[models]
backbones = ["resnet18"]
variants = ["none", "se"]
input = 64

[counting]
conventions = ["paper", "conv-linear", "gates"]

[conventions.gates]
unit = "MAC"
description = "paper, plus one MAC per sigmoid output element and per element-wise product"
summary = "paper with the gates priced"
base = "paper"
modules = { Sigmoid = "output" }
ops = { "aten::mul" = "output" }

[latency]
enabled = false

[claims]
convention = "gates"

[[published]]
backbone = "resnet18"
variant = "none"
params = "11.69 M"
cost = "148.6 M MAC"
convention = "conv-linear"
source = "a made-up table"
"""


def test_a_convention_declared_in_a_suite_file_reaches_results_report_and_compare(
        tmp_path, capsys):
    suite = tmp_path / "declared.toml"
    suite.write_text(SUITE)
    assert "gates" not in CONVENTIONS  # the suite's own: not registered for the process
    loaded = load_suite(suite)
    assert [c.name for c in loaded.declared] == ["gates"]
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["suite"]["declared_conventions"]["gates"]["ops"] == {"aten::mul": "output"}
    cells = {cell["variant"]: cell["profile"]["counts"] for cell in doc["cells"]}
    gates = {variant: counts["gates"]["value"] - counts["paper"]["value"]
             for variant, counts in cells.items()}
    # ResNet-18 SE at 64x64: 8 blocks, a sigmoid and a product per block (64..512 channels)
    channels = 2 * 64 + 2 * 128 + 2 * 256 + 2 * 512
    maps = 2 * 64 * 16 * 16 + 2 * 128 * 8 * 8 + 2 * 256 * 4 * 4 + 2 * 512 * 2 * 2
    assert gates == {"none": 0, "se": channels + maps}
    report = (out / "report.md").read_text()
    assert "- **gates** (MAC): paper with the gates priced (declared in" in report
    assert "Δ MACs (gates)" in report or "(gates)" in report
    csv_header = (out / "results.csv").read_text().splitlines()[0]
    assert "gates_MAC" in csv_header and "conv-linear_MAC" in csv_header
    # 148,557,824 conv + linear multiply-adds print as 148.6 M; paper's 149.2 M does not
    assert ("| resnet18 | none | fc@64x64 | cost | 148.6 MMAC | 148.6 MMAC | -0.03 | "
            "conv-linear | yes | conv-linear | a made-up table |") in report
    capsys.readouterr()
    assert main(["compare", str(out / "results.json"), str(out / "results.json"),
                 "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert "gates" in json.dumps(compared)


def test_a_bad_suite_convention_is_refused_before_anything_runs(tmp_path):
    for old, new, message in [
        ('ops = { "aten::mul" = "output" }', 'ops = { "aten::mul" = "outputs" }',
         "conventions.gates: ops.aten::mul: 'outputs' is not a rule"),
        ('unit = "MAC"\ndescription = "paper, plus',
         'unit = "FLOP"\ndescription = "paper, plus', "a figure in FLOP, the unit of convention "
         "'gates'"),
        ('base = "paper"', 'base = "thop"', "wraps an external counter"),
        ('[conventions.gates]', '[conventions.paper]', "'paper' is already a convention"),
        ('summary = ', 'colour = "red"\nsummary = ', "unknown key 'colour'"),
        ('convention = "conv-linear"', 'convention = "full"', "published.convention"),
        ('cost = "148.6 M MAC"', 'cost = "148.6 M FLOP"', "a figure in MAC"),
        ('cost = "148.6 M MAC"', 'cost = "148.6"', "not a printed figure"),
    ]:
        path = tmp_path / "bad.toml"
        text = SUITE.replace(old, new)
        if "unit of convention 'gates'" in message:
            text = text.replace('convention = "conv-linear"', 'convention = "gates"')
        assert text != SUITE
        path.write_text(text)
        with pytest.raises(AttnprofError, match=message):
            load_suite(path)


def test_resume_counts_again_when_a_declared_convention_changes(tmp_path):
    suite = tmp_path / "declared.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    before = json.loads((out / "results.json").read_text())["cells"]
    suite.write_text(SUITE.replace('ops = { "aten::mul" = "output" }', ""))
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--resume"]) == 0
    after = json.loads((out / "results.json").read_text())["cells"]
    se = [c["profile"]["counts"]["gates"]["value"] for c in (before[1], after[1])]
    maps = 2 * 64 * 16 * 16 + 2 * 128 * 8 * 8 + 2 * 256 * 4 * 4 + 2 * 512 * 2 * 2
    assert se[0] - se[1] == maps  # the products are no longer priced: not a stale count


def test_profile_tables_show_bytes_for_any_convention_that_declares_them():
    """Keyed on the declaration (bytes, unit), never on the name ``full``."""
    from rich.console import Console

    from attnprof.counting.render import breakdown_tables, render_profile

    attnprof.register_convention(
        name="moved-mac", unit="MAC", base="conv-linear", bytes=True,
        description="conv-linear's multiply-adds, with the bytes every op moves")
    try:
        tiny = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 1))
        record = attnprof.profile(tiny, input=16, conventions="moved-mac", breakdown=True)
        count = record.counts["moved-mac"]
        assert count.bytes > 0 and count.unit == "MAC"
        console = Console(width=300, record=True)
        console.print(render_profile(record), breakdown_tables(record, 1))
        text = console.export_text()
        assert "Memory traffic, MAC conventions" in text and "Intensity (MAC/B)" in text
        assert f"{count.bytes / 1e6:,.1f}" in text
        assert "moved-mac: bytes moved (MB)" in text
    finally:
        CONVENTIONS.pop("moved-mac", None)
