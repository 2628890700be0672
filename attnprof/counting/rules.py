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
  (:mod:`attnprof.counting.fused_attention`), so a model counts the same fused or decomposed.

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
