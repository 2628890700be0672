"""Where a forward's time goes: measured time per operator, the attention modules' apart.

Caveats first: the times are measured under a profiler, which slows every operator call a
little (each record keeps unprofiled forwards beside the profiled ones to show by how much);
eager PyTorch on the CPU only, so far; and the explanation of a Δ is an additive estimate
(:mod:`~attnprof.attribution.explain`).

For one group of variants (one backbone, input, batch and thread count), in one process:

- :func:`attribute_group` builds each variant, counts it under ``full`` per operator call,
  profiles its forwards with ``torch.profiler`` (each attention module's forward labelled),
  and returns a :class:`GroupAttribution`: per variant, the backbone's and each attention
  module's operators (calls per forward, measured ms, the ``full`` count's calls, FLOPs and
  bytes), the time that was dispatch or Python between operators, the profiled and unprofiled
  forwards; with the Δ against the baseline, the extra operator calls, and the attention
  modules' share of the Δ;
- :func:`explain` splits a variant's Δ latency into what its extra bytes cost at the probed
  bandwidth, what its extra operator calls cost at the probed fixed cost per operator
  (:func:`attnprof.machine.probe_machine`), and what is left (:class:`Explanation`).

Which operator calls count (the profiler nests ``conv2d -> convolution -> _convolution ->
mkldnn_convolution``) is settled in :mod:`~attnprof.attribution.levels`; which modules are
attention is what :func:`attnprof.counting.tracing.attention_paths` says, as for every count.
Another runtime's profiler (ONNX Runtime's per-node trace) feeds the same records through
:func:`attribute_variant` with :class:`OpEvent` stretches of its own.
"""

from attnprof.attribution.aggregate import attribute_variant
from attnprof.attribution.explain import explain
from attnprof.attribution.group import DEFAULT_FORWARDS, DEFAULT_WARMUP, attribute_group
from attnprof.attribution.records import (
    BACKBONE,
    EVENT_KINDS,
    Explanation,
    ForwardProfile,
    GroupAttribution,
    OpEvent,
    OpRow,
    ScopeAttribution,
    VariantAttribution,
)

__all__ = [
    "BACKBONE",
    "DEFAULT_FORWARDS",
    "DEFAULT_WARMUP",
    "EVENT_KINDS",
    "Explanation",
    "ForwardProfile",
    "GroupAttribution",
    "OpEvent",
    "OpRow",
    "ScopeAttribution",
    "VariantAttribution",
    "attribute_group",
    "attribute_variant",
    "explain",
]
