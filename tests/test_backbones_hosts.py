"""The hosts of the SE, ECA, SK and Coordinate Attention papers: MobileNetV2 and ResNeXt-50.

Exact parameter counts (derived by hand below), heads, where each placement puts its module,
stage numbering, refusals, and the paper-convention MACs of MobileNetV2 against an independent
derivation from the architecture table.
"""

from __future__ import annotations

import pytest
import torch
from support import Recorder
from torch import nn

import attnprof
from attnprof.attention.registry import attention_names, get_attention_spec, unregister_attention
from attnprof.backbones import BACKBONES, build_model
from attnprof.backbones.mobilenet import InvertedResidual, MobileNetV2
from attnprof.backbones.resnet import Bottleneck
from attnprof.counting import count
from attnprof.errors import AttnprofError

MOBILENET_V2 = 3_504_872
RESNEXT50 = 25_028_904

# MobileNetV2's stages (t, c, n, s) and, per block, the output width and the expanded width
# (input width x t; features.1 has t = 1 and no expansion).
MBV2_OUT = [16] + [24] * 2 + [32] * 3 + [64] * 4 + [96] * 3 + [160] * 3 + [320]
# Stages 1-6: 96, 144 | 144, 192, 192 | 192, 384 x3 | 384, 576 x2 | 576, 960 x2 | 960.
MBV2_HIDDEN = [96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960]
MBV2_STAGE = [0] + [1] * 2 + [2] * 3 + [3] * 4 + [4] * 3 + [5] * 3 + [6]
RESNEXT_OUT = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
RESNEXT_MID = [128] * 3 + [256] * 4 + [512] * 6 + [1024] * 3  # planes * 4 / 64 * 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny CPU forwards: one thread avoids oversubscription on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def se_params(c: int) -> int:
    # Linear(C, C//16) + bias, Linear(C//16, C) + bias.
    h = c // 16
    return 2 * c * h + h + c


# ---------------------------------------------------------------------------- parameter counts


def test_new_backbones_are_listed_with_the_resnets():
    assert list(BACKBONES)[:5] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert {"resnext50_32x4d", "mobilenet_v2"} <= set(BACKBONES)


@pytest.mark.parametrize(
    ("backbone", "total"), [("mobilenet_v2", MOBILENET_V2), ("resnext50_32x4d", RESNEXT50)]
)
def test_plain_parameter_counts_equal_torchvision(backbone, total):
    model = build_model(backbone, device="meta")
    assert n_params(model) == total
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.attention_modules() == []


@pytest.mark.parametrize(
    ("backbone", "total"),
    [
        # classifier Linear(1280, 1000): 1280 * 1000 + 1000 = 1,281,000 removed.
        ("mobilenet_v2", MOBILENET_V2 - 1_281_000),  # 2,223,872
        # fc Linear(2048, 1000): 2048 * 1000 + 1000 = 2,049,000 removed.
        ("resnext50_32x4d", RESNEXT50 - 2_049_000),  # 22,979,904
    ],
)
@pytest.mark.parametrize("head", ["pool", "none"])
def test_pool_and_none_heads_drop_only_the_classifier(backbone, total, head):
    assert n_params(build_model(backbone, head=head, device="meta")) == total


def test_mobilenet_state_dict_keys_follow_torchvision():
    keys = set(build_model("mobilenet_v2", device="meta").state_dict())
    expected = {
        "features.0.0.weight",  # stem conv
        "features.0.1.running_var",
        "features.1.conv.0.0.weight",  # t = 1: depthwise first
        "features.1.conv.1.weight",  # projection conv
        "features.1.conv.2.bias",  # projection BN
        "features.2.conv.0.0.weight",  # expand
        "features.2.conv.1.0.weight",  # depthwise
        "features.2.conv.2.weight",  # projection
        "features.17.conv.3.running_mean",
        "features.18.0.weight",  # 1x1 to 1280
        "classifier.1.weight",
        "classifier.1.bias",
    }
    assert expected <= keys
    assert not any("attention" in key for key in keys)


def test_mobilenet_eca_kernel_sizes_and_count():
    model = build_model("mobilenet_v2", "eca", device="meta")
    found = model.attention_modules()
    assert [name for name, _ in found] == [f"features.{i}.attention" for i in range(1, 18)]
    # ECA-Net's MobileNetV2: k = 1 for blocks of at most 96 output channels, 3 above.
    # Blocks: 1 + 2 + 3 + 4 + 3 = 13 blocks of <= 96 channels (k = 1), 3 + 1 = 4 above (k = 3).
    assert [m.kernel_size for _, m in found] == [1] * 13 + [3] * 4
    # One weight per kernel tap: 13 * 1 + 4 * 3 = 25.
    assert n_params(model) == MOBILENET_V2 + 25  # 3,504,897


def test_mobilenet_eca_at_depthwise_uses_the_stage_sizes_on_the_expanded_width():
    model = build_model("mobilenet_v2", "eca", attention_at="depthwise", device="meta")
    found = model.attention_modules()
    assert [m.channels for _, m in found] == MBV2_HIDDEN
    # 16 blocks (no module in features.1): stages 1-4 (2 + 3 + 4 + 3 = 12 blocks) k = 1,
    # stages 5-6 (3 + 1 = 4 blocks) k = 3: 12 + 12 = 24 parameters.
    assert [m.kernel_size for _, m in found] == [1] * 12 + [3] * 4
    assert n_params(model) == MOBILENET_V2 + 24


def test_mobilenet_se_at_both_placements():
    # Projection: C = 16, 24 x2, 32 x3, 64 x4, 96 x3, 160 x3, 320 with h = C // 16:
    #   49 + 2*73 + 3*162 + 4*580 + 3*1254 + 3*3370 + 13140 = 30,013.
    assert sum(se_params(c) for c in MBV2_OUT) == 30_013
    projection = build_model("mobilenet_v2", "se", device="meta")
    assert n_params(projection) == MOBILENET_V2 + 30_013  # 3,534,885
    # Depthwise: C = 96, 144 x2, 192 x3, 384 x4, 576 x3, 960 x3:
    #   1254 + 2*2745 + 3*4812 + 4*18840 + 3*42084 + 3*116220 = 571,452.
    assert sum(se_params(c) for c in MBV2_HIDDEN) == 571_452
    depthwise = build_model("mobilenet_v2", "se", attention_at="depthwise", device="meta")
    assert n_params(depthwise) == MOBILENET_V2 + 571_452  # 4,076,324


def test_mobilenet_bam_after_every_stage_a_stride_2_stage_follows():
    model = build_model("mobilenet_v2", "bam", device="meta")
    found = {name: m.channels for name, m in model.attention_modules()}
    assert found == {
        "stage_attention.1": 16,
        "stage_attention.3": 24,
        "stage_attention.6": 32,
        "stage_attention.13": 96,
    }
    # BAM(C), h = C // 16: 3Ch + C + 18h^2 + 13h + 1 (channel MLP with BN1d, 1x1 reduce + BN,
    # two dilated 3x3 + BN, 1x1 to one map, all with bias): 96 + 128 + 323 + 2551 = 3098.
    assert n_params(model) == MOBILENET_V2 + 3098


def test_resnext_attention_counts():
    # ECA: the ResNet stage sizes 3, 5, 5, 7: 3*3 + 4*5 + 6*5 + 3*7 = 80.
    assert n_params(build_model("resnext50_32x4d", "eca", device="meta")) == RESNEXT50 + 80
    # SE on the block outputs, as on ResNet-50 (28,088,024 - 25,557,032 = 2,530,992).
    assert sum(se_params(c) for c in RESNEXT_OUT) == 2_530_992
    assert n_params(build_model("resnext50_32x4d", "se", device="meta")) == RESNEXT50 + 2_530_992
    # SK replaces the grouped conv2 (9 w^2 / 32) + bn2 (2 w) of each block, w = mid width.
    # SK(w): dense 3x3 9 w^2, grouped-32 3x3 9 w^2 / 32, two BNs 4 w, fuse w^2/16 + w/8 + w^2/8.
    # Extra per block: 147/16 w^2 + 17/8 w; sum w^2 = 5,029,888, sum w = 7552:
    # 147 * 314,368 + 17 * 944 = 46,228,144 (the dense branch: SGE's SK variant, see resnet.py).
    assert sum(w * w for w in RESNEXT_MID) == 5_029_888 and sum(RESNEXT_MID) == 7552
    sk = build_model("resnext50_32x4d", "sk", device="meta")
    assert n_params(sk) == RESNEXT50 + 46_228_144  # 71,257,048
    assert [m.in_channels for _, m in sk.attention_modules()] == RESNEXT_MID
    assert {m.groups for _, m in sk.attention_modules()} == {32}


# ------------------------------------------------------------------------------ heads, shapes


def _on_cpu(model: nn.Module) -> nn.Module:
    """A meta-built model on the CPU with cheap deterministic weights (no kaiming over 25 M
    parameters): small normal weights, BatchNorm at its initial state."""
    model = model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in model.parameters():  # whatever the loop below does not set
            tensor.zero_()
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.reset_parameters()
            elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                module.weight.normal_(0, 0.05, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
    return model


@pytest.mark.parametrize(
    ("backbone", "attention", "options"),
    [
        ("mobilenet_v2", "none", {}),
        ("mobilenet_v2", "eca", {}),
        ("mobilenet_v2", "se", {"attention_at": "depthwise"}),
        ("mobilenet_v2", "bam", {}),
        ("resnext50_32x4d", "none", {}),
        ("resnext50_32x4d", "eca", {}),
    ],
)
def test_heads_on_a_real_cpu_input(backbone, attention, options):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    channels = 1280 if backbone == "mobilenet_v2" else 2048
    expected = {"fc": (1, 10), "pool": (1, channels), "none": (1, channels, 2, 2)}
    for head, shape in expected.items():
        model = build_model(backbone, attention, head, num_classes=10, device="meta", **options)
        assert not model.training
        model = _on_cpu(model)
        with torch.no_grad():
            out = model(x)
        assert out.shape == shape
        assert torch.isfinite(out).all()
        assert (len(model.attention_modules()) > 0) == (attention != "none")


@pytest.mark.parametrize(
    ("head", "shape"), [("fc", (1, 1000)), ("pool", (1, 2048)), ("none", (1, 2048, 7, 7))]
)
def test_resnext_with_sk_heads_on_meta(head, shape):
    model = build_model("resnext50_32x4d", "sk", head, device="meta")
    assert model(torch.empty(1, 3, 224, 224, device="meta")).shape == shape


def test_a_mobilenet_built_on_the_cpu_runs_with_its_own_initialisation():
    model = build_model("mobilenet_v2", "eca", num_classes=10)
    assert next(model.parameters()).device.type == "cpu"
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


# ------------------------------------------------------------------------- placement, stages


class _BackboneAware(Recorder):
    def __init__(self, channels: int, stage: int | None = None, backbone: str | None = None):
        super().__init__(channels, stage)
        self.backbone = backbone


@pytest.fixture
def recorder():
    attnprof.register_attention("test-host-recorder", Recorder, stage_aware=True, replace=True)
    yield "test-host-recorder"
    unregister_attention("test-host-recorder")


def _randomise_bn(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)


def test_projection_placement_sees_the_projection_bn_and_feeds_the_add(recorder):
    model = build_model("mobilenet_v2", recorder, device="meta")
    found = model.attention_modules()
    assert [name for name, _ in found] == [f"features.{i}.attention" for i in range(1, 18)]
    assert [m.channels for _, m in found] == MBV2_OUT
    assert [m.stage for _, m in found] == MBV2_STAGE

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", recorder, num_classes=10)
    _randomise_bn(model)
    block = model.features[3]  # 24 -> 24, stride 1: a residual block
    assert isinstance(block, InvertedResidual) and block.use_res_connect
    captured = {}
    block.conv[-1].register_forward_hook(lambda m, i, o: captured.update(bn=o.clone()))
    block.register_forward_hook(lambda m, i, o: captured.update(x=i[0].clone(), out=o.clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    assert len(block.attention.seen) == 1
    torch.testing.assert_close(block.attention.seen[0], captured["bn"])
    torch.testing.assert_close(captured["out"], captured["x"] + block.attention.returned[0])


def test_depthwise_placement_sees_the_relu6_and_feeds_the_projection(recorder):
    model = build_model("mobilenet_v2", recorder, attention_at="depthwise", device="meta")
    found = model.attention_modules()
    assert [name for name, _ in found] == [f"features.{i}.attention" for i in range(2, 18)]
    assert isinstance(model.features[1].attention, nn.Identity)  # t = 1: no expanded width
    assert [m.channels for _, m in found] == MBV2_HIDDEN
    assert [m.stage for _, m in found] == MBV2_STAGE[1:]

    torch.manual_seed(0)
    model = build_model("mobilenet_v2", recorder, num_classes=10, attention_at="depthwise")
    _randomise_bn(model)
    block = model.features[4]  # 24 -> 32, stride 2, expanded to 144
    captured = {}
    block.conv[1].register_forward_hook(lambda m, i, o: captured.update(dw=o.clone()))
    block.conv[2].register_forward_hook(lambda m, i, o: captured.update(proj_in=i[0].clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    seen = block.attention.seen[0]
    assert seen.shape == (2, 144, 8, 8)  # 64 -> 32 (stem) -> 16 (stage 1) -> 8
    torch.testing.assert_close(seen, captured["dw"])
    assert seen.min() >= 0 and seen.max() <= 6  # after the ReLU6
    torch.testing.assert_close(captured["proj_in"], block.attention.returned[0])


def test_stage_placement_goes_between_the_mobilenet_blocks():
    class Between(Recorder):
        pass

    attnprof.register_attention("test-host-between", Between, placement="stage", replace=True)
    try:
        torch.manual_seed(0)
        model = build_model("mobilenet_v2", "test-host-between", num_classes=10)
        found = model.attention_modules()
        assert [(name, m.channels) for name, m in found] == [
            ("stage_attention.1", 16),
            ("stage_attention.3", 24),
            ("stage_attention.6", 32),
            ("stage_attention.13", 96),
        ]
        captured = {}
        model.features[6].register_forward_hook(lambda m, i, o: captured.update(out=o.clone()))
        model.features[7].register_forward_hook(lambda m, i, o: captured.update(nxt=i[0].clone()))
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
        between = model.stage_attention["6"]
        torch.testing.assert_close(between.seen[0], captured["out"])
        torch.testing.assert_close(captured["nxt"], between.returned[0])
        with pytest.raises(AttnprofError, match="attention_at='depthwise' places 'block'"):
            build_model("mobilenet_v2", "test-host-between", attention_at="depthwise")
    finally:
        unregister_attention("test-host-between")


def test_conv_placement_replaces_resnexts_grouped_conv_and_is_refused_on_mobilenet():
    calls = []

    def fake_sk(in_channels, out_channels, stride=1):
        calls.append((in_channels, out_channels, stride))
        return nn.Conv2d(in_channels, out_channels, 3, stride, 1, groups=32, bias=False)

    attnprof.register_attention("test-host-conv", fake_sk, placement="conv", replace=True)
    try:
        model = build_model("resnext50_32x4d", "test-host-conv", device="meta")
        assert calls[0] == (128, 128, 1) and calls[3] == (256, 256, 2)
        assert [c[0] for c in calls] == RESNEXT_MID
        # Same grouped conv, bn2 gone: 2 * (3*128 + 4*256 + 6*512 + 3*1024) = 2 * 7552.
        assert n_params(model) == RESNEXT50 - 2 * 7552
        assert isinstance(model.layer1[0].bn2, nn.Identity)
        assert len(model.attention_modules()) == 16
        with pytest.raises(AttnprofError) as info:
            build_model("mobilenet_v2", "test-host-conv", device="meta")
        message = str(info.value)
        assert message.startswith("mobilenet_v2 + test-host-conv:")
        assert "depthwise" in message and "resnext50_32x4d" in message
    finally:
        unregister_attention("test-host-conv")


def test_resnext_block_and_stage_places(recorder):
    model = build_model("resnext50_32x4d", recorder, device="meta")
    found = model.attention_modules()
    assert all(name.endswith(".attention") for name, _ in found)
    assert [m.channels for _, m in found] == RESNEXT_OUT
    assert [m.stage for _, m in found] == [0] * 3 + [1] * 4 + [2] * 6 + [3] * 3
    assert isinstance(model.layer2[0], Bottleneck)
    assert model.layer2[0].conv2.groups == 32
    bam = build_model("resnext50_32x4d", "bam", device="meta")
    assert {n: m.channels for n, m in bam.attention_modules()} == {
        "attention1": 256,
        "attention2": 512,
        "attention3": 1024,
    }


def test_backbone_name_reaches_only_factories_that_take_it():
    attnprof.register_attention("test-host-aware", _BackboneAware, stage_aware=True, replace=True)
    attnprof.register_attention("test-host-plain", Recorder, stage_aware=True, replace=True)
    try:
        for backbone in ("mobilenet_v2", "resnext50_32x4d"):
            model = build_model(backbone, "test-host-aware", device="meta")
            assert {m.backbone for _, m in model.attention_modules()} == {backbone}
        # A stage-aware factory without a ``backbone`` parameter gets only ``stage``.
        model = build_model("mobilenet_v2", "test-host-plain", device="meta")
        assert isinstance(model, MobileNetV2) and len(model.attention_modules()) == 17
    finally:
        unregister_attention("test-host-aware")
        unregister_attention("test-host-plain")


# ------------------------------------------------------------------ every module, refusals

# What the built-in modules do with their default options where they do not build.
REFUSED = {
    ("mobilenet_v2", "projection", "sk"): "3x3 convs are depthwise",
    ("mobilenet_v2", "depthwise", "sk"): "3x3 convs are depthwise",
    ("mobilenet_v2", "depthwise", "bam"): "attention_at='depthwise' places 'block' modules",
    # 64 groups do not divide MobileNetV2's widths: the module's own message, with the place.
    ("mobilenet_v2", "projection", "sge"): "at features.1.attention (stage 0, 16 channels): sge:",
    ("mobilenet_v2", "depthwise", "sge"): "at features.2.attention (stage 1, 96 channels): sge:",
    ("mobilenet_v2", "projection", "sa"): "at features.1.attention (stage 0, 16 channels): sa:",
    ("mobilenet_v2", "depthwise", "sa"): "at features.2.attention (stage 1, 96 channels): sa:",
}
HOSTS = [("mobilenet_v2", "projection"), ("mobilenet_v2", "depthwise"), ("resnext50_32x4d", None)]


@pytest.mark.parametrize("name", attention_names())
@pytest.mark.parametrize(("backbone", "at"), HOSTS)
def test_every_registered_module_builds_or_is_refused_clearly(backbone, at, name):
    options = {} if at is None else {"attention_at": at}
    spec = get_attention_spec(name)
    try:
        model = build_model(backbone, name, device="meta", **options)
    except AttnprofError as exc:
        message = str(exc)
        assert message.startswith(f"{backbone} + {name}"), message
        assert "\n" not in message
        if (backbone, at, name) in REFUSED:
            assert REFUSED[(backbone, at, name)] in message
        else:
            assert spec.placement == "conv" and backbone == "mobilenet_v2", message
        return
    assert (backbone, at, name) not in REFUSED
    assert (len(model.attention_modules()) > 0) == (spec.placement != "none")


@pytest.mark.parametrize("at", ["projection", "depthwise"])
@pytest.mark.parametrize(("name", "groups"), [("sge", 8), ("sa", 4)])
def test_grouped_modules_build_on_mobilenet_with_groups_that_divide_its_widths(name, groups, at):
    model = build_model("mobilenet_v2", name, device="meta", groups=groups, attention_at=at)
    assert len(model.attention_modules()) == (17 if at == "projection" else 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"backbone": "mobilenet_v2", "attention": "se", "attention_at": "middle"},
            "mobilenet_v2: attention_at must be one of projection, depthwise, got 'middle'",
        ),
        (
            {"backbone": "resnext50_32x4d", "attention": "se", "attention_at": "depthwise"},
            "resnext50_32x4d has no option 'attention_at' (an option of mobilenet_v2)",
        ),
        ({"backbone": "mobilenet_v3"}, "unknown backbone 'mobilenet_v3'; valid backbones: "),
        ({"backbone": "mobilenet_v2", "groups": 4}, "'none' takes no options"),
    ],
)
def test_bad_backbone_options_are_refused(kwargs, message):
    with pytest.raises(AttnprofError) as info:
        build_model(**kwargs, device="meta")
    assert message in str(info.value)


# ------------------------------------------------------------------------ paper-convention MACs


def _mobilenet_v2_paper_macs(size: int) -> int:
    """The paper convention's MACs, derived from MobileNetV2's table rather than the model:
    Conv2d k*k*(Cin/groups)*Cout*H*W, BatchNorm2d 2 and ReLU6 1 per output element, the global
    pool 1 per input element, the Linear in*out; dropout and the residual adds 0."""
    total = 0

    def conv(cin: int, cout: int, k: int, groups: int, hw: int, relu: bool = True) -> None:
        nonlocal total
        elements = cout * hw * hw
        total += k * k * (cin // groups) * elements + 2 * elements + (elements if relu else 0)

    hw = size // 2
    conv(3, 32, 3, 1, hw)
    channels = 32
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for index in range(n):
            hidden = channels * t
            if t != 1:
                conv(channels, hidden, 1, 1, hw)
            hw //= s if index == 0 else 1
            conv(hidden, hidden, 3, hidden, hw)
            conv(hidden, c, 1, 1, hw, relu=False)
            channels = c
    conv(320, 1280, 1, 1, hw)
    return total + 1280 * hw * hw + 1280 * 1000


def test_mobilenet_v2_paper_macs_match_the_table():
    model = build_model("mobilenet_v2", device="meta")
    macs = count(model, (1, 3, 224, 224), "paper")
    assert macs.unit == "MAC"
    # 299,494,272 conv + 1,280,000 linear (the "300 M MAdds") + 13,356,224 BN + 6,105,792 ReLU6
    # + 62,720 pool.
    assert macs.value == _mobilenet_v2_paper_macs(224) == 320_299_008
