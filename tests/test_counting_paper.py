"""The ``paper`` convention: per-rule arithmetic on tiny models, and the published anchors."""

from __future__ import annotations

import pytest
import torch
from support import Fn
from torch import nn

from attnprof import build_model
from attnprof.counting import count
from attnprof.profiling import profile


def paper(module: nn.Module, shape, attention=()):
    return count(module.to("meta").eval(), shape, "paper", attention=list(attention))


@pytest.mark.parametrize(
    ("module", "shape", "expected"),
    [
        # 8*10*10 = 800 outputs, each 3*3*3 = 27 MACs: 21,600
        (nn.Conv2d(3, 8, 3, padding=1, bias=False), (1, 3, 10, 10), 21_600),
        # 21,600 + one add per output for the bias (800): 22,400
        (nn.Conv2d(3, 8, 3, padding=1), (1, 3, 10, 10), 22_400),
        # 2*16*5*5 = 800 outputs, each 3*3*(8/4) = 18 MACs: 14,400
        (nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=False), (2, 8, 10, 10), 14_400),
        # 4 rows * 10 in * 5 out = 200; the bias is not counted
        (nn.Linear(10, 5), (4, 10), 200),
        # 2*4*5*5 = 200 elements * 2 (affine)
        (nn.BatchNorm2d(4), (2, 4, 5, 5), 400),
        # 200 elements * 1 (not affine)
        (nn.BatchNorm2d(4, affine=False), (2, 4, 5, 5), 200),
        # ReLU family: 1 per output element, 200
        (nn.ReLU(inplace=True), (2, 4, 5, 5), 200),
        (nn.ReLU6(), (2, 4, 5, 5), 200),
        (nn.LeakyReLU(), (2, 4, 5, 5), 200),
        # pooling: 1 per input element, 4*8*8 = 256
        (nn.MaxPool2d(2), (1, 4, 8, 8), 256),
        (nn.AvgPool2d(2), (1, 4, 8, 8), 256),
        (nn.AdaptiveAvgPool2d(1), (1, 4, 8, 8), 256),
        (nn.AdaptiveMaxPool2d(1), (1, 4, 8, 8), 256),
        # Upsample: 1 per output element, 2*8*8 = 128
        (nn.Upsample(scale_factor=2), (1, 2, 4, 4), 128),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_counted_modules(module, shape, expected):
    result = paper(module, shape)
    assert result.value == expected
    assert result.unit == "MAC"
    assert result.uncounted == {}


@pytest.mark.parametrize(
    ("module", "shape", "name"),
    [
        (nn.Sigmoid(), (1, 4, 8, 8), "Sigmoid"),
        (nn.Softmax(dim=1), (1, 4, 8, 8), "Softmax"),
        (nn.BatchNorm1d(4), (2, 4), "BatchNorm1d"),
        (nn.LayerNorm(8), (2, 4, 8), "LayerNorm"),
        (nn.GroupNorm(2, 4), (2, 4, 5, 5), "GroupNorm"),
        (nn.Conv1d(1, 1, 3, padding=1, bias=False), (1, 1, 16), "Conv1d"),
    ],
)
def test_zero_by_convention_but_reported(module, shape, name):
    result = paper(module, shape)
    assert result.value == 0
    assert result.uncounted == {name: 1}


def test_functional_calls_count_zero_and_are_reported():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1, bias=False)

        def forward(self, x):
            return x * torch.sigmoid(self.conv(x)) + x

    result = paper(Gate(), (1, 4, 8, 8))
    # only the conv counts: 4*8*8 = 256 outputs * 4 MACs = 1,024
    assert result.value == 1_024
    assert result.uncounted == {"aten::add": 1, "aten::mul": 1, "aten::sigmoid": 1}


def test_leaf_module_without_a_rule_is_reported_by_type():
    result = paper(Fn(lambda x: x * 2), (1, 4))
    assert (result.value, result.uncounted) == (0, {"Fn": 1})


def test_pure_data_movement_is_not_reported():
    result = paper(nn.Sequential(nn.Identity(), nn.Flatten(), nn.Dropout()), (2, 4, 3, 3))
    assert result.value == 0
    assert result.uncounted == {}


def test_module_counted_each_time_it_is_called():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.relu(x))

    # 2 calls * 4*8*8 = 512
    assert paper(Twice(), (1, 4, 8, 8)).value == 512


def test_batch_scales_linearly():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    one = paper(model, (1, 3, 12, 12)).value
    assert paper(model, (3, 3, 12, 12)).value == 3 * one
    # conv 8*10*10*27 = 21,600; BN 2*800 = 1,600; ReLU 800
    assert one == 21_600 + 1_600 + 800


def test_attention_part_is_what_runs_inside_the_named_modules():
    model = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.Sequential(nn.ReLU(), nn.Sigmoid()))
    result = paper(model, (1, 3, 5, 5), attention=["1"])
    # conv 8*5*5*3 = 600 outside; ReLU 200 inside
    assert (result.value, result.attention) == (800, 200)


# ---- anchors of the published tables --------------------------------------------------------


def test_resnet50_anchor_is_exact():
    model = build_model("resnet50", device="meta")
    result = count(model, (1, 3, 224, 224), "paper")
    assert result.value == 4_121_924_096
    # the residual adds are functional: 16 bottlenecks
    assert result.uncounted == {"aten::add": 16}


def test_resnet50_detection_setting_anchor():
    record = profile("resnet50", input=(800, 1333), head="pool", conventions=["paper"])
    assert round(record.counts["paper"].value / 1e9, 3) == 88.032
    assert record.params == 23_508_032  # 23.51 M: the fc (2,049,000) removed


# SGE paper, ResNet-50 at 224: published GMACs of the compared modules.
PUBLISHED_GMAC = [
    ("se", 4.130),
    ("sge", 4.127),
    ("cbam", 4.139),
    ("bam", 4.205),
    ("sk", 4.185),  # pools the branches' sum once, see attnprof/attention/sk.py
]


@pytest.mark.parametrize(("attention", "gmac"), PUBLISHED_GMAC)
def test_published_resnet50_rows(attention, gmac):
    model = build_model("resnet50", attention, device="meta")
    assert round(count(model, (1, 3, 224, 224), "paper").value / 1e9, 3) == gmac
