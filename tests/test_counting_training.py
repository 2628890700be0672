"""One training step under ``full``: backward rules, activation bytes against what autograd
really saves on a CPU, attribution to attention modules, and the model left as it was."""

from __future__ import annotations

import functools

import pytest
import torch
from support import Fn
from torch import nn

from attnprof import build_model
from attnprof.attention import attention_names
from attnprof.backbones.registry import BACKBONES
from attnprof.counting import count
from attnprof.counting import training as training_module
from attnprof.counting.full import FlopByteMode
from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.training import (
    StepCounter,
    count_training,
    count_training_by_op,
    saved_activation_bytes,
)
from attnprof.errors import AttnprofError
from attnprof.passes import LOSS, loss_of

SHAPE = (2, 3, 64, 64)  # batch 2: batch norm in training needs 2 values per channel (BAM's 1-d)


def options(backbone: str, variant: str) -> dict:
    """The module options a backbone needs (suites/imagenet.toml): MobileNetV2's widths take
    SGE with 8 groups and SA with 4; ResNet-18/34's 64-channel blocks SA with 32."""
    if backbone == "mobilenet_v2":
        return {"sge": {"groups": 8}, "sa": {"groups": 4}}.get(variant, {})
    if backbone in ("resnet18", "resnet34") and variant == "sa":
        return {"groups": 32}
    return {}


def applicable(backbone: str) -> list[str]:
    """SK replaces a dense 3x3 convolution: the ResNets only."""
    return [v for v in attention_names() if not (backbone == "mobilenet_v2" and v == "sk")]


ZOO = [(backbone, variant) for backbone in BACKBONES for variant in applicable(backbone)]


def meta_model(backbone: str, variant: str) -> nn.Module:
    return build_model(backbone, variant, device="meta", input_shape=SHAPE,
                       **options(backbone, variant))


_COUNTED: dict[tuple[str, str], nn.Module] = {}


@functools.cache
def zoo_count(backbone: str, variant: str):
    """One meta count per model, shared by the tests below (counts are immutable)."""
    model = meta_model(backbone, variant)
    _COUNTED[backbone, variant] = model
    return count_training_by_op(model, SHAPE)


def counted_model(backbone: str, variant: str) -> nn.Module:
    """The meta model :func:`zoo_count` counted, for one test to take (and change)."""
    zoo_count(backbone, variant)
    return _COUNTED.pop((backbone, variant), None) or meta_model(backbone, variant)


# ---- activation bytes: meta count == what autograd saves in a real CPU forward ------------


def materialised(model: nn.Module) -> nn.Module:
    """The meta model on the CPU, every parameter and buffer 0 (values do not change what
    autograd saves, and zeros keep the forward fast)."""
    model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
    return model


def autograd_saved(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """Ground truth, written apart from attnprof's: bytes of the distinct storages (by data
    pointer) packed for backward in a real training forward and loss, parameters and buffers
    excluded; and those packed inside an attention module."""
    excluded = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    sizes: dict[int, int] = {}
    inside: set[int] = set()
    kept = []
    running: list[nn.Module] = []

    def pack(tensor):
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in excluded:
            kept.append(tensor)
            sizes[pointer] = tensor.untyped_storage().nbytes()
            if running:
                inside.add(pointer)
        return tensor

    def enter(module, args):
        running.append(module)

    def leave(module, args, output):
        running.pop()

    handles = []
    for _, module in model.attention_modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss_of(model(x))
    for handle in handles:
        handle.remove()
    return sum(sizes.values()), sum(sizes[pointer] for pointer in inside)


@pytest.fixture
def one_thread():
    """Real forwards this small gain nothing from a second thread, and lose a lot to a busy
    machine's other processes (threads spinning for a core they do not get)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("backbone", "variant"),
                         [(b, v) for b, v in ZOO if b in ("resnet50", "mobilenet_v2")])
def test_activation_bytes_are_what_autograd_saves(backbone, variant):
    counted = zoo_count(backbone, variant).count
    model = materialised(counted_model(backbone, variant))
    x = torch.zeros(SHAPE)
    total, attention = autograd_saved(model, x)
    assert counted.activation_bytes == total
    assert counted.attention_activation_bytes == attention
    assert (attention > 0) == (variant != "none")
    if variant in ("none", "sa", "bam"):  # attnprof's own measure too (a forward each)
        assert saved_activation_bytes(model, x) == total


def test_activation_bytes_count_a_storage_once_and_leave_out_parameters():
    # conv (no bias) saves the input (2*3*8*8 floats = 1,536 B) and its weight (a parameter,
    # left out); relu_ works in place and saves its result, the conv's output (2*4*8*8 floats
    # = 2,048 B), which the mean of squares saves again (pow saves its input, a slice of the
    # same storage, counted once and whole): 1,536 + 2,048 = 3,584
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                          Fn(lambda x: x[:, :2]))
    assert count_training(model.to("meta"), (2, 3, 8, 8)).activation_bytes == 3_584
    assert saved_activation_bytes(model.to_empty(device="cpu"), torch.zeros(2, 3, 8, 8)) == 3_584


# ---- single layers: backward FLOPs from the ops, 2x or 1x the forward ---------------------


def forward_backward(module: nn.Module, shape, input_grad: bool, counter=FlopByteMode):
    """The two counters (``counter`` instances) of ``module``'s forward and of its backward
    from a gradient shaped like its output, on meta, the input requiring a gradient or not."""
    x = torch.empty(shape, device="meta", requires_grad=input_grad)
    forward, backward = counter(), counter()
    with dynamo_stand_in():
        with forward:
            out = module(x)
        grad = torch.empty_like(out)
        with backward:
            out.backward(grad)
    return forward, backward


def step_flops(layer: nn.Module, shape, input_grad: bool) -> tuple[int, int, dict]:
    """Forward and backward FLOPs of ``layer`` alone, the input requiring a gradient or not."""
    forward, backward = forward_backward(layer.to("meta"), shape, input_grad)
    return forward.flops, backward.flops, dict(backward.by_op)


CONV = (lambda bias: nn.Conv2d(3, 8, 3, padding=1, bias=bias), (2, 3, 10, 10))
LINEAR = (lambda bias: nn.Linear(10, 5, bias=bias), (4, 10))


@pytest.mark.parametrize(("layer", "shape"), [CONV, LINEAR])
def test_bias_free_layer_backward_is_twice_its_forward_and_once_without_input_grad(layer, shape):
    forward, backward, _ = step_flops(layer(False), shape, input_grad=True)
    assert backward == 2 * forward
    first_forward, first_backward, _ = step_flops(layer(False), shape, input_grad=False)
    assert (first_forward, first_backward) == (forward, forward)


@pytest.mark.parametrize(
    ("layer", "shape", "input_grad", "expected"),
    [
        # conv: 1,600 outputs x 27 MACs = 43,200 MACs; forward 2 * 43,200 + 1,600 bias adds =
        # 88,000. Backward: input grad 86,400 + weight grad 86,400 + bias grad 1,600 = 174,400
        (*CONV, True, (88_000, 174_400)),
        # first layer: no input gradient, 86,400 + 1,600 = 88,000 (= the forward)
        (*CONV, False, (88_000, 88_000)),
        # linear: 4 x 10 x 5 = 200 MACs; addmm 400 + 20 = 420. Backward: mm for the input 400,
        # mm for the weight 400, sum of the (4, 5) gradient for the bias 20 = 820
        (*LINEAR, True, (420, 820)),
        (*LINEAR, False, (420, 420)),
    ],
)
def test_layer_with_bias_backward_figures(layer, shape, input_grad, expected):
    forward, backward, _ = step_flops(layer(True), shape, input_grad)
    assert (forward, backward) == expected


def test_first_layer_of_a_model_computes_no_input_gradient():
    first, second = nn.Conv2d(3, 4, 3, bias=False), nn.Conv2d(4, 4, 3, bias=False)
    one = count(nn.Sequential(first).to("meta"), (2, 3, 10, 10), "full").value
    two = count(nn.Sequential(second).to("meta"), (2, 4, 8, 8), "full").value
    ops = count_training_by_op(nn.Sequential(first, second).to("meta"), (2, 3, 10, 10))
    assert ops.backward_by_op["aten::convolution_backward"] == one + 2 * two


@pytest.mark.parametrize(
    ("module", "shape", "op", "per_element"),
    [
        (lambda: nn.ReLU(), (2, 4, 5, 5), "threshold_backward", 1),
        (lambda: nn.ReLU6(), (2, 4, 5, 5), "hardtanh_backward", 2),
        (lambda: nn.Sigmoid(), (2, 4, 5, 5), "sigmoid_backward", 3),
        (lambda: nn.Tanh(), (2, 4, 5, 5), "tanh_backward", 3),
        (lambda: nn.Hardswish(), (2, 4, 5, 5), "hardswish_backward", 5),
        (lambda: nn.SiLU(), (2, 4, 5, 5), "silu_backward", 9),
        (lambda: nn.GELU(), (2, 4, 5, 5), "gelu_backward", 11),
        (lambda: nn.Softmax(dim=1), (2, 4, 5, 5), "_softmax_backward_data", 4),
        # training batch norm, all three gradients: sums of g (1) and g * x (2), apply 4
        (lambda: nn.BatchNorm2d(4).train(), (2, 4, 5, 5), "native_batch_norm_backward", 7),
        # eval: fixed statistics, g * scale (1), and the weight and bias sums (3)
        (lambda: nn.BatchNorm2d(4).eval(), (2, 4, 5, 5), "native_batch_norm_backward", 4),
        (lambda: nn.GroupNorm(2, 4), (2, 4, 5, 5), "native_group_norm_backward", 7),
        # x_hat 2, weight grad 2, bias grad 1, input grad 1 + 3 + 4
        (lambda: nn.LayerNorm(5), (2, 4, 5), "native_layer_norm_backward", 13),
    ],
)
def test_pointwise_and_normalisation_backward_rules(module, shape, op, per_element):
    _, backward, by_op = step_flops(module(), shape, input_grad=True)
    elements = torch.Size(shape).numel()
    assert by_op[f"aten::{op}"] == per_element * elements
    assert backward == sum(by_op.values())


def test_pooling_backward_rules():
    # max pool 2x2 on (1, 4, 8, 8): 1 per grad_output element (64); adaptive average pooling
    # to 2x2: 1 per grad_output element (16) + 1 per input-gradient element (256)
    _, _, by_op = step_flops(nn.MaxPool2d(2), (1, 4, 8, 8), input_grad=True)
    assert by_op["aten::max_pool2d_with_indices_backward"] == 64
    _, _, by_op = step_flops(nn.AdaptiveAvgPool2d(2), (1, 4, 8, 8), input_grad=True)
    assert by_op["aten::_adaptive_avg_pool2d_backward"] == 16 + 256


def test_batch_norm_backward_pays_only_for_the_gradients_asked_for():
    aten = torch.ops.aten
    x = torch.empty(2, 4, 5, 5, device="meta")
    c = torch.empty(4, device="meta")
    expected = {(True, True, True): 7, (False, True, True): 3, (False, False, True): 1,
                (True, False, False): 7}
    for mask, per_element in expected.items():
        mode = FlopByteMode()
        with dynamo_stand_in(), mode:
            aten.native_batch_norm_backward(x, x, c, c, c, c, c, True, 1e-5, list(mask))
        assert mode.flops == per_element * 200, mask


def test_loss_rules():
    # cross-entropy of (4, 5) logits against class 0: log_softmax 5 per element (100),
    # nll_loss 1 per target (4); backward nll_loss 1 per target (4), log_softmax 4 per element
    ops = count_training_by_op(nn.Linear(10, 5).to("meta"), (4, 10))
    assert ops.forward_by_op["aten::_log_softmax"] == 100
    assert ops.forward_by_op["aten::nll_loss_forward"] == 4
    assert ops.backward_by_op["aten::nll_loss_backward"] == 4
    assert ops.backward_by_op["aten::_log_softmax_backward_data"] == 80


@pytest.mark.parametrize(("backbone", "head", "loss_op"),
                         [("resnet18", "pool", "aten::nll_loss_forward"),
                          ("mobilenet_v2", "none", "aten::pow")])
def test_other_heads_leave_nothing_uncounted(backbone, head, loss_op):
    # pooled features are (N, C): cross-entropy; a feature map takes the mean of squares
    model = build_model(backbone, "cbam", head, device="meta", input_shape=SHAPE)
    ops = count_training_by_op(model, SHAPE)
    assert ops.count.uncounted == {}
    assert loss_op in ops.forward_by_op


# ---- the whole zoo: nothing uncounted, ratios from the ops --------------------------------


@pytest.mark.parametrize(("backbone", "variant"), [
    (b, v) if b in ("resnet50", "mobilenet_v2") else pytest.param(b, v, marks=pytest.mark.slow)
    for b, v in ZOO  # every block type is in these two; the other depths run with -m slow
])
def test_zoo_training_leaves_nothing_uncounted(backbone, variant):
    result = zoo_count(backbone, variant)
    counted = result.count
    assert counted.uncounted == {}
    assert counted.backward > counted.forward > 0
    assert counted.backward_bytes > 0 and counted.forward_bytes > 0
    assert counted.activation_bytes > 0
    assert counted.loss == LOSS and counted.convention == "full" and counted.unit == "FLOP"
    assert (counted.attention_forward > 0) == (variant != "none")
    assert (counted.attention_backward > 0) == (variant != "none")
    assert counted.attention_backward < counted.backward
    assert sum(result.attention_backward_by_op.values()) == counted.attention_backward


def _stem_flops(model: nn.Module) -> int:
    stem = next(module for module in model.modules() if isinstance(module, nn.Conv2d))
    return count(nn.Sequential(stem), SHAPE, "full").value


@pytest.mark.parametrize("backbone", ["resnet50", "mobilenet_v2"])
def test_backward_is_the_sum_of_its_ops(backbone):
    result = zoo_count(backbone, "none")
    counted = result.count
    assert sum(result.forward_by_op.values()) == counted.forward
    assert sum(result.backward_by_op.values()) == counted.backward
    # every convolution (all bias-free) costs two forwards in backward, the stem one
    convolutions = result.forward_by_op["aten::convolution"]
    stem = _stem_flops(meta_model(backbone, "none"))
    assert result.backward_by_op["aten::convolution_backward"] == 2 * convolutions - stem
    # training batch norm: 5 per element forward, 7 per element backward (all gradients)
    assert (5 * result.backward_by_op["aten::native_batch_norm_backward"]
            == 7 * result.forward_by_op["aten::native_batch_norm"])


def test_backward_ratio_is_not_a_fixed_factor():
    resnet = zoo_count("resnet50", "none").count.backward_ratio
    mobilenet = zoo_count("mobilenet_v2", "none").count.backward_ratio
    sa = zoo_count("resnet50", "sa").count.backward_ratio
    assert 1.5 < resnet < 2.1 and 1.5 < mobilenet < 2.1
    assert abs(resnet - mobilenet) > 0.01
    assert resnet != sa
    assert resnet != 2.0


# ---- attention attribution in backward ------------------------------------------------------


def _alone(module: nn.Module, shape) -> tuple[int, int]:
    """Forward and backward FLOPs of ``module`` run alone on an input of ``shape`` that
    requires a gradient, in training mode (the step's counter: it prices as FlopByteMode,
    test_reused_meta_outputs_change_no_figure, and runs batch norm's meta kernels once)."""
    module.train()
    forward, backward = forward_backward(module, shape, True, counter=StepCounter)
    for param in module.parameters():
        param.grad = None
    return forward.flops, backward.flops


@pytest.mark.parametrize(("backbone", "variant"),
                         [("resnet18", "cbam"), ("resnet50", "sk"), ("resnet50", "bam"),
                          ("mobilenet_v2", "sa")])
def test_attention_backward_equals_the_modules_run_alone(backbone, variant):
    counted = zoo_count(backbone, variant).count
    model = meta_model(backbone, variant)
    shapes = []
    hooks = [module.register_forward_hook(
        lambda module, args, out: shapes.append((module, args[0].shape)))
        for _, module in model.attention_modules()]
    with torch.no_grad():
        model(torch.empty(SHAPE, device="meta"))
    for hook in hooks:
        hook.remove()
    alone = [_alone(module, shape) for module, shape in shapes]
    assert counted.attention_forward == sum(forward for forward, _ in alone)
    assert counted.attention_backward == sum(backward for _, backward in alone)


# ---- counting leaves the model as it was ---------------------------------------------------


def _hooks(model: nn.Module) -> int:
    found = 0
    for module in model.modules():
        found += len(module._forward_hooks) + len(module._forward_pre_hooks)
        found += len(module._backward_hooks) + len(module._backward_pre_hooks)
    for param in model.parameters():
        found += len(param._backward_hooks or {})
        found += len(getattr(param, "_post_accumulate_grad_hooks", None) or {})
    return found


def test_counting_leaves_the_meta_model_unchanged():
    model = meta_model("resnet18", "cbam")  # built in eval mode
    model.layer1.train()
    modes = [module.training for module in model.modules()]
    first = count_training(model, SHAPE)
    assert [module.training for module in model.modules()] == modes
    assert all(param.grad is None for param in model.parameters())
    assert _hooks(model) == 0
    assert count_training(model, SHAPE) == first


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                  nn.ReLU(inplace=True), nn.Dropout(0.5))
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


def test_counting_real_tensors_changes_nothing_and_agrees_with_meta():
    torch.manual_seed(0)
    model = _Small().eval()
    grads = {name: torch.full_like(p, 3.0) for name, p in model.named_parameters()}
    for name, param in model.named_parameters():
        param.grad = grads[name]
    state = {key: value.clone() for key, value in model.state_dict().items()}
    on_cpu = count_training(model, (2, 3, 6, 6))
    saved = saved_activation_bytes(model, torch.zeros(2, 3, 6, 6))
    assert not model.training and not any(m.training for m in model.modules())
    assert all(param.grad is grads[name] for name, param in model.named_parameters())
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())
    assert _hooks(model) == 0
    on_meta = count_training(_Small().to("meta"), (2, 3, 6, 6))
    assert on_cpu == on_meta
    assert saved == on_meta.activation_bytes


def test_reused_meta_outputs_change_no_figure(monkeypatch):
    cached = count_training_by_op(meta_model("resnet18", "sa"), SHAPE)
    monkeypatch.setattr(training_module.MetaOutputs, "key", lambda *args: None)
    assert count_training_by_op(meta_model("resnet18", "sa"), SHAPE) == cached


def test_reused_meta_outputs_tell_equal_scalars_of_other_types_apart():
    x = torch.empty(3, device="meta", dtype=torch.int64)
    with StepCounter():
        dtypes = [(x + 1).dtype, (x + 1.0).dtype, (x + True).dtype, (x + 1.0).dtype]
    assert dtypes == [torch.int64, torch.float32, torch.int64, torch.float32]


# ---- errors -----------------------------------------------------------------------------------


def test_a_batch_of_one_that_batch_norm_cannot_train_on_is_an_error():
    with pytest.raises(AttnprofError, match="batch of 2 or more"):
        count_training(meta_model("resnet18", "bam"), (1, 3, 64, 64))


def test_a_model_without_trainable_parameters_is_an_error():
    model = nn.Conv2d(3, 4, 3).to("meta").requires_grad_(False)
    with pytest.raises(AttnprofError, match="does not require a gradient"):
        count_training(model, (2, 3, 8, 8))


def test_saved_activation_bytes_needs_real_tensors():
    with pytest.raises(AttnprofError, match="real tensors"):
        saved_activation_bytes(nn.Conv2d(3, 4, 3).to("meta"), torch.empty(2, 3, 8, 8,
                                                                          device="meta"))
