"""Latency a reviewer can trust: Timer-based, paired, with robust statistics and full context.

- :func:`measure_latency`: one model, per batch size: median, IQR, a distribution-free 95% CI
  of the median, throughput and peak memory, with the environment embedded in each record;
- :func:`paired_latency`: the variants of one model in interleaved rounds, each compared with
  the baseline within the round, in several fresh processes: median ratio, delta % and its 95%
  CI across processes (it holds for a new run), raw samples kept;
- :func:`time_attention_modules`: each distinct attention module timed alone on the feature map
  it sees, to show which stage's module costs most.
"""

from attnprof.latency.environment import Environment, collect_environment
from attnprof.latency.memory import PEAK_MEM_KINDS
from attnprof.latency.modules import time_attention_modules
from attnprof.latency.paired import backbone_variants, paired_latency
from attnprof.latency.records import (
    DiscardedRound,
    LatencyRecord,
    ModuleTiming,
    PairedComparison,
    PairedResult,
)
from attnprof.latency.settings import RunSettings, resolve_settings
from attnprof.latency.timing import measure_latency

__all__ = [
    "PEAK_MEM_KINDS",
    "DiscardedRound",
    "Environment",
    "LatencyRecord",
    "ModuleTiming",
    "PairedComparison",
    "PairedResult",
    "RunSettings",
    "backbone_variants",
    "collect_environment",
    "measure_latency",
    "paired_latency",
    "resolve_settings",
    "time_attention_modules",
]
