"""Property tests for the attention modules: shapes, finiteness, gradients, validation, meta.

Hypothesis draws channels, groups, reductions and small spatial sizes; every module is run in
train or eval mode on randomised parameters, must keep the shape (SK: the strided shape), stay
finite, and send a gradient to every parameter. Invalid combinations must raise AttnprofError
naming the module, the value and what would be valid.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from attnprof.attention import attention_names, build_attention, get_attention_spec
from attnprof.attention.bam import BAM
from attnprof.attention.cbam import CBAM
from attnprof.attention.eca import ECA
from attnprof.attention.gc import GC
from attnprof.attention.sa import SA
from attnprof.attention.se import SE
from attnprof.attention.sge import SGE
from attnprof.attention.sk import SKConv
from attnprof.errors import AttnprofError

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(0, 2**16)
batch = st.integers(1, 3)
side = st.integers(1, 6)
train_mode = st.booleans()


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random parameters and BN running statistics (so no init value hides a bug)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.3 * torch.randn(buf.shape, generator=gen))
            elif name.endswith("running_var"):
                buf.copy_(0.5 + torch.rand(buf.shape, generator=gen))
    return module


def exercise(module, shape, train, seed, out_shape=None):
    """Forward + backward on random data; return the output."""
    randomize(module, seed).train(train)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(shape, generator=gen).requires_grad_(True)
    y = module(x)
    assert y.shape == (out_shape or shape)
    assert torch.isfinite(y).all()
    weights = torch.randn(y.shape, generator=gen)
    (y * weights).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert x.grad is not None and torch.isfinite(x.grad).all()
    return y


def n_for(train: bool, n: int) -> int:
    """BatchNorm in training mode needs more than one value per channel."""
    return max(n, 2) if train else n


# --------------------------------------------------------------------------- valid configurations


@PROPERTY
@given(c=st.integers(1, 96), r=st.integers(1, 32), n=batch, h=side, w=side, seed=seeds)
def test_se_properties(c, r, n, h, w, seed):
    if c // r < 1:
        with pytest.raises(AttnprofError, match=rf"se: reduction \({r}\) is too large for {c}"):
            SE(c, reduction=r)
        return
    exercise(SE(c, reduction=r), (n, c, h, w), True, seed)


@PROPERTY
@given(
    g=st.integers(1, 8),
    per=st.integers(1, 4),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
    train=train_mode,
)
def test_sge_properties(g, per, n, h, w, seed, train):
    if h * w < 2:  # the unbiased std of one value is undefined (NaN), as in the official code
        w = 2
    exercise(SGE(g * per, groups=g), (n, g * per, h, w), train, seed)


@PROPERTY
@given(
    g=st.integers(1, 6),
    half=st.integers(1, 3),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
    train=train_mode,
)
def test_sa_properties(g, half, n, h, w, seed, train):
    c = 2 * g * half
    # torch's group_norm refuses a (batch x spatial) of one value per channel group: SA's
    # spatial half normalises (n * g, half, h, w) with one group per channel, so n*g*h*w must
    # exceed 1 whatever ``half`` is (hypothesis found n=g=h=w=1, half=2).
    if n * g * h * w == 1:
        w = 2
    exercise(SA(c, groups=g), (n, c, h, w), train, seed)


@PROPERTY
@given(
    c=st.integers(1, 64),
    r=st.integers(1, 16),
    k=st.sampled_from([1, 3, 5, 7]),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
    train=train_mode,
)
def test_cbam_properties(c, r, k, n, h, w, seed, train):
    if c // r < 1:
        with pytest.raises(AttnprofError, match=r"cbam: reduction .* is too large"):
            CBAM(c, reduction=r, kernel_size=k)
        return
    exercise(CBAM(c, reduction=r, kernel_size=k), (n_for(train, n), c, h, w), train, seed)


@PROPERTY
@given(
    c=st.integers(1, 80),
    k=st.one_of(st.none(), st.just("adaptive"), st.integers(0, 4).map(lambda i: 2 * i + 1)),
    stage=st.one_of(st.none(), st.integers(0, 3)),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
)
def test_eca_properties(c, k, stage, n, h, w, seed):
    m = ECA(c, kernel_size=k, stage=stage)
    assert m.kernel_size % 2 == 1
    if isinstance(k, int):
        assert m.kernel_size == k
    elif k is None and stage is not None:
        assert m.kernel_size == (3, 5, 5, 7)[stage]
    else:
        t = int((math.log2(c) + 1) / 2)
        assert m.kernel_size == (t if t % 2 else t + 1)
    exercise(m, (n, c, h, w), True, seed)


@PROPERTY
@given(
    c=st.integers(1, 64),
    r=st.sampled_from([1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
)
def test_gc_properties(c, r, n, h, w, seed):
    if int(c * r) < 1:
        with pytest.raises(AttnprofError, match=rf"gc: ratio .* is too small for {c} channels"):
            GC(c, ratio=r)
        return
    exercise(GC(c, ratio=r), (n, c, h, w), True, seed)


@PROPERTY
@given(
    c=st.integers(1, 64),
    r=st.integers(1, 16),
    d=st.integers(1, 4),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
    train=train_mode,
)
def test_bam_properties(c, r, d, n, h, w, seed, train):
    if c // r < 1:
        with pytest.raises(AttnprofError, match=r"bam: reduction .* is too large"):
            BAM(c, reduction=r, dilation=d)
        return
    exercise(BAM(c, reduction=r, dilation=d), (n_for(train, n), c, h, w), train, seed)


@PROPERTY
@given(
    g=st.integers(1, 4),
    cin=st.integers(1, 4),
    cout=st.integers(1, 4),
    s=st.integers(1, 3),
    r=st.integers(1, 8),
    n=batch,
    h=side,
    w=side,
    seed=seeds,
    train=train_mode,
)
def test_sk_properties(g, cin, cout, s, r, n, h, w, seed, train):
    in_c, out_c = g * cin, g * cout
    if out_c // r < 1:
        with pytest.raises(AttnprofError, match=r"sk: reduction .* is too large"):
            SKConv(in_c, out_c, stride=s, groups=g, reduction=r)
        return
    m = SKConv(in_c, out_c, stride=s, groups=g, reduction=r)
    n = n_for(train, n)
    out = (n, out_c, -(-h // s), -(-w // s))
    exercise(m, (n, in_c, h, w), train, seed, out_shape=out)


# --------------------------------------------------------------------------- invalid combinations


@PROPERTY
@given(c=st.integers(1, 300), g=st.integers(1, 200))
def test_sa_rejects_indivisible_channels(c, g):
    if c % (2 * g) == 0:
        assert SA(c, groups=g).groups == g
        return
    valid = ", ".join(str(v) for v in range(1, c + 1) if c % (2 * v) == 0) or "none"
    with pytest.raises(AttnprofError) as info:
        SA(c, groups=g)
    assert str(info.value) == (
        f"sa: channels ({c}) must be divisible by 2*groups ({2 * g}); "
        f"valid groups for {c} channels: {valid}"
    )


@PROPERTY
@given(c=st.integers(1, 300), g=st.integers(1, 200))
def test_sge_rejects_indivisible_channels(c, g):
    if c % g == 0:
        assert SGE(c, groups=g).groups == g
        return
    valid = ", ".join(str(v) for v in range(1, c + 1) if c % v == 0)
    with pytest.raises(AttnprofError) as info:
        SGE(c, groups=g)
    assert str(info.value) == (
        f"sge: channels ({c}) must be divisible by groups ({g}); "
        f"valid groups for {c} channels: {valid}"
    )


@PROPERTY
@given(cin=st.integers(1, 128), cout=st.integers(1, 128), g=st.integers(1, 64))
def test_sk_rejects_groups_that_do_not_divide(cin, cout, g):
    if cin % g == 0 and cout % g == 0:
        return
    with pytest.raises(AttnprofError) as info:
        SKConv(cin, cout, groups=g, reduction=1)
    message = str(info.value)
    assert message.startswith(f"sk: groups ({g}) must divide in_channels ({cin}) and ")
    listed = [int(v) for v in message.rsplit("valid groups: ", 1)[1].split(", ")]
    assert listed == [v for v in range(1, 129) if cin % v == 0 and cout % v == 0]


@PROPERTY
@given(k=st.integers(-3, 20).filter(lambda k: k < 1 or k % 2 == 0))
def test_eca_rejects_even_or_nonpositive_kernels(k):
    with pytest.raises(AttnprofError, match=rf"eca: kernel_size must .*got {k}"):
        ECA(64, kernel_size=k)


@PROPERTY
@given(
    value=st.one_of(
        st.integers(-5, 0), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3)
    ),
    make=st.sampled_from(
        [
            ("se", lambda v: SE(v)),
            ("se", lambda v: SE(64, reduction=v)),
            ("sge", lambda v: SGE(64, groups=v)),
            ("sa", lambda v: SA(128, groups=v)),
            ("cbam", lambda v: CBAM(64, reduction=v)),
            ("gc", lambda v: GC(v)),
            ("bam", lambda v: BAM(64, dilation=v)),
            ("sk", lambda v: SKConv(64, 64, stride=v)),
            ("eca", lambda v: ECA(v)),
        ]
    ),
)
def test_non_integer_options_are_rejected(value, make):
    name, factory = make
    with pytest.raises(AttnprofError, match=rf"^{name}: .*{re.escape(repr(value))}"):
        factory(value)


# --------------------------------------------------------------------------- gradients


def _configured(name: str) -> nn.Module:
    """64 channels; SGE and SA with 8 groups so that each group holds several channels."""
    options = {"groups": 8} if name in ("sge", "sa") else {}
    return build_attention(name, 64, **options)


@pytest.mark.parametrize("name", [n for n in attention_names() if n != "none"])
def test_randomised_modules_send_nonzero_gradients_to_every_parameter(name):
    m = randomize(_configured(name), seed=0).train()
    x = torch.randn(4, 64, 6, 6, generator=torch.Generator().manual_seed(1))
    y = m(x)
    (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, pname


def _grads_at_init(module: nn.Module) -> dict[str, torch.Tensor]:
    x = torch.randn(2, module.channels, 5, 5, generator=torch.Generator().manual_seed(3))
    y = module(x)
    (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(4))).sum().backward()
    return {name: p.grad for name, p in module.named_parameters()}


def test_gc_at_init_only_the_last_conv_learns():
    # The zero-initialised last conv blocks every gradient upstream of it: the mask conv, the
    # first transform conv and the LayerNorm get exactly zero gradients on the first step.
    grads = _grads_at_init(GC(64))
    for name, grad in grads.items():
        assert grad is not None, name
        if name.startswith("transform.3."):
            assert torch.count_nonzero(grad) > 0, name
        else:
            assert torch.count_nonzero(grad) == 0, name


def test_sa_at_init_groupnorm_gets_zero_gradient():
    # sw = 0 multiplies the GroupNorm output, so its weight and bias get zero gradients at
    # init; the four gate parameters do learn.
    grads = _grads_at_init(SA(64, groups=8))
    for name, grad in grads.items():
        assert grad is not None, name
        if name.startswith("norm."):
            assert torch.count_nonzero(grad) == 0, name
        else:
            assert torch.count_nonzero(grad) > 0, name


def test_sge_at_init_both_parameters_learn():
    grads = _grads_at_init(SGE(64, groups=8))
    assert all(torch.count_nonzero(g) == g.numel() for g in grads.values())


# --------------------------------------------------------------------------- meta device


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", attention_names())
def test_every_module_builds_and_runs_on_meta(name, train):
    spec = get_attention_spec(name)
    options = {"out_channels": 256, "stride": 2} if spec.placement == "conv" else {}
    with torch.device("meta"):
        m = build_attention(name, 128, **options).train(train)
        y = m(torch.randn(2, 128, 15, 9))
    assert all(p.device.type == "meta" for p in m.parameters())
    assert y.device.type == "meta"
    expected = (2, 256, 8, 5) if spec.placement == "conv" else (2, 128, 15, 9)
    assert tuple(y.shape) == expected


@pytest.mark.parametrize("name", ["eca"])
def test_stage_aware_module_builds_on_meta_per_stage(name):
    with torch.device("meta"):
        sizes = [build_attention(name, 256, stage=s).kernel_size for s in range(4)]
    assert sizes == [3, 5, 5, 7]
