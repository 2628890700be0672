"""The ``full`` convention's rule table: one aten op -> one small formula giving its FLOPs.

FLOPs are not a well-defined quantity; these rules are one explicit, documented choice, made so
that nothing that does arithmetic is silently 0. The principles:

- one FLOP is one scalar arithmetic operation, elementary functions (exp, log, sqrt, tanh, erf)
  included; a multiply-add is 2 FLOPs;
- matrix products and convolutions: 2 per multiply-add, plus 1 per output element for a bias;
- pointwise ops: 1 per output element, or the number of operations of their textbook formula
  (sigmoid = 1 / (1 + exp(-x)) is 4: negate, exp, add, divide);
- reductions and pooling: 1 per input element (one add, compare or max per element read), plus
  what the formula does per output element where it says so (mean's division);
- normalisations: statistics 3 per element (one pass accumulating x and x^2: add, multiply,
  add), applying them 2 per element (``x * scale + shift`` with the affine folded into the
  per-channel scale and shift, as the eager kernels do);
- data movement (views, copies, concatenation, padding, allocation): 0 FLOPs, but its bytes
  still count;
- fused attention kernels (scaled-dot-product attention's, multi-head attention's and the
  transformer encoder layer's fast paths): the FLOPs of the math they fuse
  (:mod:`attnprof.counting.fused_attention`), so a model counts the same fused or decomposed;
- backward ops (a training step, :mod:`attnprof.counting.training`): priced by the math they
  do, never as a multiple of the forward. A convolution's input gradient and its weight
  gradient each cost the forward's multiply-adds, and only the gradients an op is asked for
  (its ``output_mask``) are paid, so the first layer's backward costs one forward, not two;
  activation and softmax gradients count their textbook formula per element; normalisation
  gradients the sums they take (of g, of g * x) and the ``g * a + x * b + c`` they apply;
  max pooling gradients 1 per element they scatter, average pooling 1 per element on either
  side; handing a gradient back to a view's base is data movement. Backward ops that reuse
  forward ops (a Linear's mm and sum, mean's expand and div) are priced by the forward rules.

Memory traffic (``traffic``) is eager and unfused: every op reads its tensor inputs and writes
its outputs. A tensor is counted once per op however often it is passed (``x * x`` reads x
once), broadcast (stride-0) dimensions count once, views move nothing, an in-place op reads and
writes its target, an ``out=`` tensor and the target of ``copy_`` are only written, allocations
touch nothing and fills only write. Parameters are read like any other input.

An op missing from :data:`RULES` is *unhandled*: the counter reports it under ``uncounted``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from attnprof.counting import fused_attention as fused
from attnprof.counting.op_args import arg as _arg

aten = torch.ops.aten

Formula = Callable[[tuple, dict, object], int]
"""``formula(args, kwargs, out) -> FLOPs``, called after the op ran (so ``out`` exists)."""


# ---- helpers ------------------------------------------------------------------------------


def _tensors(value):
    """The tensors in an argument or output, looking inside lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def numel(value) -> int:
    """Elements of the first tensor in ``value`` (looking inside lists and tuples), else 0."""
    tensor = next(_tensors(value), None)
    return 0 if tensor is None else tensor.numel()


# ---- handler factories -------------------------------------------------------------------


def per_output(flops: int) -> Formula:
    """``flops`` per output element (pointwise ops)."""

    def formula(args, kwargs, out) -> int:
        return flops * numel(out)

    formula.__doc__ = f"{flops} per output element"
    return formula


def per_input(flops: int, per_out: int = 0) -> Formula:
    """``flops`` per element of the first input, plus ``per_out`` per output element
    (reductions, pooling, normalisations)."""

    def formula(args, kwargs, out) -> int:
        return flops * numel(args) + per_out * numel(out)

    formula.__doc__ = f"{flops} per input element + {per_out} per output element"
    return formula


def _zero_family(doc: str) -> Formula:
    def formula(args, kwargs, out) -> int:
        return 0

    formula.__doc__ = doc
    return formula


# The four zero-FLOP families; which one an op belongs to also says what memory it touches.
VIEW = _zero_family("0: a view or alias of its input; moves no data")
COPY = _zero_family("0: data movement; reads its inputs and writes its output")
FILL = _zero_family("0: fills or creates a tensor; writes its output only")
ALLOC = _zero_family("0: allocates without initialising; touches no data")


# ---- matrix products and convolutions ----------------------------------------------------
# Each product is described by its multiply-adds and its bias adds, kept apart so that a rule
# text can name either ("macs", "bias"; see attnprof.counting.rule_text); the ``full`` formula
# is 2 per multiply-add plus 1 per bias add.


def _conv_macs(args, kwargs, out) -> int:
    """aten.convolution / _convolution(input, weight, bias, stride, padding, dilation,
    transposed, output_padding, groups)."""
    x, weight = args[0], args[1]
    kernel = math.prod(weight.shape[2:])
    if bool(_arg(args, kwargs, 6, "transposed", False)):
        # weight is (C_in, C_out / groups, k...): every input element meets C_out/groups * k
        # weights.
        return x.numel() * weight.shape[1] * kernel
    # weight is (C_out, C_in / groups, k...): every output element is a dot product of length
    # C_in/groups * k.
    return numel(out) * weight.shape[1] * kernel


def _mm_macs(args, kwargs, out) -> int:
    a, b = args[0], args[1]  # (n, k) @ (k, m)
    return a.shape[0] * a.shape[1] * b.shape[1]


def _bmm_macs(args, kwargs, out) -> int:
    a, b = args[0], args[1]  # (B, n, k) @ (B, k, m)
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _first_numel_macs(args, kwargs, out) -> int:
    return args[0].numel()  # mv (n, k) @ (k,) and dot: one multiply-add per matrix element


def _linear_macs(args, kwargs, out) -> int:
    return numel(out) * args[1].shape[1]  # weight (out, in)


def _skip_first(measure):
    """For the add-forms (addmm(bias, a, b), ...): the product's operands come after the bias."""
    return lambda args, kwargs, out: measure(args[1:], kwargs, out)


def _bias_argument(args, kwargs, out) -> int:
    return numel(out) if _arg(args, kwargs, 2, "bias") is not None else 0


def _per_output_bias(args, kwargs, out) -> int:
    return numel(out)


def _no_bias(args, kwargs, out) -> int:
    return 0


MACS: dict[str, Formula] = {
    "convolution": _conv_macs, "_convolution": _conv_macs, "mm": _mm_macs,
    "addmm": _skip_first(_mm_macs), "bmm": _bmm_macs, "baddbmm": _skip_first(_bmm_macs),
    "mv": _first_numel_macs, "addmv": _skip_first(_first_numel_macs), "dot": _first_numel_macs,
    "vdot": _first_numel_macs, "linear": _linear_macs,
}
"""Multiply-adds of each convolution and matrix-product op, by op name."""

BIAS: dict[str, Formula] = {
    "convolution": _bias_argument, "_convolution": _bias_argument, "linear": _bias_argument,
    "addmm": _per_output_bias, "baddbmm": _per_output_bias, "addmv": _per_output_bias,
    "mm": _no_bias, "bmm": _no_bias, "mv": _no_bias, "dot": _no_bias, "vdot": _no_bias,
}
"""Bias adds (one per output element where the op adds a bias) of the same ops."""


def _product(name: str) -> Formula:
    macs, bias = MACS[name], BIAS[name]

    def formula(args, kwargs, out) -> int:
        return 2 * macs(args, kwargs, out) + bias(args, kwargs, out)

    formula.__doc__ = "2 per multiply-add + 1 per bias add"
    return formula


# ---- normalisations ----------------------------------------------------------------------


def _batch_norm(training_index: int | None) -> Formula:
    """Batch norm: in eval mode ``x * scale + shift`` with the running statistics and the affine
    folded into per-channel scale and shift (2 per element; the O(C) folding is not counted);
    in training mode the batch statistics first (3 per element). ``training_index`` is the
    position of the ``training`` flag, ``None`` for the always-eval variant."""

    def formula(args, kwargs, out) -> int:
        training = False
        if training_index is not None:
            training = bool(_arg(args, kwargs, training_index, "training", False))
        return (3 + 2 if training else 2) * args[0].numel()

    return formula


def _layer_norm(args, kwargs, out) -> int:
    # native_layer_norm(input, normalized_shape, weight, bias, eps): statistics 3, normalise
    # (x - mean) * rstd 2, and the element-wise affine 2 more (weights vary per element, so
    # they cannot be folded into one scale per row).
    weight = _arg(args, kwargs, 2, "weight")
    return (3 + 2 + (2 if weight is not None else 0)) * args[0].numel()


def _gelu(args, kwargs, out) -> int:
    # exact: x * 0.5 * (1 + erf(x / sqrt(2))) = 5; tanh approximation:
    # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))) = 9.
    approximate = _arg(args, kwargs, 1, "approximate", "none")
    return (9 if approximate == "tanh" else 5) * numel(out)


# ---- the table ---------------------------------------------------------------------------

RULES: dict[object, Formula] = {}


def _add(names: str, formula: Formula, inplace: bool = False) -> None:
    """Map each aten op in ``names`` (space-separated) to ``formula``; with ``inplace`` also
    its in-place twin (``relu`` and ``relu_``)."""
    for name in names.split():
        for variant in (name, name + "_") if inplace else (name,):
            packet = getattr(aten, variant, None)
            if packet is not None:
                RULES[packet] = formula


# Matrix products and convolutions: 2 per multiply-add, +1 per output element for a bias.
for _name in MACS:
    _add(_name, _product(_name))

# Elementary pointwise ops: 1 per output element (arithmetic, comparisons, selections,
# clamps, elementary functions).
_add(
    "add sub rsub mul div neg abs sign sgn reciprocal pow remainder fmod floor_divide "
    "maximum minimum fmax fmin clamp clamp_min clamp_max hardtanh threshold relu "
    "exp exp2 expm1 log log2 log10 log1p sqrt rsqrt sin cos tan tanh erf atan2 hypot "
    "floor ceil round trunc frac copysign xlogy square nan_to_num where masked_fill "
    "eq ne lt le gt ge logical_not logical_and logical_or logical_xor "
    "bitwise_not bitwise_and bitwise_or bitwise_xor",
    per_output(1),
    inplace=True,
)
# Two-operation pointwise ops: leaky_relu / prelu (multiply, select), addcmul (multiply, add),
# addcdiv (divide, add).
_add("leaky_relu _prelu_kernel addcmul addcdiv", per_output(2), inplace=True)
# Three: lerp a + w * (b - a); hardsigmoid relu6(x + 3) / 6 (add, clamp, divide);
# elu (exp, subtract, multiply, with the select folded in); softplus log(1 + exp(x)).
_add("lerp hardsigmoid elu softplus", per_output(3), inplace=True)
# Four: sigmoid 1 / (1 + exp(-x)) (negate, exp, add, divide); hardswish x * hardsigmoid(x);
# log_sigmoid -log(1 + exp(-x)).
_add("sigmoid hardswish log_sigmoid_forward", per_output(4), inplace=True)
# Five: silu x * sigmoid(x); mish x * tanh(softplus(x)).
_add("silu mish", per_output(5), inplace=True)
# gelu: 5 exact (erf form) or 9 (tanh approximation).
_add("gelu", _gelu, inplace=True)

# Softmax over a dimension: max (1), subtract (1), exp (1), sum (1), divide (1) per element;
# log-softmax subtracts the log of the sum instead of dividing: also 5. _safe_softmax (the
# attention math path's: rows entirely masked give 0, not NaN) is a softmax too.
_add("_softmax _log_softmax softmax log_softmax _safe_softmax", per_output(fused.SOFTMAX))

# Fused attention kernels, priced as the math they fuse (see attnprof.counting.fused_attention):
# scaled_dot_product_attention's CPU, flash, memory-efficient and cuDNN kernels, the
# multi-head attention fast path and the transformer encoder layer fast path.
_add("_scaled_dot_product_flash_attention_for_cpu", fused.sdpa_flash_cpu)
_add("_scaled_dot_product_flash_attention", fused.sdpa_flash)
_add("_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention",
     fused.sdpa_with_bias(causal_index=6))
_add("_scaled_dot_product_fused_attention_overrideable _scaled_dot_product_attention_math",
     fused.sdpa_with_bias(causal_index=5))
_add("_native_multi_head_attention", fused.native_multi_head_attention)
_add("_transformer_encoder_layer_fwd", fused.transformer_encoder_layer)

# Reductions: 1 per input element. mean adds one division per output element; var and std
# accumulate x and x^2 (3 per input element) and finish with mean and variance (2 per output
# element; the correction's division is folded in), std with a square root (1 more); the
# 2-norm squares and adds (2 per input element) and takes a root per output; logsumexp takes
# an exp and an add per input element and a log per output.
_add("sum nansum prod amax amin max min argmax argmin aminmax any all cumsum cumprod",
     per_input(1), inplace=True)
_add("mean nanmean", per_input(1, per_out=1))
_add("var var_mean", per_input(3, per_out=2))
_add("std std_mean", per_input(3, per_out=3))
_add("linalg_vector_norm norm", per_input(2, per_out=1))
_add("logsumexp", per_input(2, per_out=1))

# Pooling: 1 per input element (each element read once and added or compared), whatever the
# window; adaptive pooling to 1x1 reaches here as mean/amax and gets the same count.
_add(
    "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices "
    "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d "
    "adaptive_avg_pool3d _adaptive_avg_pool2d _adaptive_avg_pool3d "
    "adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d",
    per_input(1),
)

# Normalisations (see the factory's docstring): batch norm 2 per element in eval, 5 in
# training; group norm statistics per (sample, group) 3 + apply 2, its affine folded into a
# per-(sample, channel) scale and shift; layer norm see _layer_norm.
_add("native_batch_norm _native_batch_norm_legit", _batch_norm(training_index=5))
_add("_native_batch_norm_legit_no_training", _batch_norm(training_index=None))
_add("native_group_norm", per_input(5))
_add("native_layer_norm", _layer_norm)

# Interpolating upsampling, per output element with the weights precomputed: linear 2 taps
# (2 multiplies, 1 add = 3), bilinear 4 taps (7), trilinear 8 taps (15), bicubic 16 taps (31).
# Nearest-neighbour upsampling only copies (see data movement below).
_add("upsample_linear1d", per_output(3))
_add("upsample_bilinear2d", per_output(7))
_add("upsample_trilinear3d", per_output(15))
_add("upsample_bicubic2d", per_output(31))

# Data movement, 0 FLOPs. Views and aliases move nothing (0 bytes).
_add(
    "view _unsafe_view _reshape_alias reshape permute expand expand_as t transpose "
    "unsqueeze squeeze slice select split split_with_sizes unbind chunk narrow as_strided "
    "alias detach diagonal unfold view_as flatten lift_fresh",
    VIEW,
)
# Copies, concatenation, padding, gathers, shuffles: read and write.
_add(
    "clone _to_copy copy_ contiguous cat stack constant_pad_nd reflection_pad1d "
    "reflection_pad2d replication_pad1d replication_pad2d repeat roll flip index_select "
    "gather index _unsafe_index channel_shuffle native_channel_shuffle pixel_shuffle "
    "pixel_unshuffle upsample_nearest1d upsample_nearest2d upsample_nearest3d "
    "_upsample_nearest_exact2d lift_fresh_copy",
    COPY,
)
# Creation and fills: write their output only.
_add(
    "zeros zeros_like ones ones_like full full_like new_zeros new_ones new_full fill zero "
    "scalar_tensor arange",
    FILL,
    inplace=True,
)
# Uninitialised allocations: touch nothing.
_add("empty empty_like empty_strided new_empty new_empty_strided", ALLOC)

# ---- backward ops and losses (a training step) --------------------------------------------
# What autograd runs for a training step (attnprof.counting.training): the loss, the ops that
# only run in training mode, and the backward kernels. Backward ops that merely reuse forward
# ops (a Linear's grads are mm and sum, mean's is expand and div) are priced by the rules
# above; those below are the backward's own. A ``*_backward`` op with an ``output_mask`` pays
# only for the gradients asked for (the first layer computes no input gradient).


def _conv_backward(args, kwargs, out) -> int:
    """convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
    transposed, output_padding, groups, output_mask): the input gradient is a convolution of
    grad_output with the weight, the weight gradient one of grad_output with the input, each
    with the forward's multiply-adds; the bias gradient sums grad_output."""
    grad_output, x, weight = args[0], args[1], args[2]
    mask = _arg(args, kwargs, 10, "output_mask", (True, True, True))
    kernel = math.prod(weight.shape[2:])
    if bool(_arg(args, kwargs, 7, "transposed", False)):
        macs = x.numel() * weight.shape[1] * kernel
    else:
        macs = grad_output.numel() * weight.shape[1] * kernel
    return 2 * macs * (int(bool(mask[0])) + int(bool(mask[1]))) + (
        grad_output.numel() if mask[2] else 0)


def _norm_backward(mask_index: int, train_index: int | None) -> Formula:
    """Batch and group norm backward, per element of the input: the sums of g (1: add) and of
    g * x (2: multiply, add; the mean correction of the weight gradient is per channel, not
    counted) where a gradient needs them, and the input gradient ``g * a + x * b + c`` (4) with
    the per-channel a, b, c folded, as the forward folds its scale and shift; batch norm in
    eval mode uses fixed statistics, so its input gradient is ``g * scale`` (1) and needs no
    sums. ``train_index`` is where batch norm's ``train`` flag sits (None: group norm, always
    batch statistics)."""

    def formula(args, kwargs, out) -> int:
        grad_input, grad_weight, grad_bias = (bool(m) for m in
                                              _arg(args, kwargs, mask_index, "output_mask"))
        train = True if train_index is None else bool(_arg(args, kwargs, train_index, "train"))
        per_element = (1 if grad_bias or grad_weight or (grad_input and train) else 0)
        per_element += 2 if grad_weight or (grad_input and train) else 0
        per_element += (4 if train else 1) if grad_input else 0
        return per_element * args[1].numel()

    return formula


def _layer_norm_backward(args, kwargs, out) -> int:
    """native_layer_norm_backward(grad_out, input, normalized_shape, mean, rstd, weight, bias,
    output_mask), per element: x_hat = (x - mean) * rstd (2) where a gradient needs it; the
    weight gradient sums g * x_hat (2), the bias gradient g (1); the input gradient scales g by
    the weight (1, with one), sums it and its product with x_hat per row (3) and applies
    ``(g_w - mean(g_w) - x_hat * mean(g_w * x_hat)) * rstd`` (4)."""
    grad_input, grad_weight, grad_bias = (bool(m) for m in
                                          _arg(args, kwargs, 7, "output_mask"))
    weight = _arg(args, kwargs, 5, "weight")
    per_element = 2 if grad_input or grad_weight else 0
    per_element += (2 if grad_weight else 0) + (1 if grad_bias else 0)
    if grad_input:
        per_element += (1 if weight is not None else 0) + 3 + 4
    return per_element * args[1].numel()


def _gelu_backward(args, kwargs, out) -> int:
    # exact: g * (cdf + x * pdf), cdf 0.5 * (1 + erf(x / sqrt 2)) 4, pdf exp(-x^2 / 2) / sqrt(2
    # pi) 4, the rest 3 = 11; tanh approximation: the inner polynomial 5, tanh 1, 0.5 * (1 + t)
    # 2, its derivative 0.5 x (1 - t^2) k (1 + 3 c x^2) 9, add and multiply by g 2 = 19.
    approximate = _arg(args, kwargs, 2, "approximate", "none")
    return (19 if approximate == "tanh" else 11) * numel(out)


def _per_element_of(index: int) -> Formula:
    """1 per element of the tensor argument at ``index`` (nll_loss's target: one per sample;
    scatter_add's source: one add per element)."""

    def formula(args, kwargs, out) -> int:
        return args[index].numel()

    formula.__doc__ = f"1 per element of argument {index}"
    return formula


def _accumulating_put(args, kwargs, out) -> int:
    # index_put(self, indices, values, accumulate): 1 per value element when it accumulates
    # (the backward of indexing), else data movement (0).
    return numel(args[2]) if bool(_arg(args, kwargs, 3, "accumulate", False)) else 0


# Convolution backward: 2 per multiply-add of the forward for each of the input and the weight
# gradients asked for (output_mask), 1 per grad_output element for the bias gradient; so a
# bias-free convolution's backward is 2x its forward, 1x without the input gradient.
_add("convolution_backward", _conv_backward)
# Normalisation backward (see _norm_backward): batch norm in training 1 + 2 + 4 = 7 per element
# with all three gradients, group norm likewise; layer norm see _layer_norm_backward (13 with
# its affine).
_add("native_batch_norm_backward batch_norm_backward", _norm_backward(9, train_index=7))
_add("native_group_norm_backward", _norm_backward(9, train_index=None))
_add("native_layer_norm_backward", _layer_norm_backward)
# Activation backward, per element: threshold (ReLU) one comparison selecting g or 0, the
# selection folded in as in the forward's clamps (1); hardtanh (ReLU6) two comparisons (2);
# leaky_relu a comparison and a multiply by the slope (2).
_add("threshold_backward", per_output(1))
_add("hardtanh_backward leaky_relu_backward", per_output(2))
# sigmoid g * y * (1 - y) and tanh g * (1 - y^2), from the saved output: 3 each; hardsigmoid
# two comparisons and g / 6 (3).
_add("sigmoid_backward tanh_backward hardsigmoid_backward", per_output(3))
# hardswish two comparisons and g * (x / 3 + 0.5) (5); silu the sigmoid (4) and
# g * s * (1 + x * (1 - s)) (5) = 9; gelu see _gelu_backward.
_add("hardswish_backward", per_output(5))
_add("silu_backward", per_output(9))
_add("gelu_backward", _gelu_backward)
# Softmax backward from the saved output y: y * (g - sum(g * y)) is multiply, sum, subtract,
# multiply (4 per element); log-softmax g - exp(y) * sum(g) is sum, exp, multiply, subtract (4).
_add("_softmax_backward_data _log_softmax_backward_data", per_output(4))
# Max pooling backward: 1 per grad_output element, added into the (zeroed) input gradient at
# its argmax; the zeroing is data movement.
_add("max_pool2d_with_indices_backward max_pool3d_with_indices_backward "
     "adaptive_max_pool2d_backward adaptive_max_pool3d_backward", per_input(1))
# Average pooling backward: 1 per grad_output element (division by the window) and 1 per
# input-gradient element (the adds gathering the windows that cover it).
_add("avg_pool2d_backward avg_pool3d_backward _adaptive_avg_pool2d_backward "
     "_adaptive_avg_pool3d_backward", per_input(1, per_out=1))
# Upsampling backward, per grad_output element: nearest adds it into one input element (1);
# bilinear spreads it over 4 taps, a multiply and an add each (8).
_add("upsample_nearest2d_backward _upsample_nearest_exact2d_backward", per_input(1))
_add("upsample_bilinear2d_backward", per_input(8))
# The loss (attnprof.passes.loss_of; cross-entropy is log_softmax + nll_loss): nll_loss picks
# each sample's log-probability and adds it, 1 per target element (the negation and the mean's
# division are O(1)); its backward writes -g / total_weight at each target, 1 per target
# element, into a zeroed gradient (data movement).
_add("nll_loss_forward nll_loss2d_forward", _per_element_of(1))
_add("nll_loss_backward nll_loss2d_backward", _per_element_of(2))
# Dropout in training mode: bernoulli draws a uniform number and compares it with p, 1 per
# element (the generator's own arithmetic not counted); native_dropout draws and multiplies by
# the mask and the scale (3); its backward g * mask * scale (2).
_add("bernoulli", per_output(1), inplace=True)
_add("native_dropout", per_output(3))
_add("native_dropout_backward", per_output(2))
# Backward data movement, 0 FLOPs: scattering a view's gradient into a zeroed gradient of its
# base (select, slice, diagonal, unfold, index_select backward, the *_scatter ops) and scatter
# with a value or source (max.dim's backward); reads and writes.
_add("select_backward slice_backward diagonal_backward unfold_backward index_select_backward "
     "select_scatter slice_scatter diagonal_scatter as_strided_scatter scatter",
     COPY)
# Accumulating scatters (backward of gather and of indexing): 1 per added element.
_add("scatter_add", _per_element_of(3))
_add("index_put _index_put_impl _unsafe_index_put", _accumulating_put, inplace=True)


_ZERO_FAMILIES = (VIEW, COPY, FILL, ALLOC)


def rule_for(func) -> Formula | None:
    """The formula of an op overload (``aten.relu_.default``), or None when unhandled."""
    return RULES.get(func.overloadpacket)


def op_name(func) -> str:
    """An op overload's name as fvcore and the uncounted lists write it: ``aten::relu_``."""
    return func._schema.name


def moves_data_only(func) -> bool:
    """Whether an op does no arithmetic under these rules (views, copies, fills, allocations).

    Unhandled ops are assumed to compute, so a census reports them rather than hiding them.
    """
    rule = rule_for(func)
    if rule is None:
        return bool(getattr(func, "is_view", False))
    return rule in _ZERO_FAMILIES


def traffic(func, args: tuple, kwargs: dict, out) -> int:
    """Bytes an op reads and writes, eager and unfused (see the module docstring)."""
    rule = rule_for(func)
    if rule is VIEW or rule is ALLOC or (rule is None and getattr(func, "is_view", False)):
        return 0
    written = _footprint(_tensors(out))
    if rule is FILL:
        return written
    # Arguments an op only writes to are not read: ``out=`` tensors, and the target of an
    # in-place copy (``copy_``'s self). An in-place op's own target (``relu_``'s self) is read.
    not_read = {
        arg.name
        for arg in func._schema.arguments
        if arg.alias_info is not None and arg.alias_info.is_write
        and (arg.kwarg_only or rule is COPY)
    }
    schema_args = func._schema.arguments
    inputs = [
        value for index, value in enumerate(args)
        if index >= len(schema_args) or schema_args[index].name not in not_read
    ]
    inputs += [value for name, value in kwargs.items() if name not in not_read]
    return _footprint(t for value in inputs for t in _tensors(value)) + written


def _footprint(tensors) -> int:
    """Bytes of the distinct tensors given: each (storage, offset, shape, strides) once, and a
    broadcast (stride-0) dimension once."""
    seen: dict[tuple, int] = {}
    for tensor in tensors:
        try:
            storage = tensor.untyped_storage()._cdata
        except (RuntimeError, NotImplementedError, AttributeError):
            storage = id(tensor)
        key = (storage, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()))
        if key not in seen:
            sizes = zip(tensor.shape, tensor.stride(), strict=True)
            elements = math.prod(size for size, stride in sizes if stride != 0)
            seen[key] = elements * tensor.element_size() if tensor.numel() else 0
    return sum(seen.values())
