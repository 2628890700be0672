"""The latency design's defaults, in a module that imports nothing heavy (suite files read them).

Chosen on a 2-core CPU with ResNet-50 at 224x224, batch 1 (~65-80 ms a forward). Within one
process the per-round ratio scatters by ~10%; between fresh processes the process medians
scatter by ~5 points (SA: 1.24 to 1.37 in four processes), so precision comes from processes,
not rounds: 6 processes (the fewest for a 95% order-statistic interval) of 3 rounds each. A
0.25 s sample is 3-4 timed forwards plus the untimed re-warm. Warm-up rounds continue until no
model ran more than 10% faster than in its best earlier warm-up round (2 to 6 rounds).
"""

from __future__ import annotations

from attnprof.latency.stats import CI_LEVEL, min_samples_for_ci

DEFAULT_PROCESSES = min_samples_for_ci(CI_LEVEL)
DEFAULT_ROUNDS = 3
DEFAULT_SAMPLE_TIME = 0.25
MIN_WARMUP_ROUNDS = 2
DEFAULT_MAX_WARMUP_ROUNDS = 6
DEFAULT_SETTLE_TOLERANCE = 0.10
