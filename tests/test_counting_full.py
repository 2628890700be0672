"""The ``full`` convention: the rule table's arithmetic, bytes, attribution, and the zoo."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from support import Fn
from torch import nn

from attnprof import build_model
from attnprof.attention import attention_names
from attnprof.counting import count, fvcore_count
from attnprof.counting.full import FlopByteMode
from attnprof.counting.rules import RULES, moves_data_only
from attnprof.errors import AttnprofError


def full(module: nn.Module, shape, attention=()):
    return count(module.to("meta").eval(), shape, "full", attention=list(attention))


@pytest.mark.parametrize(
    ("module", "shape", "expected"),
    [
        # 800 outputs * 27 MACs * 2 = 43,200
        ("conv", (1, 3, 10, 10), 43_200),
        # 43,200 + 800 bias adds = 44,000
        ("conv_bias", (1, 3, 10, 10), 44_000),
        # mm: 2 * 4*10*5 = 400
        ("linear", (4, 10), 400),
        # addmm: 400 + 20 bias adds = 420
        ("linear_bias", (4, 10), 420),
        # bmm: 2 * 2*3*4*5 = 240 (the input is reshaped to (2, 3, 4) and multiplied by ones)
        ("bmm", (2, 3, 4), 240),
        # eval batch norm: x * scale + shift, 2 * 200 = 400
        ("batch_norm", (2, 4, 5, 5), 400),
        # group norm: statistics 3 + apply 2 per element, 5 * 200 = 1,000
        ("group_norm", (2, 4, 5, 5), 1_000),
        # layer norm with affine: 3 + 2 + 2 per element, 7 * 100 = 700
        ("layer_norm", (2, 5, 10), 700),
        # relu_: 1 per element, 200
        ("relu", (2, 4, 5, 5), 200),
        # sigmoid 1 / (1 + exp(-x)): 4 * 200 = 800
        ("sigmoid", (2, 4, 5, 5), 800),
        # softmax: max, subtract, exp, sum, divide: 5 * 200 = 1,000
        ("softmax", (2, 4, 5, 5), 1_000),
        # mean over H, W: 200 adds + 8 divisions = 208
        ("mean", (2, 4, 5, 5), 208),
        # std over H, W: 3 * 200 + 3 * 8 = 624
        ("std", (2, 4, 5, 5), 624),
        # max pool: 1 per input element, 4*8*8 = 256
        ("max_pool", (1, 4, 8, 8), 256),
        # adaptive avg pool to 2x2: 1 per input element, 256
        ("adaptive_pool", (1, 4, 8, 8), 256),
        # x * gate with the gate broadcast from (2, 4, 1, 1): 1 per output element, 200
        ("broadcast_mul", (2, 4, 5, 5), 200),
        # bilinear upsampling: 7 per output element, 7 * 2*8*8 = 896
        ("bilinear", (1, 2, 4, 4), 896),
        # concatenation, views, permutes, copies: data movement, 0
        ("movement", (2, 4, 5, 5), 0),
    ],
)
def test_rules(module, shape, expected):
    modules = {
        "conv": lambda: nn.Conv2d(3, 8, 3, padding=1, bias=False),
        "conv_bias": lambda: nn.Conv2d(3, 8, 3, padding=1),
        "linear": lambda: nn.Linear(10, 5, bias=False),
        "linear_bias": lambda: nn.Linear(10, 5),
        "bmm": lambda: Fn(lambda x: torch.bmm(x, torch.ones(2, 4, 5, device=x.device))),
        "batch_norm": lambda: nn.BatchNorm2d(4),
        "group_norm": lambda: nn.GroupNorm(2, 4),
        "layer_norm": lambda: nn.LayerNorm(10),
        "relu": lambda: nn.ReLU(inplace=True),
        "sigmoid": lambda: nn.Sigmoid(),
        "softmax": lambda: nn.Softmax(dim=1),
        "mean": lambda: Fn(lambda x: x.mean((2, 3))),
        "std": lambda: Fn(lambda x: x.std((2, 3))),
        "max_pool": lambda: nn.MaxPool2d(2),
        "adaptive_pool": lambda: nn.AdaptiveAvgPool2d(2),
        "broadcast_mul": lambda: Fn(lambda x: x * x[:, :, :1, :1]),
        "bilinear": lambda: nn.Upsample(scale_factor=2, mode="bilinear"),
        "movement": lambda: Fn(
            lambda x: torch.cat([x, x], 1).permute(0, 2, 3, 1).reshape(2, -1).contiguous()
        ),
    }
    result = full(modules[module](), shape)
    assert result.value == expected
    assert result.unit == "FLOP"
    assert result.uncounted == {}


@pytest.mark.parametrize(
    ("fn", "shape", "expected"),
    [
        # in-place relu_ reads and writes its 2*4*5*5 float32 = 800 bytes: 1,600
        (lambda x: torch.relu_(x), (2, 4, 5, 5), 1_600),
        # x * x reads x once (800) and writes 800: 1,600
        (lambda x: x * x, (2, 4, 5, 5), 1_600),
        # a view moves nothing
        (lambda x: x.view(-1), (2, 4, 5, 5), 0),
        # slice and expand are views; the add reads x (800) and the expanded (1, 4, 5, 5)
        # slice once, its stride-0 batch dimension not repeated (400), and writes 800: 2,000
        (lambda x: x + x[:1].expand(2, -1, -1, -1), (2, 4, 5, 5), 2_000),
        # cat([x, x]) reads x once (800) and writes 1,600: 2,400
        (lambda x: torch.cat([x, x]), (2, 4, 5, 5), 2_400),
        # zeros_like writes only: 800
        (lambda x: torch.zeros_like(x), (2, 4, 5, 5), 800),
    ],
)
def test_bytes(fn, shape, expected):
    assert full(Fn(fn), shape).bytes == expected


def test_conv_bytes_count_input_weight_and_output():
    # input 3*10*10*4 = 1,200; weight 8*3*3*3*4 = 864; output 8*10*10*4 = 3,200: 5,264
    result = full(nn.Conv2d(3, 8, 3, padding=1, bias=False), (1, 3, 10, 10))
    assert result.bytes == 5_264
    assert result.intensity == pytest.approx(43_200 / 5_264)


def test_unhandled_op_is_reported_not_hidden():
    result = full(Fn(lambda x: torch.sort(x, dim=-1).values * 2), (2, 4, 5, 5))
    assert result.uncounted == {"aten::sort": 1}
    assert result.value == 200  # the multiply still counts


def test_attention_part_follows_the_named_modules():
    model = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.Sequential(nn.Sigmoid()))
    result = full(model, (1, 3, 5, 5), attention=["1"])
    # conv 2 * 8*5*5*3 = 1,200; sigmoid inside: 4 * 200 = 800
    assert (result.value, result.attention) == (2_000, 800)
    # sigmoid reads and writes 200 float32: 1,600 bytes
    assert result.attention_bytes == 1_600


def test_unknown_attention_name_is_an_error():
    with pytest.raises(AttnprofError, match="no module named"):
        full(nn.ReLU(), (1, 2), attention=["missing"])


@pytest.mark.parametrize(
    ("module", "shape"),
    [
        (lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), (2, 3, 6, 6)),
        (lambda: nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), (2, 8, 6, 6)),
        (lambda: nn.Linear(12, 7, bias=False), (2, 12)),
        (
            lambda: nn.Sequential(
                nn.Conv2d(3, 4, 3, bias=False), nn.Flatten(), nn.Linear(64, 5, bias=False)
            ),
            (2, 3, 6, 6),
        ),
    ],
    ids=["conv", "grouped_conv", "linear", "conv_linear"],
)
def test_full_is_twice_fvcore_for_bias_free_conv_and_linear(module, shape):
    model = module().eval()
    with torch.no_grad():
        fvcore_macs = fvcore_count.analysis(model, shape).total()
    assert count(model, shape, "full", attention=[]).value == 2 * fvcore_macs > 0


def test_rule_table_bins():
    aten = torch.ops.aten
    assert moves_data_only(aten.view.default)
    assert moves_data_only(aten.cat.default)
    assert moves_data_only(aten.empty.memory_format)
    assert not moves_data_only(aten.mul.Tensor)
    assert not moves_data_only(aten.sort.default)  # unhandled: assumed to compute
    assert aten.relu in RULES and aten.relu_ in RULES


ZOO_BACKBONES = ("resnet18", "resnet50")


@pytest.mark.parametrize("backbone", ZOO_BACKBONES)
@pytest.mark.parametrize("attention", attention_names())
def test_zoo_leaves_nothing_uncounted(backbone, attention):
    # SA's 2 * groups must divide ResNet-18's 64 channels: 32 groups there instead of 64.
    options = {"groups": 32} if (backbone, attention) == ("resnet18", "sa") else {}
    model = build_model(backbone, attention, device="meta", **options)
    result = count(model, (1, 3, 64, 64), "full")
    assert result.uncounted == {}
    assert result.value > 0 and result.bytes > 0
    assert (result.attention > 0) == (attention != "none")


# -- fused attention: priced as the math it fuses, the same on meta and on a CPU -------------


class _Block(nn.Module):
    """A small vision-transformer block: pre-norm self-attention and MLP, on patch tokens."""

    def __init__(self, dim=32, heads=4, need_weights=False):
        super().__init__()
        self.need_weights = need_weights
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.encoder = nn.TransformerEncoderLayer(dim, heads, 2 * dim, batch_first=True,
                                                  activation="gelu")
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        y = self.norm1(tokens)
        tokens = tokens + self.attention(y, y, y, need_weights=self.need_weights)[0]
        tokens = tokens + self.mlp(self.norm2(tokens))
        heads = tokens.unflatten(-1, (4, -1)).transpose(1, 2)
        tokens = tokens + F.scaled_dot_product_attention(heads, heads, heads
                                                         ).transpose(1, 2).flatten(2)
        return self.encoder(tokens).mean(1)


def _full_on(model, device, shape=(2, 3, 32, 32)):
    model = model.eval().to(device)
    mode = FlopByteMode()
    with torch.no_grad(), mode:
        model(torch.zeros(shape, device=device))
    return mode


def test_sdpa_is_priced_as_its_math():
    # a CPU runs this fused (flash needs one head size for q, k and v; 12 keys for 16 queries)
    q, k, v = torch.zeros(2, 4, 16, 8), torch.zeros(2, 4, 12, 8), torch.zeros(2, 4, 12, 8)
    mode = FlopByteMode()
    with torch.no_grad(), mode:
        F.scaled_dot_product_attention(q, k, v)
    scores = 2 * 4 * 16 * 12
    expected = (q.numel() + k.numel()  # q and k scaled by sqrt(scale)
                + 2 * scores * 8  # q k^T
                + 5 * scores  # softmax
                + 2 * scores * 8)  # times v
    assert mode.flops == expected and not mode.uncounted
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in mode.by_op  # fused here
    assert mode.bytes >= 4 * (q.numel() + k.numel() + v.numel() + 2 * 4 * 16 * 8)
    on_meta = FlopByteMode()
    with torch.no_grad(), on_meta:
        F.scaled_dot_product_attention(q.to("meta"), k.to("meta"), v.to("meta"))
    assert on_meta.flops == expected and "aten::bmm" in on_meta.by_op  # decomposed there


@pytest.mark.parametrize("need_weights", [False, True])
def test_fused_attention_counts_what_its_decomposition_counts(need_weights):
    """On meta, attention decomposes into mm, bmm and softmax; on a CPU nn.MultiheadAttention
    and nn.TransformerEncoderLayer run as fused kernels (_native_multi_head_attention,
    _transformer_encoder_layer_fwd). Both count the same, and nothing goes uncounted."""
    torch.manual_seed(0)
    block = _Block(need_weights=need_weights)
    cpu = _full_on(copy.deepcopy(block), "cpu")
    meta = _full_on(copy.deepcopy(block), "meta")
    fused = {"aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd"}
    assert fused <= set(cpu.by_op) and not fused & set(meta.by_op)
    assert cpu.flops == meta.flops
    assert not cpu.uncounted and not meta.uncounted
