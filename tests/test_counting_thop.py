"""The ``thop`` convention: thop's own figures, unchanged, and nothing left on the model."""

from __future__ import annotations

import copy
import warnings

import pytest
from torch import nn

from attnprof import build_model
from attnprof.attention import attention_names
from attnprof.counting.thop_count import count_thop
from attnprof.counting.tracing import input_like

SHAPE = (1, 3, 64, 64)


def thop_profile():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from thop import profile
    return profile


def needs(attention: str) -> None:
    if attention not in attention_names():
        pytest.skip(f"attention {attention!r} is not registered yet")


def test_equals_thops_own_total():
    needs("se")
    model = build_model("resnet18", "se", device="meta")
    work = copy.deepcopy(model)
    macs, params = thop_profile()(work, inputs=(input_like(work, SHAPE),), verbose=False)
    result = count_thop(model, SHAPE)
    assert result.value == round(macs)
    assert result.reported_params == round(params)
    assert result.unit == "MAC"


def test_leaves_no_buffers_or_hooks_behind():
    needs("sge")
    model = build_model("resnet18", "sge", device="meta")
    buffers = [name for name, _ in model.named_buffers()]
    count_thop(model, SHAPE)
    assert [name for name, _ in model.named_buffers()] == buffers
    for module in model.modules():
        assert "total_ops" not in module._buffers and "total_params" not in module._buffers
        assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize(
    ("attention", "missing"),
    [
        # SGE owns 2 * 64 parameters directly in each of ResNet-18's 8 blocks: 1,024
        ("sge", 1_024),
        # SE's parameters live in Linear layers, which thop sees
        ("se", 0),
    ],
)
def test_reported_params_keep_thops_blind_spot(attention, missing):
    needs(attention)
    model = build_model("resnet18", attention, device="meta")
    params = sum(p.numel() for p in model.parameters())
    assert count_thop(model, SHAPE).reported_params == params - missing


def test_attention_part_and_uncounted():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1, bias=False), nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.Sigmoid())
    ).to("meta")
    result = count_thop(model, (1, 3, 5, 5), attention=["1"])
    # thop: outputs 4*5*5 = 100 * C_in; first conv 100*3 = 300, second (inside) 100*4 = 400
    assert (result.value, result.attention) == (700, 400)
    assert result.uncounted == {"Sigmoid": 1}


def test_relu_and_max_pool_are_thops_zeros():
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)).to("meta")
    result = count_thop(model, (1, 2, 4, 4))
    assert result.value == 0
    assert result.uncounted == {"MaxPool2d": 1, "ReLU": 1}


def test_prints_nothing(capsys):
    count_thop(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sigmoid()).to("meta"), (1, 3, 4, 4))
    assert capsys.readouterr() == ("", "")


def test_falls_back_to_cpu_when_thop_fails_on_meta(monkeypatch):
    from attnprof.counting import thop_count

    real = thop_count._run_thop
    devices = []

    def meta_hostile(model, shape):
        device = next(model.parameters()).device.type
        devices.append(device)
        if device == "meta":
            raise RuntimeError("pretend thop needs real tensors")
        return real(model, shape)

    monkeypatch.setattr(thop_count, "_run_thop", meta_hostile)
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False)).to("meta")
    # 4*5*5 = 100 outputs * 3 = 300
    assert count_thop(model, (1, 3, 5, 5)).value == 300
    assert devices == ["meta", "cpu"]
