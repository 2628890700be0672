"""Benchmark settings shared by the files in this folder.

The machine description saved with the benchmark JSON (torch and attnprof versions, threads,
GPU, the CPU in detail) comes from attnprof's pytest plugin (:mod:`attnprof.bench.plugin`),
which pytest loads wherever attnprof is installed: the same for these benchmarks as for a
user's.
"""

from __future__ import annotations

import pytest
import torch

from attnprof.bench import plugin

BENCH_THREADS = plugin.bench_threads()
"""Intra-op threads for the module benchmarks (``ATTNPROF_BENCH_THREADS``, default 1)."""


@pytest.fixture
def bench_threads():
    """Run the test with ``BENCH_THREADS`` intra-op threads, restoring the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(BENCH_THREADS)
    try:
        yield BENCH_THREADS
    finally:
        torch.set_num_threads(previous)
