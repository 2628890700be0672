"""The latency design's defaults, in a module that imports nothing heavy (suite files read them).

Chosen on a 2-core CPU with ResNet-50 at 224x224, batch 1 (~65-80 ms a forward): precision
comes from fresh processes (how many is decided as the run goes, :mod:`.replicate`), each of 3
rounds. A 0.25 s sample is 3-4 timed forwards plus the untimed re-warm. Warm-up rounds continue
until no model ran more than 10% faster than in its best earlier warm-up round (2 to 6
rounds).
"""

from __future__ import annotations

DEFAULT_ROUNDS = 3
DEFAULT_SAMPLE_TIME = 0.25
MIN_WARMUP_ROUNDS = 2
DEFAULT_MAX_WARMUP_ROUNDS = 6
DEFAULT_SETTLE_TOLERANCE = 0.10
