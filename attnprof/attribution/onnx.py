"""Where an ONNX Runtime forward spends its time, in the same records as eager PyTorch's.

Caveats first: ONNX Runtime optimises the exported graph before it runs it, so its nodes are
not PyTorch's operators: convolutions absorb their BatchNorm and ReLU, element-wise chains
fuse, and layout conversions (``ReorderInput``, ``ReorderOutput``) appear where a blocked
operator meets a plain one. The operator count of a scope is therefore the runtime's, not the
``full`` count's (``counted_calls``, ``flops`` and ``bytes`` stay ``None``), and a fused node
belongs to the module of the exported node it is named after
(:mod:`attnprof.runtimes.onnx_profile`). Time between nodes (the session's own work, binding
the input, allocating outputs) is each call's ``between`` time in the backbone's scope.

The records are :mod:`attnprof.attribution.records`'s, runtime ``"onnxruntime"``: one
:class:`~attnprof.attribution.records.OpEvent` per node kernel, scoped to the attention module
it ran in, cut from each profiled call's ``model_run`` span.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.attribution.aggregate import attribute_variant
from attnprof.attribution.group import SEED
from attnprof.attribution.records import BACKBONE, ForwardProfile, GroupAttribution, OpEvent
from attnprof.counting.breakdown import attention_stages
from attnprof.counting.tracing import attention_paths
from attnprof.runtimes.base import Built, LoadRequest

PROFILER = "onnxruntime SessionOptions.enable_profiling (node kernel times)"
LEVEL = ("ONNX Runtime's optimised graph: one node kernel each, fused nodes and layout "
         "conversions included")


@dataclass(frozen=True)
class OnnxAttributionJob:
    """What a fresh process needs: each variant's model factory (for its attention modules'
    names) and its built ONNX Runtime artifact, the input and the threads."""

    variants: Mapping[str, Callable[[], nn.Module]]
    built: Mapping[str, Built]
    input_shape: tuple[int, ...]
    batch: int
    threads: int
    baseline: str = "none"
    calls: int = 10


def _forward(calls: int, events, runs_us) -> list[ForwardProfile]:
    per_call: list[list] = [[] for _ in range(calls)]
    for event, scope in events:
        per_call[event.call].append(OpEvent("op", event.op_type, scope, event.duration_us,
                                            event.node))
    profiles = []
    for call, span in enumerate(runs_us):
        inside = sum(e.duration_us for e in per_call[call])
        between = OpEvent("between", "", BACKBONE, max(span - inside, 0.0))
        # the span stays the run's own: nodes summing past it (overlapping threads, the
        # profiler's clock) show as a gap in the report, never as a stretched forward
        profiles.append(ForwardProfile(span_us=span,
                                       events=(*per_call[call], between),
                                       recorded=len(per_call[call])))
    return profiles


def run_job(job: OnnxAttributionJob, progress: Callable[[int, int], None] | None = None
            ) -> GroupAttribution:
    """Profile every variant's ONNX Runtime session and attribute its node time (the
    worker's entry point)."""
    import onnxruntime

    from attnprof.runtimes.onnx_profile import profile_nodes
    from attnprof.runtimes.onnx_rt import load

    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn((job.batch, *job.input_shape), generator=generator)
    request = LoadRequest(x, job.threads)
    variants = []
    for name, factory in job.variants.items():
        model = factory().eval()
        scopes = attention_paths(model)
        stages = attention_stages(model, scopes)
        profile = profile_nodes(job.built[name], request, job.calls)
        events = [(event, event.under(scopes) or BACKBONE) for event in profile.events]
        call = load(job.built[name], request)
        unprofiled = []
        for _ in range(job.calls):
            begin = time.perf_counter()
            call()
            unprofiled.append((time.perf_counter() - begin) * 1e3)
        variants.append(attribute_variant(name, _forward(job.calls, events, profile.runs_us),
                                          unprofiled, stages, None))
    return GroupAttribution(
        runtime="onnxruntime", profiler=PROFILER, level=LEVEL, input_shape=job.input_shape,
        batch=job.batch, threads=job.threads, dtype="float32", baseline=job.baseline,
        warmup=2, torch_version=f"onnxruntime {onnxruntime.__version__}",
        variants=tuple(variants),
    )
