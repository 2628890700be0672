"""Latency a reviewer can trust: paired, with robust statistics and full context.

- :func:`measure_latency`: one model, per batch size: median, IQR, a distribution-free 95% CI
  of the median, throughput and peak memory, with the environment embedded in each record;
- :func:`paired_latency`: the variants of one model in bracketed rounds, each compared with
  the baseline samples right before and after its own, in several fresh processes: median
  ratio, delta % and its 95% CI across processes (it holds for a new run), raw samples kept;
- :func:`time_attention_modules`: each distinct attention module timed alone on the feature map
  it sees, to show which stage's module costs most.
"""

from importlib import import_module

_WHERE = {
    "Environment": "environment", "collect_environment": "environment",
    "PEAK_MEM_KINDS": "memory", "time_attention_modules": "modules",
    "backbone_variants": "paired", "paired_latency": "paired",
    "DiscardedRound": "records", "LatencyRecord": "records", "ModuleTiming": "records",
    "PairedComparison": "records", "PairedRatio": "records", "VariantTiming": "records",
    "RunSettings": "settings", "resolve_settings": "settings", "measure_latency": "timing",
    "Condition": "spec", "Replication": "spec", "TimingSpec": "spec", "timing_spec": "spec",
    "replication_plan": "spec", "MODES": "modes", "GroupPlan": "replicate",
    "run_groups": "schedule",
}
"""Loaded on first use: the timing modules import torch.utils.benchmark, which a count (whose
records live in :mod:`.records`) has no need of."""


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'attnprof.latency' has no attribute {name!r}")
    return getattr(import_module(f"attnprof.latency.{_WHERE[name]}"), name)


__all__ = [
    "MODES",
    "PEAK_MEM_KINDS",
    "Condition",
    "DiscardedRound",
    "Environment",
    "GroupPlan",
    "LatencyRecord",
    "ModuleTiming",
    "PairedComparison",
    "PairedRatio",
    "Replication",
    "RunSettings",
    "TimingSpec",
    "VariantTiming",
    "backbone_variants",
    "collect_environment",
    "measure_latency",
    "paired_latency",
    "replication_plan",
    "resolve_settings",
    "run_groups",
    "time_attention_modules",
    "timing_spec",
]
