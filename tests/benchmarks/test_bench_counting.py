"""How long counting takes: ResNet-101 + SGE at 800 x 1333 (the detection setting), per convention.

Run with ``pytest tests/benchmarks -m bench --benchmark-enable``. Marked slow too: the default
run leaves it out (each count at 800 x 1333 includes ``profile()``'s one real forward, seconds
on a small CPU), and ``-m slow`` runs each meta-device convention once as a smoke test; fvcore,
which jit-traces real tensors for tens of seconds, only runs when benchmarking is enabled.
Each benchmark includes building the model, as ``profile()`` does.
"""

from __future__ import annotations

import pytest

from attnprof.attention import attention_names
from attnprof.counting import CONVENTIONS, DEFAULT_CONVENTIONS
from attnprof.profiling import profile

pytestmark = [pytest.mark.bench, pytest.mark.slow]

BACKBONE, ATTENTION, INPUT, HEAD = "resnet101", "sge", (800, 1333), "pool"


@pytest.mark.parametrize("convention", DEFAULT_CONVENTIONS)
def test_count_resnet101_sge_detection(benchmark, convention):
    if ATTENTION not in attention_names():
        pytest.skip(f"attention {ATTENTION!r} is not registered yet")
    slow = CONVENTIONS[convention].needs_real_tensors
    if slow and benchmark.disabled:
        pytest.skip(f"{convention} takes tens of seconds; run with --benchmark-enable")

    def run():
        return profile(BACKBONE, ATTENTION, input=INPUT, head=HEAD, conventions=[convention])

    record = benchmark.pedantic(run, rounds=1 if slow else 5, iterations=1,
                                warmup_rounds=0 if slow else 1)
    result = record.counts[convention]
    benchmark.extra_info.update(
        {
            "model": f"{BACKBONE}+{ATTENTION} {INPUT[0]}x{INPUT[1]} head={HEAD}",
            "convention": convention,
            "value": result.value,
            "unit": result.unit,
            "attention": result.attention,
            "params": record.params,
            "attention_params": record.attention_params,
        }
    )
    assert result.value > 0 and result.uncounted is not None
