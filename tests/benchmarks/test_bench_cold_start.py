"""How fast ``attnprof profile`` starts: a cold process counting one model under one convention,
paired with ``python -c "import torch"`` timed in the same rounds.

    pytest tests/benchmarks/test_bench_cold_start.py -m bench --benchmark-enable

Each round first runs the reference (a fresh interpreter importing torch, the floor any torch
tool pays), then ``attnprof profile --backbone resnet50 --conventions paper`` in a fresh
interpreter; ``extra_info`` keeps the reference's time per round (``reference_s``, which
``attnprof compare`` pairs) and the ratio of the medians (``ratio_to_import_torch``), the figure
the README quotes. Marked slow, so the default run leaves it out; ``-m slow`` runs it once, as
a smoke test.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.slow]  # a cold start per round: run it apart

REFERENCE = [sys.executable, "-c", "import torch"]
PROFILE = [sys.executable, "-m", "attnprof", "profile", "--backbone", "resnet50",
           "--conventions", "paper"]


def _timed(command: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    assert done.returncode == 0, done.stderr
    return elapsed


def test_cold_profile_against_import_torch(benchmark):
    reference: list[float] = []

    def setup():
        reference.append(_timed(REFERENCE))

    benchmark.pedantic(lambda: _timed(PROFILE), setup=setup,
                       rounds=1 if benchmark.disabled else 9, iterations=1)
    benchmark.extra_info.update({"reference": "python -c 'import torch'", "reference_s": reference,
                                 "command": " ".join(PROFILE[1:])})
    if not benchmark.disabled:
        ratio = benchmark.stats.stats.median / statistics.median(reference)
        benchmark.extra_info["ratio_to_import_torch"] = round(ratio, 3)
