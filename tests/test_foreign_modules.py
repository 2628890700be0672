"""Modules written the way public code gets them wrong: each is counted exactly or refused.

Every failure class found by trying public attention modules unchanged, rebuilt here in a few
lines each: a module that returns its gate ((N, C, 1, 1) or (N, 1, H, W)), class logits or
fewer channels; layers kept in a plain Python list; a tensor built in ``forward`` without a
device; a forward that raises a huge message; a module that warns; a softmax over the batch;
SGE on a 1x1 map. Each is either counted exactly, checked against the module built standalone
at every place it fills (or a registered twin, or arithmetic), or refused on one line that names
the cause and the remedy. The host network is tiny (two slots of 8 and 16 channels at 16x16 and
8x8), so every test runs in well under a second.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from support import import_source

import attnprof
from attnprof.cli import main
from attnprof.counting import count
from attnprof.errors import AttnprofError
from attnprof.networks import attention_modules
from attnprof.nonfinite import first_nonfinite
from attnprof.option_values import parse

PKG = "tests_foreign_modules_helpers"
HOST = f"{PKG}:Host"

SOURCE = textwrap.dedent('''
    import warnings

    import torch
    from torch import nn

    import attnprof


    class Host(nn.Module):
        """Two residual blocks, an attention slot before each add (8 and 16 channels)."""

        def __init__(self, width=8):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU())
            self.body1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False),
                                       nn.BatchNorm2d(width))
            self.slot1 = attnprof.AttentionSlot(width, stage=0)
            self.body2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1,
                                                 bias=False), nn.BatchNorm2d(2 * width))
            self.short2 = nn.Conv2d(width, 2 * width, 1, stride=2, bias=False)
            self.slot2 = attnprof.AttentionSlot(2 * width, stage=1)
            self.fc = nn.Linear(2 * width, 10)

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(x + self.slot1(self.body1(x)))
            x = torch.relu(self.short2(x) + self.slot2(self.body2(x)))
            return self.fc(x.mean((2, 3)))


    class ChannelGate(nn.Module):
        """Returns its (N, C, 1, 1) gate instead of the gated map."""

        def __init__(self, channels):
            super().__init__()
            self.fc = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            return torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


    class SpatialGate(nn.Module):
        """Returns its (N, 1, H, W) gate instead of the gated map."""

        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 7, padding=3)

        def forward(self, x):
            return torch.sigmoid(self.conv(x.mean(1, keepdim=True)))


    class Logits(nn.Module):
        """A classifier head: (N, 10) class scores."""

        def __init__(self, channels):
            super().__init__()
            self.fc = nn.Linear(channels, 10)

        def forward(self, x):
            return self.fc(x.mean((2, 3)))


    class Fewer(nn.Module):
        """Reduces the channels and never expands them back."""

        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels // 2, 1)

        def forward(self, x):
            return self.conv(x)


    class ListConv(nn.Module):
        """Three 1x1 convolutions kept in a plain list: not registered."""

        def __init__(self, channels, n=3):
            super().__init__()
            self.convs = [nn.Conv2d(channels, channels, 1) for _ in range(n)]
            self.gate = nn.Parameter(torch.zeros(1, channels, 1, 1))

        def forward(self, x):
            y = x
            for conv in self.convs:
                y = conv(y)
            return x * torch.sigmoid(y + self.gate)


    class ListedConv(ListConv):
        """The same module with its convolutions registered."""

        def __init__(self, channels, n=3):
            super().__init__(channels, n)
            self.convs = nn.ModuleList(self.convs)


    class NoDevice(nn.Module):
        """Builds a tensor in forward without a device: it lands on the CPU."""

        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            return self.conv(x) * torch.linspace(0, 1, x.shape[-1])


    class WithDevice(NoDevice):
        def forward(self, x):
            return self.conv(x) * torch.linspace(0, 1, x.shape[-1], device=x.device)


    class Loud(nn.Module):
        """Raises with a message as long as a tracer's that embeds a weight tensor."""

        def __init__(self, channels):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("weights: " + "0.1234 " * 50_000)


    class Warns(nn.Module):
        """Warns in its constructor (a huge message) and in its forward."""

        def __init__(self, channels):
            super().__init__()
            warnings.warn("constructor: " + "long " * 2_000)
            self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

        def forward(self, x):
            warnings.warn("forward runs")
            return x * self.scale


    class BatchSoftmax(nn.Module):
        """A softmax over the batch: at batch 1 every weight is 1, and log(1 - 1) = -inf."""

        def __init__(self, channels):
            super().__init__()
            self.fc = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            p = torch.softmax(self.fc(x.mean((2, 3), keepdim=True)), dim=0)
            return x * torch.log(1 - p)


    class GroupsOnly(nn.Module):
        """SGE's published constructor: groups only, no channel count."""

        def __init__(self, groups=4):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))

        def forward(self, x):
            return x


    class Kernels(nn.Module):
        """Takes a list of kernel sizes."""

        def __init__(self, channels, kernels=(3,)):
            super().__init__()
            self.kernels = kernels
            self.convs = nn.ModuleList(
                nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels)
                for k in kernels)

        def forward(self, x):
            return x + sum(conv(x) for conv in self.convs)
''')


@pytest.fixture
def mods(tmp_path, monkeypatch):
    yield from import_source(tmp_path, monkeypatch, PKG, SOURCE)


def placements(network, attention: str, shape, **options) -> list[tuple[str, tuple, int | None]]:
    """``(name, input shape, stage)`` of every attention module, from a meta forward."""
    model = attnprof.build_model(network, attention, device="meta", input_shape=shape,
                                 **options)
    seen = []
    handles = [module.register_forward_pre_hook(
        lambda m, args, name=name: seen.append((name, tuple(args[0].shape),
                                                getattr(m, "attnprof_stage", None))))
        for name, module in attention_modules(model)]
    with torch.no_grad():
        model(torch.empty(shape, device="meta"))
    for handle in handles:
        handle.remove()
    return seen


def standalone(attention: str, convention: str, places, **options) -> int:
    """The module built alone at each place, counted alone: the sum over the places."""
    total = 0
    for _, shape, stage in places:
        extra = {"stage": stage} if stage is not None else {}
        module = attnprof.build_attention(attention, shape[1], **options, **extra)
        total += count(module.to("meta"), shape, convention).value
    return total


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) <= 1000, text[:2000]
    return text


# -- refused: a module that does not return its input's shape ---------------------------------


@pytest.mark.parametrize(("module", "output", "remedy"), [
    ("ChannelGate", "1x8x1x1", "a channel gate, not the gated map"),
    ("SpatialGate", "1x1x16x16", "a spatial gate, not the gated map"),
    ("Logits", "1x10", "one vector per image (class scores?)"),
    ("Fewer", "1x4x16x16", "changes the channel count (8 -> 4)"),
])
def test_a_module_that_changes_its_input_shape_is_refused(mods, module, output, remedy):
    with pytest.raises(AttnprofError) as info:
        attnprof.profile(HOST, f"{PKG}:{module}", input=16, conventions="paper")
    message = one_line(info.value)
    assert message.startswith(f"{HOST} + {PKG}:{module} (input 1x3x16x16): attention module "
                              f"slot1.module ({module}, stage 0) returns {output} for its "
                              "input 1x8x16x16")
    assert remedy in message
    if "gate" in remedy:
        assert "return x * gate" in message


def test_a_suite_refuses_a_gate_module_when_it_loads(mods, tmp_path):
    suite = tmp_path / "gate.toml"
    suite.write_text(f'[models]\nbackbones = ["resnet18"]\nvariants = ["none", '
                     f'"{PKG}:ChannelGate"]\ninput = 32\n')
    with pytest.raises(AttnprofError) as info:
        attnprof.suite.config.load_suite(suite)
    message = one_line(info.value)
    assert "attention module layer1.0.attention (ChannelGate, stage 0) returns 1x64x1x1 for " \
           "its input 1x64x8x8" in message and "return x * gate" in message


# -- counted exactly: unregistered layers, a forward that cannot run on meta ------------------


def test_layers_in_a_plain_list_are_counted_under_the_module(mods):
    plain = attnprof.profile(HOST, f"{PKG}:ListConv", input=16,
                             conventions=["paper", "full", "fvcore"])
    listed = attnprof.profile(HOST, f"{PKG}:ListedConv", input=16, conventions=["paper", "full"])
    # per slot of C channels: 3 convs of C*C + C, and the gate's C
    assert plain.attention_params == sum(3 * (c * c + c) + c for c in (8, 16)) == 1056
    assert (plain.params, plain.attention_params) == (listed.params, listed.attention_params)
    for name in ("paper", "full"):
        counted, twin = plain.counts[name], listed.counts[name]
        assert (counted.value, counted.attention) == (twin.value, twin.attention), name
    # fvcore (it could not trace them before): C*C*H*W per conv, no bias, the rest unsupported;
    # 3 x 8*8*256 + 3 x 16*16*64 = 49,152 + 49,152
    assert plain.counts["fvcore"].attention == 98_304
    # paper, by hand: 3 x (C*C*H*W MACs + C*H*W bias) per slot, at 8x16x16 and 16x8x8:
    # 3 x (16,384 + 2,048) + 3 x (16,384 + 1,024) = 55,296 + 52,224
    assert plain.counts["paper"].attention == sum(
        3 * (c * c * hw + c * hw) for c, hw in ((8, 256), (16, 64))) == 107_520
    places = placements(HOST, f"{PKG}:ListedConv", (1, 3, 16, 16))
    assert standalone(f"{PKG}:ListedConv", "full", places) == plain.counts["full"].attention
    (note,) = plain.notes
    assert "6 modules (Conv2d x6) with 1,032 parameters run in slot1.module (and 1 more) " \
           "without being registered" in note and "register them" in note
    with pytest.raises(AttnprofError) as info:  # thop's hooks cannot see them
        attnprof.profile(HOST, f"{PKG}:ListConv", input=16, conventions="thop")
    assert "thop cannot count this model: 6 modules (Conv2d x6)" in one_line(info.value)
    assert "leave thop out of the conventions" in str(info.value)


def test_a_forward_that_cannot_run_on_meta_is_counted_on_the_cpu(mods):
    conventions = ["paper", "full", "thop"]
    cpu = attnprof.profile(HOST, f"{PKG}:NoDevice", input=16, conventions=conventions)
    meta = attnprof.profile(HOST, f"{PKG}:WithDevice", input=16, conventions=conventions)
    for name in conventions:
        assert (cpu.counts[name].value, cpu.counts[name].attention) == \
               (meta.counts[name].value, meta.counts[name].attention), name
    assert cpu.attention_params == meta.attention_params == (8 * 8 + 8) + (16 * 16 + 16)
    places = placements(HOST, f"{PKG}:WithDevice", (1, 3, 16, 16))
    assert standalone(f"{PKG}:WithDevice", "full", places) == cpu.counts["full"].attention
    (note,) = cpu.notes
    assert note.startswith(f"{HOST} + {PKG}:NoDevice: the model was counted on CPU tensors")
    assert "attention module slot1.module (NoDevice" in note and "meta" in note
    assert meta.notes == ()


# -- one line stays one line -------------------------------------------------------------------


def test_a_huge_message_and_warnings_stay_one_line_on_the_command_line(mods, capsys):
    argv = ["profile", "--model", HOST, "--input", "16", "--conventions", "paper"]
    assert main([*argv, "--attention", f"{PKG}:Loud"]) == 2
    out = capsys.readouterr()
    (line,) = out.err.splitlines()
    assert len(line) <= 1000 and "raised RuntimeError: weights: 0.1234" in line
    assert "more characters: --debug shows them" in line and out.out == ""
    assert main([*argv, "--attention", f"{PKG}:Warns", "--json"]) == 0
    out = capsys.readouterr()
    (line,) = out.err.splitlines()  # the module's warnings: one line, not Python's several
    assert len(line) <= 1000 and line.startswith(f"attnprof: warning: {HOST} + {PKG}:Warns: "
                                                 "the profiled code issued")
    assert "first UserWarning at" in line and "constructor: long long" in line
    record = json.loads(out.out)
    assert any(text.startswith("UserWarning: constructor:") and len(text) > 10_000
               for text in record["warnings"])  # whole, where --json and results.json keep it
    assert any(text.startswith("UserWarning: forward runs") for text in record["warnings"])


# -- flagged: outputs that are not finite ------------------------------------------------------


def test_a_softmax_over_the_batch_is_flagged_at_its_module(mods, capsys):
    record = attnprof.profile(HOST, f"{PKG}:BatchSoftmax", input=16, conventions="paper")
    flag = record.nonfinite
    assert (flag.module, flag.attention, flag.inf, flag.input) == \
           ("slot1.module", "slot1.module", True, (1, 3, 16, 16))
    assert record.to_dict()["nonfinite"]["module"] == "slot1.module"
    places = placements(HOST, f"{PKG}:BatchSoftmax", (1, 3, 16, 16))
    assert standalone(f"{PKG}:BatchSoftmax", "paper", places) == record.counts["paper"].attention
    assert main(["profile", "--model", HOST, "--attention", f"{PKG}:BatchSoftmax", "--input",
                 "16", "--conventions", "paper"]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert "the output is not finite on the profiling input (1x3x16x16, standard normal): inf " \
           "from slot1.module (BatchSoftmax, an attention module)" in line


def test_sge_on_a_one_pixel_map_is_flagged():
    """SGE divides by the unbiased standard deviation over the map: one pixel gives NaN."""
    record = attnprof.profile("resnet18", "sge", input=16, conventions="paper", groups=4)
    flag = record.nonfinite
    assert flag.nan and flag.attention == "layer3.0.attention"  # layer3 sees 1x1 at input 16
    assert flag.module.startswith("layer3.0.attention")
    assert any("degrees of freedom" in note for note in record.notes)  # torch's own warning
    # at 64 the last stage sees 2x2 maps: finite
    model = attnprof.build_model("resnet18", "sge", device="cpu", groups=4)
    names = [name for name, _ in attention_modules(model)]
    assert first_nonfinite(model, (1, 3, 64, 64), names) is None
    with pytest.warns(UserWarning, match="degrees of freedom"):
        assert first_nonfinite(model, (1, 3, 16, 16), names) == flag


# -- options: literals, hints where the user is ------------------------------------------------


def test_option_values_read_as_literals(mods, capsys):
    assert [parse(t) for t in ("32", "0.5", "1e-4", "true", "None", "[3,5]", "3,5",
                               "sigmoid", "oup,mid", "stages:0,1", "'7'")] == \
        [32, 0.5, 1e-4, True, None, [3, 5], (3, 5), "sigmoid", "oup,mid", "stages:0,1", "7"]
    with pytest.raises(AttnprofError, match="reads as a set"):
        parse("{1, 2}")
    assert parse("nan") == "nan" and parse("inf") == "inf"  # text, never a non-finite number
    with pytest.raises(AttnprofError, match="not finite"):
        parse("1e999")
    assert main(["profile", "--model", HOST, "--attention", f"{PKG}:Kernels", "-o",
                 "kernels=[3,5]", "--input", "16", "--conventions", "paper", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["options"] == {"kernels": [3, 5]}
    # two depthwise convs with bias per slot: (9 + 1) C and (25 + 1) C
    assert record["attention_params"] == (10 + 26) * (8 + 16)


def test_remedies_speak_the_syntax_of_where_the_user_is(mods, capsys, tmp_path):
    with pytest.raises(AttnprofError) as info:
        attnprof.profile(HOST, f"{PKG}:GroupsOnly", input=16, conventions="paper")
    assert 'channels_arg="none"' in one_line(info.value)  # Python
    assert main(["profile", "--model", HOST, "--attention", f"{PKG}:GroupsOnly",
                 "--conventions", "paper"]) == 2
    err = capsys.readouterr().err
    assert "give -o channels_arg=NAME naming" in err and "or -o channels_arg=none for" in err
    suite = tmp_path / "mine.toml"
    suite.write_text(f'[models]\nmodels = ["{HOST}"]\nvariants = ["none", '
                     f'"{PKG}:GroupsOnly"]\ninput = 16\n')
    with pytest.raises(AttnprofError) as info:  # what `attnprof run` prints
        attnprof.suite.config.load_suite(suite)
    message = one_line(info.value)
    assert message.startswith(f"{suite}: variant '{PKG}:GroupsOnly' on {HOST}: ")
    assert 'give channels_arg = "NAME" naming' in message
    assert 'or channels_arg = "none" for' in message


# -- placement from Python, the command line and suites ----------------------------------------


def test_place_after_chosen_stages_counts_the_module_standalone_there():
    shape = (1, 3, 32, 32)
    record = attnprof.profile("resnet18", "se", input=32, conventions=["paper", "full"],
                              place="stages:0,3")
    places = placements("resnet18", "se", shape, place="stages:0,3")
    assert [(name, s[1:], stage) for name, s, stage in places] == \
        [("attention1", (64, 8, 8), 0), ("attention4", (512, 1, 1), 3)]
    se = {c: sum(p.numel() for p in attnprof.build_attention("se", c).parameters())
          for c in (64, 512)}
    assert record.attention_params == se[64] + se[512]
    for name in ("paper", "full"):
        assert record.counts[name].attention == standalone("se", name, places)
    bam = placements("resnet18", "bam", shape)
    assert placements("resnet18", "bam", shape, place="stages") == bam  # BAM's rule, said
    assert [name for name, _, _ in bam] == ["attention1", "attention2", "attention3"]


def test_place_after_a_pattern_counts_the_module_standalone_there():
    shape = (1, 3, 32, 32)
    record = attnprof.profile("resnet18", "eca", input=32, conventions="paper",
                              place="after:layer*.0.bn1")
    places = placements("resnet18", "eca", shape, place="after:layer*.0.bn1")
    assert [(name, s[1], stage) for name, s, stage in places] == [
        (f"layer{k}.0.bn1.1.module", c, k - 1) for k, c in zip(range(1, 5), (64, 128, 256, 512),
                                                                strict=True)]
    assert record.counts["paper"].attention == standalone("eca", "paper", places)
    assert record.attention_params == 3 + 5 + 5 + 7  # ECA's per-stage kernels, as in blocks


@pytest.mark.parametrize(("place", "expected"), [
    ("stages:4", "place lists stage 4, which resnet18 does not have; its stages: 0, 1, 2, 3"),
    ("after:zzz", "place='after:zzz' matches no module; module names look like conv1"),
    ("after:fc", "'fc' returns shape [1, 1000]; attention follows an (N, C, H, W) feature map"),
    ("sideways", "place='sideways' is invalid; valid: blocks, stages, stages:0,1,2, "
                 "after:PATTERN"),
])
def test_place_is_checked_like_every_other_option(place, expected):
    with pytest.raises(AttnprofError) as info:
        attnprof.build_model("resnet18", "se", device="meta", place=place)
    assert expected in one_line(info.value)


def test_place_refuses_what_it_cannot_place(mods):
    with pytest.raises(AttnprofError, match="'conv' module"):
        attnprof.build_model("resnet18", "sk", device="meta", place="blocks")
    with pytest.raises(AttnprofError) as info:
        attnprof.profile(HOST, "se", conventions="paper", place="stages")
    assert 'place is for attnprof\'s backbones' in one_line(info.value)
    assert 'insert_after="layer*.*.bn2"' in str(info.value)


def test_place_from_the_command_line_and_a_suite(mods, tmp_path, capsys):
    argv = ["profile", "--backbone", "resnet18", "--attention", f"{PKG}:ListedConv",
            "--input", "32", "--conventions", "paper", "--json"]
    assert main([*argv, "-o", "place=stages:3"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["attention_params"] == 3 * (512 * 512 + 512) + 512  # one module, after stage 3
    assert main([*argv, "-o", "place=stages:7"]) == 2
    assert "place lists stage 7" in capsys.readouterr().err
    suite = tmp_path / "placed.toml"
    text = (f'[models]\nbackbones = ["resnet18"]\ninput = 32\nvariants = ["none", '
            f'{{ name = "end", attention = "{PKG}:ListedConv", options = {{ place = "PLACE" }} }}]'
            '\n[counting]\nconventions = ["paper"]\n[latency]\nenabled = false\n')
    suite.write_text(text.replace("PLACE", "after:nothing*"))
    with pytest.raises(AttnprofError) as info:
        attnprof.suite.config.load_suite(suite)
    assert "variant 'end' on resnet18: resnet18 + " in one_line(info.value)
    assert "place='after:nothing*' matches no module" in str(info.value)
    suite.write_text(text.replace("PLACE", "stages:3"))
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    cells = json.loads((tmp_path / "out" / "results.json").read_text())["cells"]
    end = next(cell for cell in cells if cell["variant"] == "end")
    assert end["options"] == {"place": "stages:3"}
    assert end["profile"]["attention_params"] == record["attention_params"]
