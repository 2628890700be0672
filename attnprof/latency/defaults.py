"""The latency design's defaults, in a module that imports nothing heavy (suite files read them).

Chosen on a 2-core CPU with ResNet-50 at 224x224, batch 1 (~65-80 ms a forward): precision
comes from fresh processes (how many is decided as the run goes, :mod:`.replicate`), each of 8
bracketed rounds (:mod:`.brackets`). A 0.05 s sample is one ResNet-50 forward (a few of a
smaller model): the shorter the sample, the closer a variant's sample sits to the baseline
samples around it, and the more of the machine's drift cancels. Measured there, ResNet-50
none/SE/SGE/SA in 10 fresh processes each: the per-process Δ scattered with a standard
deviation of 1.6 / 1.5 / 4.5 points in 7.8 s a process, against 4.3 / 6.5 / 7.6 in
11.0 s with the design before (one sample per arm and round, here 6 rounds of 0.125 s: the
time its default 3 of 0.25 s took). Warm-up rounds continue
until no model ran more than 10% faster than in its best earlier warm-up round (2 to 6
rounds).
"""

from __future__ import annotations

DEFAULT_ROUNDS = 8
DEFAULT_SAMPLE_TIME = 0.05
MIN_WARMUP_ROUNDS = 2
DEFAULT_MAX_WARMUP_ROUNDS = 6
DEFAULT_SETTLE_TOLERANCE = 0.10
