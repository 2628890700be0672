"""Modules named by import path, written in the constructor shapes found in public code.

attnprof checks their constructor with ``inspect.signature`` instead of assuming
``Cls(channels, **options)``: channels go only to a channel parameter (or the one named by
``channels_arg``), ``same_channels`` fills further parameters with the channel count, unknown
options and unfilled required parameters are refused before building, ``stage`` reaches a
module with an explicit ``stage`` parameter, and a constructor's own exception becomes one line.
Everything is built on the meta device, so the tests are fast.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
from support import import_source

import attnprof
from attnprof.cli import main
from attnprof.errors import AttnprofError

HELPERS = "tests_user_modules_helpers"

HELPER_SOURCE = '''
import torch
from torch import nn


class SGE(nn.Module):
    """SpatialGroupEnhance as published: the constructor takes only ``groups``."""

    def __init__(self, groups=64):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))

    def forward(self, x):
        return x


class Triplet(nn.Module):
    """TripletAttention's shape: the first parameter is a flag, not the channels."""

    def __init__(self, no_spatial=False):
        super().__init__()
        self.no_spatial = no_spatial

    def forward(self, x):
        return x


class InpOup(nn.Module):
    """An ``(inp, oup)`` constructor: two bias-free 1x1 convs inp -> inp // r -> oup."""

    def __init__(self, inp, oup, reduction=16):
        super().__init__()
        self.reduce = nn.Conv2d(inp, inp // reduction, 1, bias=False)
        self.expand = nn.Conv2d(inp // reduction, oup, 1, bias=False)

    def forward(self, x):
        return x * torch.sigmoid(self.expand(self.reduce(x.mean((2, 3), keepdim=True))))


class SimAM(nn.Module):
    """Parameter-free: no channel count at all."""

    def __init__(self, e_lambda=1e-4):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        return x


class Boom(nn.Module):
    def __init__(self, channels):
        super().__init__()
        raise ValueError(f"cannot split {channels} channels\\ninto 7 groups")


class StageRecorder(nn.Module):
    seen = []

    def __init__(self, channels, stage=0):
        super().__init__()
        StageRecorder.seen.append((stage, channels))

    def forward(self, x):
        return x


class Plain(nn.Module):
    seen = []

    def __init__(self, channels, **kwargs):
        super().__init__()
        Plain.seen.append(dict(kwargs))

    def forward(self, x):
        return x
'''

RESNET50 = 25_557_032


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture
def helpers(tmp_path, monkeypatch):
    yield from import_source(tmp_path, monkeypatch, HELPERS, HELPER_SOURCE)


def build(cls: str, backbone: str = "resnet50", **options):
    return attnprof.build_model(backbone, f"{HELPERS}:{cls}", device="meta", **options)


def test_groups_only_sge_is_refused_without_channels_arg(helpers):
    with pytest.raises(AttnprofError) as info:
        build("SGE")
    message = str(info.value)
    assert "\n" not in message
    assert "SGE" in message and "'groups'" in message
    assert 'channels_arg="none"' in message and "channels_arg=" in message
    # -o groups=64 no longer collides with a channel count bound to groups by position
    with pytest.raises(AttnprofError, match="cannot tell which parameter"):
        build("SGE", groups=64)


def test_groups_only_sge_builds_with_channels_arg_none(helpers):
    model = build("SGE", channels_arg="none", groups=64)
    # 16 bottleneck blocks x (weight + bias, 64 each) = 2048: the published SGE total
    assert n_params(model) == RESNET50 + 16 * 2 * 64 == 25_559_080
    # the CLI's -o channels_arg=none parses to None: the same
    assert n_params(build("SGE", channels_arg=None, groups=64)) == 25_559_080


def test_first_parameter_that_is_not_channels_is_refused(helpers):
    with pytest.raises(AttnprofError, match="'no_spatial' is not a channel name"):
        build("Triplet")
    with pytest.raises(
        AttnprofError, match=r"channels_arg='channels' is not a parameter.*valid: no_spatial"
    ):
        build("Triplet", channels_arg="channels")  # not one of its parameters
    model = build("Triplet", channels_arg="none")
    block = dict(model.attention_modules())["layer1.0.attention"]
    assert block.no_spatial is False


def test_inp_oup_constructor_needs_same_channels(helpers):
    with pytest.raises(AttnprofError) as info:
        build("InpOup")
    message = str(info.value)
    assert "required parameter 'oup' is not filled" in message
    assert 'same_channels=["oup"]' in message and "layer1.0.attention" in message
    model = build("InpOup", same_channels=["oup"])
    # per block with C output channels and r = 16: C*C/16 + C/16*C = C^2/8, no biases;
    # ResNet-50 blocks: 3 x 256, 4 x 512, 6 x 1024, 3 x 2048 channels:
    # 3*8192 + 4*32768 + 6*131072 + 3*524288 = 24,576 + 131,072 + 786,432 + 1,572,864
    # = 2,514,944
    assert n_params(model) == RESNET50 + 2_514_944 == 28_071_976
    assert n_params(build("InpOup", same_channels="oup")) == 28_071_976  # -o same_channels=oup
    # oup given by hand: a fixed 256-channel output only fits layer1, so it is the user's call
    with pytest.raises(AttnprofError, match="given twice"):
        build("InpOup", same_channels=["oup"], oup=256)
    with pytest.raises(AttnprofError, match=r"'oups', not a parameter.*valid: inp, oup, reduction"):
        build("InpOup", same_channels=["oups"])


def test_options_are_checked_before_building(helpers):
    with pytest.raises(AttnprofError) as info:
        build("InpOup", same_channels=["oup"], ratio=8)
    message = str(info.value)
    assert "\n" not in message
    assert "invalid option 'ratio'" in message and "inp, oup, reduction" in message
    with pytest.raises(AttnprofError, match="'inp' is the channel count"):
        build("InpOup", same_channels=["oup"], inp=64)
    # options that fit reach the module
    assert n_params(build("InpOup", same_channels=["oup"], reduction=8)) == RESNET50 + 2 * 2_514_944


def test_parameter_free_module_with_channels_arg_none(helpers):
    with pytest.raises(AttnprofError, match="'e_lambda' is not a channel name"):
        build("SimAM")
    model = build("SimAM", channels_arg="none", e_lambda=1e-3)
    assert n_params(model) == RESNET50
    assert all(m.e_lambda == 1e-3 for _, m in model.attention_modules())


def test_constructor_exception_is_one_line_with_place_and_channels(helpers):
    with pytest.raises(AttnprofError) as info:
        build("Boom")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        f"resnet50 + {HELPERS}:Boom at layer1.0.attention (stage 0, 256 channels)"
    )
    assert "ValueError: cannot split 256 channels into 7 groups" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_stage_reaches_a_module_that_takes_it(helpers):
    helpers.StageRecorder.seen.clear()
    build("StageRecorder")
    seen = helpers.StageRecorder.seen
    assert sorted({stage for stage, _ in seen}) == [0, 1, 2, 3]
    assert sorted(set(seen)) == [(0, 256), (1, 512), (2, 1024), (3, 2048)]
    # **kwargs alone is not an explicit stage parameter: no stage is passed
    helpers.Plain.seen.clear()
    build("Plain", backbone="resnet18")
    assert helpers.Plain.seen and all(kw == {} for kw in helpers.Plain.seen)


def test_channel_parameter_named_by_channels_arg(helpers, tmp_path):
    (tmp_path / "tests_user_modules_named.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            class Late(nn.Module):
                def __init__(self, reduction=16, gate_channels=None):
                    super().__init__()
                    self.fc = nn.Linear(gate_channels, gate_channels // reduction, bias=False)

                def forward(self, x):
                    return x
            """
        )
    )
    importlib.invalidate_caches()
    path = "tests_user_modules_named:Late"
    try:
        with pytest.raises(AttnprofError, match='channels_arg="gate_channels"'):
            attnprof.build_model("resnet18", path, device="meta")
        model = attnprof.build_model(
            "resnet18", path, device="meta", channels_arg="gate_channels", reduction=16
        )
        # resnet18: 2 blocks each of 64, 128, 256, 512 channels, C*C/16 weights each
        per_width = [64 * 64 // 16, 128 * 128 // 16, 256 * 256 // 16, 512 * 512 // 16]
        plain = n_params(attnprof.build_model("resnet18", device="meta"))
        assert n_params(model) == plain + 2 * sum(per_width)
    finally:
        sys.modules.pop("tests_user_modules_named", None)


def test_console_script_imports_from_the_current_folder(tmp_path, monkeypatch, capsys):
    package = tmp_path / "mymods"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "x.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            class Cls(nn.Module):
                def __init__(self, channels):
                    super().__init__()
                    self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

                def forward(self, x):
                    return x * torch.sigmoid(self.scale)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    cwd_entries = ("", ".", str(tmp_path))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in cwd_entries])
    for name in ("mymods", "mymods.x"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        code = main(
            [
                "profile", "--backbone", "resnet18", "--attention", "mymods.x:Cls",
                "--conventions", "paper", "--input", "64",
            ]
        )  # fmt: skip
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "mymods.x:Cls" in out.out
        assert str(tmp_path) not in sys.path  # put there for the import attempt only
    finally:
        for name in ("mymods", "mymods.x"):
            sys.modules.pop(name, None)
