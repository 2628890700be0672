"""Backbones: exact parameter counts, heads, placement of attention, meta-device construction."""

from __future__ import annotations

import pytest
import torch
from support import Recorder
from torch import nn

import attnprof
from attnprof.attention.registry import register_attention, unregister_attention
from attnprof.backbones.resnet import BasicBlock, Bottleneck
from attnprof.errors import AttnprofError


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Published torchvision counts (REFERENCE.md).
PLAIN_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.mark.parametrize("backbone", sorted(PLAIN_COUNTS))
def test_plain_parameter_counts_match_published(backbone):
    assert n_params(attnprof.build_model(backbone, device="meta")) == PLAIN_COUNTS[backbone]


def test_pool_head_drops_only_the_fc():
    # fc of ResNet-50: 2048 * 1000 weights + 1000 biases = 2,049,000; 25,557,032 - 2,049,000.
    assert n_params(attnprof.build_model("resnet50", head="pool", device="meta")) == 23_508_032


@pytest.mark.parametrize(
    ("head", "shape"), [("fc", (2, 1000)), ("pool", (2, 2048)), ("none", (2, 2048, 7, 7))]
)
def test_heads_return_logits_pooled_features_or_feature_map(head, shape):
    model = attnprof.build_model("resnet50", head=head, device="meta")
    assert model(torch.empty(2, 3, 224, 224, device="meta")).shape == shape


def test_detection_shape_on_meta_without_memory():
    model = attnprof.build_model("resnet101", head="none", device="meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    out = model(torch.empty(1, 3, 800, 1333, device="meta"))
    # 800 / 32 = 25, ceil(1333 / 32) = 42 after the stride-2 convs' padding.
    assert out.shape == (1, 2048, 25, 42)


def test_model_is_returned_in_eval_mode_and_runs_on_cpu():
    model = attnprof.build_model("resnet18", num_classes=10)
    assert not model.training
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.fixture
def recorder_name():
    register_attention("test-recorder", Recorder)
    yield "test-recorder"
    unregister_attention("test-recorder")


@pytest.mark.parametrize(("backbone", "last_bn"), [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_block_attention_sees_last_bn_and_feeds_the_add(backbone, last_bn, recorder_name):
    torch.manual_seed(0)
    model = attnprof.build_model(backbone, recorder_name, num_classes=10)
    # Non-trivial BN statistics so that the BN output differs from its input.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    block = model.layer2[0]  # a block with a projection shortcut
    assert isinstance(block, BasicBlock if backbone == "resnet18" else Bottleneck)
    captured = {}
    getattr(block, last_bn).register_forward_hook(lambda m, i, o: captured.update(bn=o.clone()))
    block.register_forward_hook(lambda m, i, o: captured.update(x=i[0].clone(), out=o.clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    recorder = block.attention
    assert len(recorder.seen) == 1
    torch.testing.assert_close(recorder.seen[0], captured["bn"])
    shortcut = block.downsample(captured["x"])
    torch.testing.assert_close(captured["out"], torch.relu(recorder.returned[0] + shortcut))


def test_every_block_gets_one_block_module(recorder_name):
    model = attnprof.build_model("resnet50", recorder_name, device="meta")
    names = [name for name, _ in model.attention_modules()]
    assert len(names) == 3 + 4 + 6 + 3
    assert all(name.endswith(".attention") for name in names)
    channels = [m.channels for _, m in model.attention_modules()]
    assert channels == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


def test_stage_placement_goes_between_stages_1_to_3():
    class Between(Recorder):
        attnprof_placement = "stage"

    register_attention("test-between", Between, placement="stage")
    try:
        model = attnprof.build_model("resnet50", "test-between", device="meta")
        found = {name: m.channels for name, m in model.attention_modules()}
        assert found == {"attention1": 256, "attention2": 512, "attention3": 1024}
    finally:
        unregister_attention("test-between")


def test_conv_placement_replaces_the_3x3_conv_and_its_bn():
    calls = []

    def fake_sk(in_channels, out_channels, stride=1):
        calls.append((in_channels, out_channels, stride))
        return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)

    register_attention("test-conv", fake_sk, placement="conv")
    try:
        model = attnprof.build_model("resnet50", "test-conv", device="meta")
        # The replaced layers are identical in shape but the BN after the conv is gone:
        # 2 * mid-width parameters per block, sum(blocks * mid) = 3*64+4*128+6*256+3*512 = 3776.
        assert n_params(model) == 25_557_032 - 2 * 3776
        assert calls[0] == (64, 64, 1) and calls[3] == (128, 128, 2)
        assert isinstance(model.layer1[0].bn2, nn.Identity)
        assert len(model.attention_modules()) == 16
    finally:
        unregister_attention("test-conv")


@pytest.mark.parametrize(("backbone", "replaced", "blocks"),
                         [("resnet18", "conv1", 8), ("resnet50", "conv2", 16)])
def test_the_listed_conv_modules_are_the_ones_sk_replaced(backbone, replaced, blocks):
    """A basic block's SK replaces its first conv, a bottleneck's its 3x3 (the second): the
    attention list names those very modules, not the plain conv beside them."""
    from attnprof.attention.sk import SKConv

    model = attnprof.build_model(backbone, "sk", device="meta")
    found = model.attention_modules()
    assert len(found) == blocks
    assert all(name.endswith("." + replaced) and isinstance(module, SKConv)
               for name, module in found), [name for name, _ in found]


def test_options_reach_the_attention_module(recorder_name):
    class WithOption(Recorder):
        def __init__(self, channels, scale=1):
            super().__init__(channels)
            self.scale = scale

    register_attention("test-option", WithOption)
    try:
        model = attnprof.build_model("resnet18", "test-option", scale=3, device="meta")
        assert {m.scale for _, m in model.attention_modules()} == {3}
        with pytest.raises(AttnprofError, match="test-option: invalid options"):
            attnprof.build_model("resnet18", "test-option", colour=3, device="meta")
    finally:
        unregister_attention("test-option")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "resnet51"}, "unknown backbone 'resnet51'; valid backbones: resnet18"),
        (
            {"backbone": "resnet50", "head": "det"},
            "unknown head 'det'; valid heads: fc, pool, none",
        ),
        ({"backbone": "resnet50", "attention": "xyz"}, "unknown attention module 'xyz'"),
        ({"backbone": "resnet50", "groups": 4}, "'none' takes no options"),
    ],
)
def test_bad_input_raises_project_error(kwargs, message):
    with pytest.raises(AttnprofError, match=message):
        attnprof.build_model(**kwargs, device="meta")
