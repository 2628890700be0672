"""The attention modules against independent restatements of their formulas, and the registry.

Each ``reference_*`` function below recomputes a module's output from its parameters with a
different code path (einsum, explicit loops over groups or channels, convolutions as sums of
shifted maps) in float64, on randomised parameters and several input shapes. Expected parameter
counts are derived by hand from the formulas in REFERENCE.md, with the arithmetic next to them.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnprof.attention import (
    attention_names,
    build_attention,
    get_attention_spec,
    register_attention,
    unregister_attention,
)
from attnprof.attention.bam import BAM
from attnprof.attention.cbam import CBAM
from attnprof.attention.eca import ECA, adaptive_kernel_size
from attnprof.attention.gc import GC
from attnprof.attention.sa import SA
from attnprof.attention.se import SE
from attnprof.attention.sge import SGE
from attnprof.attention.sk import SKConv
from attnprof.errors import AttnprofError

SIGMOID_1 = 1.0 / (1.0 + math.exp(-1.0))


# --------------------------------------------------------------------------- helpers


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Replace every parameter and BN running statistic with random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.3 * torch.randn(buf.shape, generator=gen, dtype=buf.dtype))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=gen, dtype=buf.dtype))
    return module


def prepared(module: nn.Module, seed: int = 0) -> nn.Module:
    """float64, random parameters, eval mode (BatchNorm uses its running statistics)."""
    return randomize(module.double(), seed).eval()


def sample(shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def sig(t: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + torch.exp(-t))


def relu(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, t, torch.zeros_like(t))


def conv_same(x: torch.Tensor, weight: torch.Tensor, dilation: int = 1) -> torch.Tensor:
    """Stride-1 'same' convolution (odd square kernel) as a sum of shifted, weighted maps."""
    n, c, h, w = x.shape
    out_c, _, k, _ = weight.shape
    pad = dilation * (k - 1) // 2
    padded = torch.zeros(n, c, h + 2 * pad, w + 2 * pad, dtype=x.dtype)
    padded[:, :, pad : pad + h, pad : pad + w] = x
    out = torch.zeros(n, out_c, h, w, dtype=x.dtype)
    for dy in range(k):
        for dx in range(k):
            window = padded[
                :, :, dy * dilation : dy * dilation + h, dx * dilation : dx * dilation + w
            ]
            out += torch.einsum("oc,nchw->nohw", weight[:, :, dy, dx], window)
    return out


def grouped_conv3x3(x: torch.Tensor, weight: torch.Tensor, stride: int, groups: int):
    """3x3, padding 1, any stride: explicit loop over groups, stride by subsampling."""
    in_per, out_per = x.shape[1] // groups, weight.shape[0] // groups
    parts = [
        conv_same(x[:, g * in_per : (g + 1) * in_per], weight[g * out_per : (g + 1) * out_per])
        for g in range(groups)
    ]
    return torch.cat(parts, dim=1)[:, :, ::stride, ::stride]


def bn_eval(t: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """BatchNorm with running statistics; channel axis 1."""
    shape = [1, -1] + [1] * (t.dim() - 2)
    mean, var = bn.running_mean.reshape(shape), bn.running_var.reshape(shape)
    return (t - mean) / torch.sqrt(var + bn.eps) * bn.weight.reshape(shape) + bn.bias.reshape(shape)


def linear(v: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return torch.einsum("ni,oi->no", v, layer.weight) + layer.bias


def check(module: nn.Module, reference, x: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(module, x))


# --------------------------------------------------------------------------- references


def reference_se(m: SE, x):
    squeezed = x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[3])
    gate = sig(linear(relu(linear(squeezed, m.fc1)), m.fc2))
    return x * gate[:, :, None, None]


def reference_sge(m: SGE, x):
    n, c, h, w = x.shape
    per = c // m.groups
    weight, bias = m.weight.reshape(-1), m.bias.reshape(-1)
    outs = []
    for g in range(m.groups):
        xg = x[:, g * per : (g + 1) * per]
        mean_vector = xg.sum(dim=(2, 3)) / (h * w)
        similarity = torch.einsum("nchw,nc->nhw", xg, mean_vector).reshape(n, h * w)
        mu = similarity.sum(dim=1, keepdim=True) / (h * w)
        std = torch.sqrt(((similarity - mu) ** 2).sum(dim=1, keepdim=True) / (h * w - 1))
        t = weight[g] * (similarity - mu) / (std + 1e-5) + bias[g]
        outs.append(xg * sig(t).reshape(n, 1, h, w))
    return torch.cat(outs, dim=1)


def reference_sa(m: SA, x):
    c = x.shape[1]
    per = c // m.groups
    half = per // 2
    cw, cb = m.cweight.reshape(-1), m.cbias.reshape(-1)
    sw, sb = m.sweight.reshape(-1), m.sbias.reshape(-1)
    before = torch.empty_like(x)
    for ch in range(c):
        j = ch % per  # position inside its group
        xc = x[:, ch]
        if j < half:  # channel-attention half
            pooled = xc.mean(dim=(1, 2))
            gate = sig(cw[j] * pooled + cb[j])[:, None, None]
        else:  # spatial-attention half: GroupNorm with one channel per group
            k = j - half
            mu = xc.mean(dim=(1, 2), keepdim=True)
            var = ((xc - mu) ** 2).mean(dim=(1, 2), keepdim=True)
            normed = (xc - mu) / torch.sqrt(var + m.norm.eps) * m.norm.weight[k] + m.norm.bias[k]
            gate = sig(sw[k] * normed + sb[k])
        before[:, ch] = xc * gate
    # Channel shuffle, 2 groups: output channel 2i + k is channel k * C/2 + i.
    out = torch.empty_like(before)
    for i in range(c // 2):
        for k in range(2):
            out[:, 2 * i + k] = before[:, k * (c // 2) + i]
    return out


def reference_cbam(m: CBAM, x):
    def mlp(v):
        return linear(relu(linear(v, m.mlp[0])), m.mlp[2])

    avg = x.mean(dim=(2, 3))
    mx = x.amax(dim=(2, 3))
    x = x * sig(mlp(avg) + mlp(mx))[:, :, None, None]
    descriptor = torch.stack([x.amax(dim=1), x.mean(dim=1)], dim=1)
    spatial = bn_eval(conv_same(descriptor, m.spatial_conv.weight), m.spatial_bn)
    return x * sig(spatial)


def reference_eca(m: ECA, x):
    n, c = x.shape[:2]
    weight = m.conv.weight.reshape(-1)
    k = weight.numel()
    pad = (k - 1) // 2
    pooled = x.mean(dim=(2, 3))
    z = torch.zeros(n, c, dtype=x.dtype)
    for ch in range(c):
        for j in range(k):
            src = ch + j - pad
            if 0 <= src < c:
                z[:, ch] += weight[j] * pooled[:, src]
    return x * sig(z)[:, :, None, None]


def reference_gc(m: GC, x):
    conv1, ln, conv2 = m.transform[0], m.transform[1], m.transform[3]
    logits = torch.einsum("nchw,c->nhw", x, m.mask.weight.reshape(-1)) + m.mask.bias
    e = torch.exp(logits - logits.amax(dim=(1, 2), keepdim=True))
    attention = e / e.sum(dim=(1, 2), keepdim=True)
    context = torch.einsum("nchw,nhw->nc", x, attention)
    hidden = torch.einsum("nc,hc->nh", context, conv1.weight[:, :, 0, 0]) + conv1.bias
    mu = hidden.mean(dim=1, keepdim=True)
    var = ((hidden - mu) ** 2).mean(dim=1, keepdim=True)
    hidden = (hidden - mu) / torch.sqrt(var + ln.eps) * ln.weight.reshape(-1) + ln.bias.reshape(-1)
    added = torch.einsum("nh,ch->nc", relu(hidden), conv2.weight[:, :, 0, 0]) + conv2.bias
    return x + added[:, :, None, None]


def reference_bam(m: BAM, x):
    fc1, bn1, fc2 = m.channel_branch[0], m.channel_branch[1], m.channel_branch[3]
    channel = linear(relu(bn_eval(linear(x.mean(dim=(2, 3)), fc1), bn1)), fc2)
    s = m.spatial_branch
    t = torch.einsum("nchw,oc->nohw", x, s[0].weight[:, :, 0, 0]) + s[0].bias[None, :, None, None]
    t = relu(bn_eval(t, s[1]))
    for conv, bn in ((s[3], s[4]), (s[6], s[7])):
        t = conv_same(t, conv.weight, dilation=m.dilation) + conv.bias[None, :, None, None]
        t = relu(bn_eval(t, bn))
    spatial = torch.einsum("nchw,oc->nohw", t, s[9].weight[:, :, 0, 0]) + s[9].bias
    return x * (1 + sig(channel[:, :, None, None] * spatial))


def reference_sk(m: SKConv, x):
    plain = relu(bn_eval(grouped_conv3x3(x, m.conv_plain.weight, m.stride, 1), m.bn_plain))
    grouped = relu(
        bn_eval(grouped_conv3x3(x, m.conv_grouped.weight, m.stride, m.groups), m.bn_grouped)
    )
    summary = plain.mean(dim=(2, 3)) + grouped.mean(dim=(2, 3))
    z = torch.einsum("np,dp->nd", summary, m.fc_reduce.weight[:, :, 0, 0])
    z = relu(bn_eval(z, m.bn_fuse))
    logits = torch.einsum("nd,od->no", z, m.fc_expand.weight[:, :, 0, 0])
    p = m.out_channels
    a1, a2 = logits[:, :p], logits[:, p:]
    w1 = torch.exp(a1) / (torch.exp(a1) + torch.exp(a2))
    return plain * w1[:, :, None, None] + grouped * (1 - w1)[:, :, None, None]


# --------------------------------------------------------------------------- formula checks

SHAPES = [(2, 5, 7), (1, 4, 4), (3, 3, 2)]  # (N, H, W); channels come from the module


@pytest.mark.parametrize("nhw", SHAPES)
@pytest.mark.parametrize(
    "make",
    [lambda: SE(32), lambda: SE(48, reduction=4), lambda: SE(8, reduction=8)],
    ids=["c32", "c48-r4", "c8-r8"],
)
def test_se_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_se, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", SHAPES)
@pytest.mark.parametrize(
    "make",
    [lambda: SGE(32, groups=4), lambda: SGE(24, groups=8), lambda: SGE(128), lambda: SGE(5, 5)],
    ids=["c32-g4", "c24-g8", "c128-g64", "c5-g5"],
)
def test_sge_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_sge, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", [*SHAPES, (2, 1, 1)])
@pytest.mark.parametrize(
    "make",
    [lambda: SA(16, groups=2), lambda: SA(24, groups=3), lambda: SA(128), lambda: SA(2, 1)],
    ids=["c16-g2", "c24-g3", "c128-g64", "c2-g1"],
)
def test_sa_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_sa, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", [*SHAPES, (2, 9, 9)])
@pytest.mark.parametrize(
    "make",
    [lambda: CBAM(32), lambda: CBAM(24, reduction=4), lambda: CBAM(16, kernel_size=3)],
    ids=["c32", "c24-r4", "c16-k3"],
)
def test_cbam_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_cbam, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", SHAPES)
@pytest.mark.parametrize(
    "make",
    [
        lambda: ECA(20, kernel_size=3),
        lambda: ECA(64),
        lambda: ECA(33, kernel_size=1),
        lambda: ECA(16, stage=3),
        lambda: ECA(3, kernel_size=9),
    ],
    ids=["c20-k3", "c64-adaptive", "c33-k1", "c16-stage3", "c3-k9"],
)
def test_eca_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_eca, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", [*SHAPES, (2, 1, 1)])
@pytest.mark.parametrize(
    "make",
    [lambda: GC(32), lambda: GC(24, ratio=0.25), lambda: GC(16)],
    ids=["c32", "c24-r0.25", "c16"],
)
def test_gc_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_gc, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", [*SHAPES, (2, 10, 6)])
@pytest.mark.parametrize(
    "make",
    [lambda: BAM(32), lambda: BAM(24, reduction=4, dilation=2), lambda: BAM(16, dilation=1)],
    ids=["c32", "c24-r4-d2", "c16-d1"],
)
def test_bam_matches_formula(make, nhw):
    m = prepared(make())
    check(m, reference_bam, sample((nhw[0], m.channels, *nhw[1:])))


@pytest.mark.parametrize("nhw", [*SHAPES, (2, 8, 5)])
@pytest.mark.parametrize(
    "make",
    [
        lambda: SKConv(32, 32, groups=4, reduction=4),
        lambda: SKConv(16, 32, stride=2, groups=8, reduction=8),
        lambda: SKConv(64, 64, stride=2),
        lambda: SKConv(12, 6, stride=3, groups=3, reduction=2),
    ],
    ids=["32-32-g4", "16-32-s2-g8", "64-64-s2-default", "12-6-s3-g3"],
)
def test_sk_matches_formula(make, nhw):
    m = prepared(make())
    x = sample((nhw[0], m.in_channels, *nhw[1:]))
    check(m, reference_sk, x)
    assert m(x).shape == (nhw[0], m.out_channels, -(-nhw[1] // m.stride), -(-nhw[2] // m.stride))


def test_training_mode():
    # Without BN (SE, SGE, SA, ECA, GC) train and eval agree; check one BN-free module in train
    # mode and that SK in train mode differs from eval (batch statistics are used).
    m = randomize(SGE(16, groups=4).double()).train()
    check(m, reference_sge, sample((2, 16, 4, 5)))
    sk = randomize(SKConv(16, 16, groups=4, reduction=4).double())
    x = sample((3, 16, 5, 5))
    with torch.no_grad():
        assert not torch.allclose(sk.train()(x), sk.eval()(x))


# --------------------------------------------------------------------------- closed forms at init


@pytest.mark.parametrize("channels,groups", [(64, 64), (32, 4), (12, 3)])
def test_sge_at_init_is_x_times_sigmoid_1(channels, groups):
    # w = 0 and b = 1 make t = 1 everywhere, whatever the normalised map is.
    m = SGE(channels, groups).double()
    x = sample((2, channels, 5, 6))
    torch.testing.assert_close(m(x), x * SIGMOID_1)


@pytest.mark.parametrize("channels,groups", [(128, 64), (16, 2), (12, 3)])
def test_sa_at_init_is_shuffled_x_times_sigmoid_1(channels, groups):
    # cw = sw = 0, cb = sb = 1: both gates are sigmoid(1), so SA only shuffles the channels.
    # With C/2 = m, output channel 2i + k comes from input channel k*m + i:
    # order [0, m, 1, m+1, 2, m+2, ...].
    m = SA(channels, groups).double()
    half = channels // 2
    order = [k * half + i for i in range(half) for k in range(2)]
    assert order[:4] == [0, half, 1, half + 1]
    x = sample((2, channels, 4, 3))
    torch.testing.assert_close(m(x), x[:, order] * SIGMOID_1)


def test_gc_at_init_is_identity():
    # The last transform conv is zero-initialised (weight and bias): x + 0.
    m = GC(64).double()
    assert torch.count_nonzero(m.transform[-1].weight) == 0
    assert torch.count_nonzero(m.transform[-1].bias) == 0
    x = sample((2, 64, 5, 5))
    torch.testing.assert_close(m(x), x)


def test_init_values():
    sge = SGE(64)
    assert torch.all(sge.weight == 0) and torch.all(sge.bias == 1)
    sa = SA(128)
    assert torch.all(sa.cweight == 0) and torch.all(sa.sweight == 0)
    assert torch.all(sa.cbias == 1) and torch.all(sa.sbias == 1)
    assert torch.all(sa.norm.weight == 1) and torch.all(sa.norm.bias == 0)
    assert sa.norm.num_groups == sa.norm.num_channels == 1  # 128 / (2 * 64)


# --------------------------------------------------------------------------- parameter counts


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("c", [256, 512, 1024, 2048])
def test_parameter_counts_per_module(c):
    # SE: Linear(C, C/16) + bias, Linear(C/16, C) + bias = C^2/16 + C/16 + C^2/16 + C
    #     = C^2/8 + C + C/16; C = 256: 8192 + 256 + 16 = 8464.
    assert n_params(SE(c)) == c * c // 8 + c + c // 16
    # SGE: w and b per group = 2G = 128.
    assert n_params(SGE(c)) == 2 * 64
    # SA: cw, cb, sw, sb (4 x C/2G) + GroupNorm weight and bias (2 x C/2G) = 3C/G;
    #     C = 256: 3 * 256 / 64 = 12.
    assert n_params(SA(c)) == 3 * c // 64
    # CBAM: the SE-shaped MLP + Conv2d(2, 1, 7x7) 98 + BatchNorm2d(1) 2 = C^2/8 + C + C/16 + 100;
    #     C = 256: 8464 + 100 = 8564.
    assert n_params(CBAM(c)) == c * c // 8 + c + c // 16 + 100
    # GC: mask conv C + 1; Conv2d(C, C/16) + bias C^2/16 + C/16; LayerNorm 2C/16;
    #     Conv2d(C/16, C) + bias C^2/16 + C  =>  C^2/8 + 2C + 3C/16 + 1;
    #     C = 256: 8192 + 512 + 48 + 1 = 8753.
    assert n_params(GC(c)) == c * c // 8 + 2 * c + 3 * c // 16 + 1
    # ECA: k weights, no bias.
    for k in (1, 3, 5, 7):
        assert n_params(ECA(c, kernel_size=k)) == k


def test_parameter_counts_worked_examples():
    assert n_params(SE(256)) == 8464
    assert n_params(SA(256)) == 12
    assert n_params(CBAM(256)) == 8564
    assert n_params(GC(256)) == 8753
    # BAM, C = 256, r = 16 (h = 16): channel 256*16+16 + 2*16 + 16*256+256 = 8496;
    # spatial 256*16+16 + 32 + 2 * (9*16*16 + 16 + 32) + 16+1 = 4112 + 32 + 4704 + 17 = 8865.
    assert n_params(BAM(256)) == 8496 + 8865
    # SK, P = 64: conv 9*64*64 = 36864 + BN 128; grouped conv 9*2*64 = 1152 + BN 128;
    # fc 64*4 = 256, BN 8, fc 4*128 = 512 => 39048 = 9P^2 + 2P (plain) + 15/32 P^2 + 2P + P/8.
    assert n_params(SKConv(64, 64)) == 36864 + 128 + 1152 + 128 + 256 + 8 + 512


RESNET50_PARAMS = 25_557_032
RESNET50_BLOCK_CHANNELS = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
RESNET50_BLOCK_STAGES = [0] * 3 + [1] * 4 + [2] * 6 + [3] * 3
RESNET50_MID_WIDTHS = [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3


def _resnet50_extra(name: str) -> int:
    with torch.device("meta"):
        if name == "bam":
            return sum(n_params(build_attention("bam", c)) for c in (256, 512, 1024))
        if name == "sk":
            # SK replaces conv2 (9 P^2) + bn2 (2 P) of each bottleneck.
            return sum(
                n_params(build_attention("sk", p)) - (9 * p * p + 2 * p)
                for p in RESNET50_MID_WIDTHS
            )
        return sum(
            n_params(build_attention(name, c, stage=s))
            for c, s in zip(RESNET50_BLOCK_CHANNELS, RESNET50_BLOCK_STAGES, strict=True)
        )


@pytest.mark.parametrize(
    "name,total",
    [
        ("se", 28_088_024),
        ("sge", 25_559_080),  # 16 blocks x 128
        ("sa", 25_557_740),  # 3/64 x (3*256 + 4*512 + 6*1024 + 3*2048) = 3/64 x 15104 = 708
        ("cbam", 28_089_624),  # SE + 16 x 100
        ("eca", 25_557_112),  # 3*3 + 4*5 + 6*5 + 3*7 = 80
        ("gc", 28_105_032),
        ("bam", 25_915_099),
        ("sk", 26_154_496),  # sum of 15/32 P^2 + 2P + P/8 = 589440 + 7552 + 472 = 597464
    ],
)
def test_resnet50_totals(name, total):
    assert RESNET50_PARAMS + _resnet50_extra(name) == total


# --------------------------------------------------------------------------- ECA kernel choice


def test_eca_kernel_size_choice():
    # Adaptive rule: t = floor((log2 C + 1) / 2), odd t or t + 1.
    # 256: 4.5 -> 4 -> 5; 512: 5; 1024: 5.5 -> 5; 2048: 6 -> 7; 1: 0.5 -> 0 -> 1.
    assert [adaptive_kernel_size(c) for c in (256, 512, 1024, 2048, 1)] == [5, 5, 5, 7, 1]
    assert [ECA(c).kernel_size for c in (256, 512, 1024, 2048)] == [5, 5, 5, 7]
    # Released ECA-ResNet-50 per stage.
    assert [ECA(256, stage=s).kernel_size for s in range(4)] == [3, 5, 5, 7]
    # An explicit size wins over the stage; "adaptive" forces the rule.
    assert ECA(256, kernel_size=9, stage=0).kernel_size == 9
    assert ECA(2048, kernel_size="adaptive", stage=0).kernel_size == 7
    # Through the registry the backbone passes stage=...
    assert build_attention("eca", 256, stage=3).kernel_size == 7


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"kernel_size": 4}, r"eca: kernel_size must be odd .* got 4; use 3 or 5"),
        ({"kernel_size": 0}, r"eca: kernel_size must be an odd integer >= 1.*got 0"),
        ({"kernel_size": "big"}, r"eca: kernel_size .*'adaptive'.*got 'big'"),
        ({"kernel_size": 3.0}, r"eca: kernel_size .*got 3\.0"),
        ({"stage": 4}, r"eca: stage must be .* 0-3 or None, got 4"),
    ],
)
def test_eca_rejects_bad_options(kwargs, pattern):
    with pytest.raises(AttnprofError, match=pattern):
        ECA(64, **kwargs)


# --------------------------------------------------------------------------- validation messages


def test_sa_error_message_is_exact():
    with pytest.raises(AttnprofError) as info:
        SA(64)
    assert str(info.value) == (
        "sa: channels (64) must be divisible by 2*groups (128); "
        "valid groups for 64 channels: 1, 2, 4, 8, 16, 32"
    )
    with pytest.raises(AttnprofError) as info:
        build_attention("sa", 64)
    assert "valid groups for 64 channels: 1, 2, 4, 8, 16, 32" in str(info.value)


@pytest.mark.parametrize(
    "make,pattern",
    [
        (
            lambda: SGE(48, groups=64),
            r"sge: channels \(48\) must be divisible by groups \(64\); "
            r"valid groups for 48 channels: 1, 2, 3, 4, 6, 8, 12, 16, 24, 48$",
        ),
        (lambda: SE(8), r"se: reduction \(16\) is too large for 8 channels"),
        (lambda: CBAM(8), r"cbam: reduction \(16\) is too large for 8 channels"),
        (lambda: BAM(15), r"bam: reduction \(16\) is too large for 15 channels"),
        (lambda: SKConv(64, 64, reduction=128), r"sk: reduction \(128\) is too large"),
        (
            lambda: SKConv(48, 64),
            r"sk: groups \(32\) must divide in_channels \(48\) and "
            r"out_channels \(64\); valid groups: 1, 2, 4, 8, 16$",
        ),
        (lambda: GC(8), r"gc: ratio \(0\.0625\) is too small for 8 channels"),
        (lambda: GC(64, ratio=2), r"gc: ratio must be a number in \(0, 1\], got 2"),
        (lambda: CBAM(64, kernel_size=6), r"cbam: kernel_size must be odd"),
        (lambda: SE(64, reduction=0), r"se: reduction must be an integer >= 1, got 0"),
        (lambda: SA(128, groups=True), r"sa: groups must be an integer >= 1, got True"),
        (lambda: SGE(64, groups=2.0), r"sge: groups must be an integer >= 1, got 2\.0"),
        (lambda: BAM(64, dilation=0), r"bam: dilation must be an integer >= 1, got 0"),
        (lambda: SKConv(64, 64, stride=0), r"sk: stride must be an integer >= 1, got 0"),
    ],
)
def test_bad_options_raise_clear_errors(make, pattern):
    with pytest.raises(AttnprofError, match=pattern):
        make()


def test_sa_odd_channels_lists_no_valid_groups():
    with pytest.raises(AttnprofError, match=r"valid groups for 7 channels: none$"):
        SA(7, groups=1)


# --------------------------------------------------------------------------- registry


class DoubleIt(nn.Module):
    """A user module for the import-path tests: doubles its input."""

    def __init__(self, channels: int, factor: float = 2.0) -> None:
        super().__init__()
        self.channels = channels
        self.factor = factor

    def forward(self, x):
        return self.factor * x


BUILTINS = ["none", "se", "sge", "sa", "cbam", "eca", "gc", "bam", "sk"]


def test_builtin_names_and_placements():
    names = attention_names()
    assert names[: len(BUILTINS)] == BUILTINS
    placements = {n: get_attention_spec(n).placement for n in BUILTINS}
    assert placements == {
        "none": "none",
        "se": "block",
        "sge": "block",
        "sa": "block",
        "cbam": "block",
        "eca": "block",
        "gc": "block",
        "bam": "stage",
        "sk": "conv",
    }
    assert [n for n in BUILTINS if get_attention_spec(n).stage_aware] == ["eca"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(AttnprofError) as info:
        build_attention("squeeze", 64)
    message = str(info.value)
    assert "'squeeze'" in message
    for name in attention_names():
        assert name in message


def test_duplicate_registration_is_refused():
    with pytest.raises(AttnprofError, match="'se' is already registered"):
        register_attention("se", SE)


def test_user_registration_works():
    register_attention("test-double", DoubleIt, paper="none")
    try:
        assert "test-double" in attention_names()
        m = build_attention("test-double", 8, factor=3.0)
        x = torch.randn(1, 8, 2, 2)
        torch.testing.assert_close(m(x), 3 * x)
        with pytest.raises(AttnprofError, match="invalid options"):
            build_attention("test-double", 8, reduction=4)
    finally:
        unregister_attention("test-double")
    assert "test-double" not in attention_names()


@pytest.mark.parametrize(
    "path,cls", [("torch.nn:Identity", nn.Identity), (f"{__name__}:DoubleIt", DoubleIt)]
)
def test_import_path(path, cls):
    spec = get_attention_spec(path)
    assert spec.placement == "block"
    m = build_attention(path, 16)
    assert isinstance(m, cls)
    x = torch.randn(2, 16, 3, 3)
    assert m(x).shape == x.shape


def test_import_path_errors():
    with pytest.raises(AttnprofError, match="cannot import"):
        get_attention_spec("no_such_package_xyz:Thing")
    with pytest.raises(AttnprofError, match="has no attribute"):
        get_attention_spec("torch.nn:NoSuchLayer")


@pytest.mark.parametrize("name", attention_names())
def test_every_registered_module_builds_and_keeps_shape(name):
    spec = get_attention_spec(name)
    assert spec.paper
    m = build_attention(name, 128).eval()
    x = torch.randn(2, 128, 6, 5)
    with torch.no_grad():
        y = m(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    if spec.placement == "none":
        assert n_params(m) == 0
        torch.testing.assert_close(y, x)
    else:
        assert n_params(m) > 0


@pytest.mark.parametrize("name", [n for n in attention_names() if n != "none"])
def test_every_registered_module_docstring_cites_arxiv(name):
    factory = get_attention_spec(name).factory
    module_doc = __import__(factory.__module__, fromlist=["_"]).__doc__
    assert re.search(r"arXiv:\d{4}\.\d{4,5}", module_doc), factory.__module__


def test_conv_placement_takes_out_channels_and_stride():
    m = build_attention("sk", 64, out_channels=128, stride=2).eval()
    assert isinstance(m, SKConv)
    assert m(torch.randn(2, 64, 7, 8)).shape == (2, 128, 4, 4)


def test_non_stage_aware_modules_ignore_stage():
    assert isinstance(build_attention("se", 64, stage=2), SE)


def test_functional_reference_helpers_agree_with_torch():
    # The shifted-sum convolution used by the references, checked once against F.conv2d.
    x, w = sample((2, 4, 6, 5)), sample((3, 4, 3, 3), seed=2)
    torch.testing.assert_close(conv_same(x, w, dilation=2), F.conv2d(x, w, padding=2, dilation=2))
    wg = sample((6, 2, 3, 3), seed=3)
    torch.testing.assert_close(
        grouped_conv3x3(x, wg, 2, 2), F.conv2d(x, wg, stride=2, padding=1, groups=2)
    )
