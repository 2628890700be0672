"""A user's own network: by import path, class or object, with attention in its slots or after
the modules a pattern names; counted like a backbone, crossed with variants in a suite.

The networks are small (a few thousand parameters, 32x32 inputs), so every test is fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from support import import_source
from torch import nn

import attnprof
from attnprof.cli import main
from attnprof.counting import count
from attnprof.errors import AttnprofError

PKG = "tests_user_networks_helpers"

SOURCE = '''
import torch
from torch import nn

import attnprof


class SlotNet(nn.Module):
    """Two stages with an attnprof.AttentionSlot after each block's last BN."""

    def __init__(self, width=16, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.body1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width))
        self.slot1 = attnprof.AttentionSlot(width, stage=0)
        self.body2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1,
                                             bias=False), nn.BatchNorm2d(2 * width))
        self.slot2 = attnprof.AttentionSlot(2 * width, stage=1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.slot1(self.body1(x)))
        x = torch.relu(self.slot2(self.body2(x)))
        return self.fc(x.mean((2, 3)))


def plain_net(width=16):
    """A network whose code cannot be edited: no slots."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10),
    )


def not_a_model():
    return 42



class Broken(nn.Module):
    """Raises in forward, as a module with a wrong reshape would."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return x.view(x.shape[0], 7, -1, 5)
'''

GATE = """
import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))
"""
SOURCE += GATE  # the same module, in the network's file
SHAPE = (1, 3, 32, 32)


@pytest.fixture
def nets(tmp_path, monkeypatch):
    yield from import_source(tmp_path, monkeypatch, PKG, SOURCE)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_import_path_counts_equal_fvcore_and_paper_on_the_same_object(nets):
    from fvcore.nn import FlopCountAnalysis

    model = attnprof.build_model(f"{PKG}:SlotNet", "se", device="cpu")
    record = attnprof.profile(model, "none", input=32, conventions=["paper", "fvcore"])
    fvcore = FlopCountAnalysis(model, torch.zeros(SHAPE))
    fvcore.unsupported_ops_warnings(False)
    fvcore.uncalled_modules_warnings(False)
    assert record.counts["fvcore"].value == fvcore.total()
    assert record.counts["paper"].value == count(model, SHAPE, "paper", attention=[]).value
    assert record.params == n_params(model)
    # ... and by import path, the network built by attnprof counts the same
    by_path = attnprof.profile(f"{PKG}:SlotNet", "se", input=32, conventions=["paper", "fvcore"])
    assert by_path.counts["fvcore"].value == fvcore.total()
    assert by_path.counts["paper"].value == record.counts["paper"].value
    assert by_path.backbone == f"{PKG}:SlotNet" and by_path.head == "model"


def test_slots_are_filled_per_variant_and_the_share_attributed(nets):
    plain = attnprof.profile(f"{PKG}:SlotNet", "none", input=32, conventions="paper")
    se = attnprof.profile(f"{PKG}:SlotNet", "se", input=32, conventions="paper")
    # SE on 16 and 32 channels, reduction 16: (16*1+1 + 1*16+16) + (32*2+2 + 2*32+32)
    assert se.attention_params == 49 + 162
    assert se.params - plain.params == se.attention_params
    assert plain.attention_params == 0
    assert se.counts["paper"].attention > 0
    # attnprof.count on a built network finds what fills its slots by itself
    built = attnprof.build_model(f"{PKG}:SlotNet", "se", device="meta", input_shape=SHAPE)
    assert attnprof.count(built, SHAPE, "paper").attention == se.counts["paper"].attention
    gate = attnprof.profile(f"{PKG}:SlotNet", f"{PKG}:Gate", input=32, conventions="paper")
    assert gate.attention_params == (16 * 16 + 16) + (32 * 32 + 32)


def test_model_options_reach_the_factory_and_bad_ones_are_refused(nets):
    wide = attnprof.profile(f"{PKG}:SlotNet", input=32, conventions="paper",
                            model_options={"width": 32})
    narrow = attnprof.profile(f"{PKG}:SlotNet", input=32, conventions="paper")
    assert wide.params > narrow.params
    with pytest.raises(AttnprofError, match=r"do not fit .*accepted: width, num_classes"):
        attnprof.profile(f"{PKG}:SlotNet", conventions="paper", model_options={"depth": 3})


def test_insert_after_reads_channels_from_a_meta_forward(nets):
    record = attnprof.profile(
        f"{PKG}:plain_net", "eca", input=32, conventions="paper", insert_after="[14]"
    )
    model = attnprof.build_model(
        attnprof.Network(f"{PKG}:plain_net", insert_after="[14]"), "se", input_shape=SHAPE
    )
    slots = [m for m in model.modules() if isinstance(m, attnprof.AttentionSlot)]
    assert [s.channels for s in slots] == [16, 32]
    assert record.attention_params == 3 + 3  # ECA k=3 on 16 and 32 channels (adaptive rule)
    assert record.params == n_params(nets.plain_net()) + 6


def test_a_network_with_nowhere_to_put_attention_is_refused(nets):
    with pytest.raises(AttnprofError, match="nowhere to put 'se'"):
        attnprof.profile(f"{PKG}:plain_net", "se", conventions="paper")
    with pytest.raises(AttnprofError, match="matches no module; module names look like 0, 1"):
        attnprof.profile(f"{PKG}:plain_net", "se", conventions="paper", insert_after="layer*")
    with pytest.raises(AttnprofError, match="returns shape \\[1, 10\\]"):
        attnprof.profile(f"{PKG}:plain_net", "se", conventions="paper", insert_after="8")
    with pytest.raises(AttnprofError, match=r"returned int, not a torch\.nn\.Module"):
        attnprof.profile(f"{PKG}:not_a_model", conventions="paper")
    with pytest.raises(AttnprofError, match="'conv' module"):
        attnprof.profile(f"{PKG}:SlotNet", "sk", conventions="paper")
    with pytest.raises(AttnprofError, match="head 'pool' applies to attnprof's backbones"):
        attnprof.profile(f"{PKG}:SlotNet", "se", head="pool", conventions="paper")


def test_an_object_is_copied_never_changed(nets):
    model = nets.SlotNet()
    before = n_params(model)
    record = attnprof.profile(model, "se", input=32, conventions="paper")
    assert n_params(model) == before and record.params > before
    assert all(slot.module is None for _, slot in attnprof.networks.attention_slots(model))
    with pytest.raises(AttnprofError) as info:
        attnprof.profile(object(), conventions="paper")
    assert "cannot profile a object" in str(info.value)
    assert len(str(info.value)) < 200  # never the repr of a whole model


@pytest.mark.parametrize("network", ["resnet18", f"{PKG}:SlotNet"])
def test_an_exception_in_a_module_forward_is_one_line_with_its_place(nets, network):
    with pytest.raises(AttnprofError) as info:
        attnprof.profile(network, f"{PKG}:Broken", input=32, conventions=["full"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{network} + {PKG}:Broken (input 1x3x32x32): attention module")
    assert "stage 0, " in message and "raised RuntimeError: shape '[1, 7, -1, 5]'" in message
    channels = 64 if network == "resnet18" else 16
    assert f"{channels} channels" in message
    assert isinstance(info.value.__cause__, RuntimeError)  # kept for --debug and results.json


def test_cli_profile_model_routes_options_and_debug_shows_the_cause(nets, capsys):
    assert main(["profile", "--model", f"{PKG}:SlotNet", "--attention", "sge", "-o", "width=32",
                 "-o", "groups=8", "--input", "32", "--conventions", "paper", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backbone"] == f"{PKG}:SlotNet" and data["options"] == {"groups": 8}
    assert data["attention_params"] == 2 * 8 + 2 * 8  # SGE: weight + bias per group, two slots
    assert main(["profile", "--model", f"{PKG}:SlotNet", "--attention", f"{PKG}:Broken",
                 "--input", "32", "--conventions", "paper", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err
    assert err.strip().splitlines()[-1].startswith("attnprof: error: ")
    assert main(["profile", "--backbone", "resnet18", "--insert-after", "x"]) == 2
    assert "--insert-after places attention" in capsys.readouterr().err


SUITE = """
[suite]
name = "mine"

[models]
models = ["{pkg}:SlotNet", {{ model = "{pkg}:plain_net", name = "plain", insert_after = "[14]" }}]
variants = ["none", "se", "eca", {{ name = "sge", options = {{ groups = 4 }} }}]
input = 32

[counting]
conventions = ["paper", "full"]

[latency]
enabled = false
"""


def test_a_suite_crosses_user_networks_with_variants_and_reports_them(nets, tmp_path, capsys):
    suite = tmp_path / "mine.toml"
    suite.write_text(SUITE.format(pkg=PKG))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "results.json").read_text())
    cells = {cell["id"]: cell for cell in doc["cells"]}
    assert len(cells) == 2 * 4
    assert all(cell["status"] == "ok" and cell["fingerprint"] for cell in cells.values())
    se = cells[f"{PKG}:SlotNet|se|model@32x32"]["profile"]
    assert se["attention_params"] == 49 + 162
    assert cells["plain|eca|model@32x32"]["profile"]["attention_params"] == 6
    report = (out / "report.md").read_text()
    assert f"{PKG}:SlotNet" in report and "plain" in report and "model@32x32" in report
    # resumed unchanged: nothing measured again
    capsys.readouterr()
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--resume"]) == 0
    assert "measured again" not in capsys.readouterr().out




def test_resume_measures_again_a_cell_whose_module_changed(tmp_path):
    """In fresh processes, as a user runs it: edit the module, resume, see the new count; the
    cells whose code did not change are kept as they were."""
    (tmp_path / f"{PKG}.py").write_text(SOURCE)
    (tmp_path / "gate_module.py").write_text(GATE)
    suite = tmp_path / "mine.toml"
    suite.write_text(SUITE.format(pkg=PKG).replace(
        '"eca", { name = "sge", options = { groups = 4 } }', '"gate_module:Gate"'))
    run = [sys.executable, "-m", "attnprof", "run", "--suite", str(suite), "--out", "out",
           "--quiet"]
    first = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = {c["id"]: c for c in json.loads((tmp_path / "out/results.json").read_text())["cells"]}
    (tmp_path / "gate_module.py").write_text(GATE.replace("(channels, channels, 1)",
                                                          "(channels, channels, 1, bias=False)"))
    second = subprocess.run([*run, "--resume"], cwd=tmp_path, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    after = {c["id"]: c for c in json.loads((tmp_path / "out/results.json").read_text())["cells"]}
    changed = sorted(key for key in after if "gate_module" in key)
    assert len(changed) == 2
    assert f"measured again {len(changed)} cells" in second.stdout
    for key in changed:
        assert after[key]["fingerprint"] != before[key]["fingerprint"]
        old, new = before[key]["profile"], after[key]["profile"]
        assert new["attention_params"] == old["attention_params"] - (16 + 32)
    for key in set(after) - set(changed):
        assert after[key] == before[key]


def test_suite_refuses_a_bad_model_entry_before_running(nets, tmp_path):
    for text, expected in [
        (SUITE.format(pkg=PKG).replace(f'"{PKG}:SlotNet", ', '"nocolon", '),
         "an import path 'package.module:factory'"),
        (SUITE.format(pkg=PKG).replace('"[14]"', '"zzz"'), "matches no module"),
        (SUITE.format(pkg=PKG).replace('groups = 4', 'groups = 5'),
         "variant 'sge' on " + PKG + ":SlotNet"),
    ]:
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(AttnprofError, match=expected):
            attnprof.suite.config.load_suite(path)


def test_readme_section_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's "Your own module and network": its files written, its commands run (in
    this process, from the folder the files are in, as a user's shell would run them there)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Your own module and network", 1)[1].split("\n## ", 1)[0]
    blocks = __import__("re").findall(r"```(\w+)\n(.*?)```", section, flags=__import__("re").S)
    files = 0
    for lang, body in blocks:
        first = body.splitlines()[0]
        if lang in ("python", "toml") and first.startswith("# ") and "." in first:
            (tmp_path / first[2:].strip()).write_text(body)
            files += 1
    assert files >= 2
    commands = [line for lang, body in blocks if lang == "sh" for line in body.splitlines()
                if line.strip() and not line.startswith("#")]
    assert any("--model" in c for c in commands) and any("run --suite" in c for c in commands)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for command in commands:
        assert command.startswith("attnprof "), command
        args = __import__("shlex").split(command)[1:]
        code = main(args)
        assert code == 0, f"{command}: {capsys.readouterr().err}"
    sys.modules.pop("mynets", None)
    for lang, body in blocks:
        if lang == "python" and not body.startswith("# "):
            done = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], cwd=tmp_path,
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
