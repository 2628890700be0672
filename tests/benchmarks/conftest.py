"""Benchmark settings shared by the files in this folder.

Saved benchmark JSON carries what ``attnprof compare`` needs to notice that two files come from
different machines or set-ups: pytest-benchmark records the CPU and Python; this adds the torch
and attnprof versions, the GPU (if any) and the thread count the benchmarks ran with.
"""

from __future__ import annotations

import os

import pytest
import torch

import attnprof

BENCH_THREADS = int(os.environ.get("ATTNPROF_BENCH_THREADS", "1"))
"""Intra-op threads for the module benchmarks: 1 by default, the steadiest choice on a shared
runner (a second thread competes with everything else the runner does)."""


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["attnprof"] = attnprof.__version__
    machine_info["torch_threads"] = BENCH_THREADS
    machine_info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


@pytest.fixture
def bench_threads():
    """Run the test with ``BENCH_THREADS`` intra-op threads, restoring the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(BENCH_THREADS)
    try:
        yield BENCH_THREADS
    finally:
        torch.set_num_threads(previous)
