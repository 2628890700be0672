"""FLOPs of the fused attention kernels, priced as the math they fuse.

Caveat first: a fused kernel (flash attention, the memory-efficient kernel, cuDNN's, PyTorch's
``_native_multi_head_attention`` and the transformer encoder fast path) runs one op where the
reference implementation runs a dozen, and it may skip work (masked blocks of a causal mask)
or redo some (the backward's recomputation). Here each is priced as the reference math it
replaces, term by term with the rules of :mod:`attnprof.counting.rules`, so the same model
counts the same on the meta device (where ``scaled_dot_product_attention`` decomposes into
``mul``, ``bmm`` and ``_safe_softmax``) and on a CPU or GPU (where it runs fused). The bytes
are the fused kernel's own: it reads q, k, v and writes its outputs once.

The reference math of attention over queries ``q (..., L, E)``, keys ``k (..., S, E)`` and
values ``v (..., S, Ev)``: q and k each scaled by the square root of the scale (1 per element),
the scores ``q k^T`` (2 per multiply-add), a mask or causal bias added (1 per score), the
softmax (5 per score), the product with v (2 per multiply-add).
"""

from __future__ import annotations

import math

from attnprof.counting.op_args import arg as _arg

SOFTMAX = 5
"""FLOPs per element of a softmax (max, subtract, exp, sum, divide), as in the rule table."""
RELU, GELU = 1, 5
LAYER_NORM_AFFINE = 7
"""FLOPs per element of an affine layer norm, as the rule table's ``native_layer_norm``."""


def attention_core(q_shape, k_shape, v_shape, masked: bool, scale_keys: bool = True) -> int:
    """The reference math of one scaled-dot-product attention, in FLOPs. ``scale_keys``:
    scaled_dot_product_attention's math scales q and k by the root of the scale each; the
    multi-head path that returns its weights scales q alone."""
    *batch, length, dim = q_shape
    source, value_dim = k_shape[-2], v_shape[-1]
    rows = math.prod(batch)
    scores = rows * length * source
    scale = rows * length * dim + (math.prod(k_shape) if scale_keys else 0)
    return (scale + 2 * scores * dim + (scores if masked else 0) + SOFTMAX * scores
            + 2 * scores * value_dim)


def sdpa_flash_cpu(args, kwargs, out) -> int:
    """_scaled_dot_product_flash_attention_for_cpu(q, k, v, dropout_p, is_causal, *,
    attn_mask, scale)."""
    q, k, v = args[:3]
    masked = _arg(args, kwargs, 4, "is_causal", False) or kwargs.get("attn_mask") is not None
    return attention_core(q.shape, k.shape, v.shape, bool(masked))


def sdpa_flash(args, kwargs, out) -> int:
    """_scaled_dot_product_flash_attention(q, k, v, dropout_p, is_causal, ...)."""
    q, k, v = args[:3]
    return attention_core(q.shape, k.shape, v.shape,
                          bool(_arg(args, kwargs, 4, "is_causal", False)))


def sdpa_with_bias(causal_index: int) -> object:
    """The efficient and cuDNN kernels: (q, k, v, attn_bias, ..., is_causal at
    ``causal_index``, ...)."""

    def formula(args, kwargs, out) -> int:
        q, k, v = args[:3]
        masked = (_arg(args, kwargs, 3, "attn_bias") is not None
                  or bool(_arg(args, kwargs, causal_index, "is_causal", False)))
        return attention_core(q.shape, k.shape, v.shape, masked)

    return formula


def _projection(rows: int, width_in: int, width_out: int, bias) -> int:
    """A linear layer on ``rows`` rows: 2 per multiply-add, 1 per output for the bias."""
    return 2 * rows * width_in * width_out + (rows * width_out if bias is not None else 0)


def _multi_head(query, key, value, embed_dim: int, heads: int, qkv_bias, proj_bias,
                masked: bool, weights: bool, average: bool) -> int:
    """In-projections, the attention core per head, out-projection; with ``weights`` returned,
    averaged over heads when ``average``."""
    batch, length = query.shape[0], query.shape[1]
    source = key.shape[1]
    in_rows = batch * length + 2 * batch * source
    head_dim = embed_dim // heads
    core = attention_core((batch, heads, length, head_dim), (batch, heads, source, head_dim),
                          (batch, heads, source, head_dim), masked, scale_keys=not weights)
    averaged = batch * heads * length * source + batch * length * source if average else 0
    return (_projection(in_rows, embed_dim, embed_dim, qkv_bias) + core
            + _projection(batch * length, embed_dim, embed_dim, proj_bias) + averaged)


def native_multi_head_attention(args, kwargs, out) -> int:
    """_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight,
    qkv_bias, proj_weight, proj_bias, mask, need_weights, average_attn_weights, mask_type)."""
    query, key, value, embed_dim, heads = args[:5]
    mask = _arg(args, kwargs, 9, "mask")
    need_weights = bool(_arg(args, kwargs, 10, "need_weights", True))
    average = bool(_arg(args, kwargs, 11, "average_attn_weights", True))
    return _multi_head(query, key, value, embed_dim, heads, args[6], args[8], mask is not None,
                       need_weights, need_weights and average)


def transformer_encoder_layer(args, kwargs, out) -> int:
    """_transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias,
    proj_weight, proj_bias, use_gelu, norm_first, eps, norm_weight_1, norm_bias_1,
    norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask,
    mask_type): self-attention, two residual adds, two layer norms, the feed-forward pair."""
    src, embed_dim, heads = args[:3]
    use_gelu = bool(args[7])
    ffn_weight_1, ffn_bias_1, _, ffn_bias_2 = args[14:18]
    mask = _arg(args, kwargs, 18, "mask")
    tokens = src.shape[0] * src.shape[1]
    hidden = ffn_weight_1.shape[0]
    attention = _multi_head(src, src, src, embed_dim, heads, args[4], args[6], mask is not None,
                            False, False)
    feed_forward = (_projection(tokens, embed_dim, hidden, ffn_bias_1)
                    + (GELU if use_gelu else RELU) * tokens * hidden
                    + _projection(tokens, hidden, embed_dim, ffn_bias_2))
    residuals = 2 * tokens * embed_dim
    norms = 2 * LAYER_NORM_AFFINE * tokens * embed_dim
    return attention + feed_forward + residuals + norms
