"""Records, ``profile()``, its parsers, and the promises every convention keeps: counting does
not change the model and gives the same numbers twice."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnprof import build_model
from attnprof.counting import CONVENTIONS, DEFAULT_CONVENTIONS, ConventionCount, count
from attnprof.errors import AttnprofError
from attnprof.profiling import (
    parse_batch,
    parse_conventions,
    parse_input,
    parse_option,
    parse_option_value,
    profile,
)
from attnprof.results.counts import ProfileRecord


def model_snapshot(model: torch.nn.Module) -> dict:
    """What counting must leave alone: state, buffers, and every hook dict of every module."""
    hooks = {
        (name, attr): len(value)
        for name, module in model.named_modules()
        for attr, value in vars(module).items()
        if "hook" in attr and isinstance(value, dict)
    }
    return {
        "state": list(model.state_dict()),
        "buffers": [(n, tuple(b.shape), b.dtype) for n, b in model.named_buffers()],
        "params": [(n, tuple(p.shape)) for n, p in model.named_parameters()],
        "hooks": hooks,
        "attrs": {name: sorted(vars(m)) for name, m in model.named_modules()},
        "global": (
            len(torch.nn.modules.module._global_forward_hooks),
            len(torch.nn.modules.module._global_forward_pre_hooks),
        ),
        "training": model.training,
    }


@pytest.mark.parametrize("convention", DEFAULT_CONVENTIONS)
def test_counting_leaves_the_model_alone_and_is_deterministic(convention):
    attention = "sge"
    device = "cpu" if CONVENTIONS[convention].needs_real_tensors else "meta"
    model = build_model("resnet18", attention, device=device)
    before = model_snapshot(model)
    weights = {k: v.clone() for k, v in model.state_dict().items()} if device == "cpu" else {}
    shape = (1, 3, 32, 32) if device == "cpu" else (1, 3, 64, 64)
    first = count(model, shape, convention)
    second = count(model, shape, convention)
    assert first == second
    assert model_snapshot(model) == before
    for key, value in weights.items():
        assert torch.equal(model.state_dict()[key], value)
    assert first.convention == convention and first.unit == CONVENTIONS[convention].unit


def test_profile_record_fields_and_round_trip():
    attention = "se"
    record = profile("resnet18", attention, input=64, conventions="paper,thop,full")
    assert record.input == (1, 3, 64, 64)
    assert record.conventions == ["paper", "thop", "full"]
    model = build_model("resnet18", attention, device="meta")
    assert record.params == sum(p.numel() for p in model.parameters())
    inside = {id(p) for _, m in model.attention_modules() for p in m.parameters()}
    assert record.attention_params == sum(
        p.numel() for p in model.parameters() if id(p) in inside
    )
    data = json.loads(json.dumps(record.to_dict()))
    assert set(data) >= {
        "backbone", "attention", "input", "head", "params", "attention_params", "counts",
        "options",
    }
    assert data["counts"]["paper"]["unit"] == "MAC" and data["counts"]["full"]["unit"] == "FLOP"
    assert {"bytes", "attention_bytes"} <= set(data["counts"]["full"])
    assert "reported_params" in data["counts"]["thop"]
    assert ProfileRecord.from_dict(data) == record


def test_batch_multiplies_every_count():
    one = profile("resnet18", input=32, conventions=["paper", "full"])
    two = profile("resnet18", input=32, batch=2, conventions=["paper", "full"])
    assert two.input == (2, 3, 32, 32)
    for name in ("paper", "full"):
        assert two.counts[name].value == 2 * one.counts[name].value
    assert two.counts["full"].bytes > one.counts["full"].bytes


def test_options_reach_the_attention_module():
    record = profile("resnet18", "sge", input=32, conventions=["paper"], groups=32)
    assert record.options == {"groups": 32}
    # 2 * 32 parameters in each of ResNet-18's 8 blocks: 512
    assert record.attention_params == 512


def test_convention_count_derived_figures():
    c = ConventionCount("full", "FLOP", value=3_000, attention=300, bytes=1_000)
    assert (c.giga, c.attention_share, c.intensity) == (3e-6, 0.1, 3.0)
    assert ConventionCount.from_dict(c.to_dict()) == c
    with pytest.raises(AttnprofError):
        ConventionCount("x", "GFLOP", 1, 0)
    with pytest.raises(AttnprofError):
        ProfileRecord.from_dict({"backbone": "resnet18"})


@given(st.integers(1, 5000), st.integers(1, 5000))
def test_parse_input_hxw(height, width):
    assert parse_input(f"{height}x{width}") == (height, width)
    assert parse_input((height, width)) == (height, width)
    assert parse_input(height) == (height, height)


@pytest.mark.parametrize("bad", ["800x", "x800", "0", "-3", "224.0", "abc", "1x2x3", "", True,
                                 (0, 5), (1, 2, 3), 3.5])
def test_parse_input_rejects(bad):
    with pytest.raises(AttnprofError, match="invalid input size"):
        parse_input(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [("32", 32), ("-2", -2), ("0.5", 0.5), ("true", True), ("False", False), ("none", None),
     ("avg", "avg")],
)
def test_parse_option_values(text, value):
    assert parse_option(f"key={text}") == ("key", value)
    assert parse_option_value(text) == value


@pytest.mark.parametrize("bad", ["groups", "=3", "groups=", "3x=1", "input=5"])
def test_parse_option_rejects(bad):
    with pytest.raises(AttnprofError, match="option"):
        parse_option(bad)


def test_parse_conventions_and_batch():
    assert [c.name for c in parse_conventions(None)] == list(DEFAULT_CONVENTIONS)
    assert [c.name for c in parse_conventions("full, paper,full")] == ["full", "paper"]
    with pytest.raises(AttnprofError,
                       match="valid conventions: paper, fvcore, thop, full, conv-linear"):
        parse_conventions("paper,flops")
    with pytest.raises(AttnprofError):
        parse_conventions("")
    assert parse_batch("4") == 4
    for bad in ("0", "-1", "two", 0, True):
        with pytest.raises(AttnprofError, match="batch"):
            parse_batch(bad)
