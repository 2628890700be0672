"""Peak memory of one forward pass, measured by a method each record names.

Caveat first: "peak memory" is only meaningful with its method, and the two devices do not
offer the same instrument.

- ``cuda-max-memory-allocated``: ``torch.cuda.reset_peak_memory_stats()``, one forward,
  ``torch.cuda.max_memory_allocated()``. We subtract what was allocated just before the
  forward and add back the model's own weights, buffers and input, so the number describes this
  model even when other models share the GPU (as in a paired comparison). Bytes held by the
  caching allocator but not allocated to tensors (``memory_reserved``) are not included.
- ``cpu-torch-allocator``: PyTorch's CPU allocator has no peak counter, and the process's peak
  RSS (``ru_maxrss``) only ever grows, so it cannot attribute a peak to one forward. Instead one
  forward runs under ``torch.profiler.profile(profile_memory=True)``: every allocation and free
  made through PyTorch's allocator (oneDNN's included) is an event with a signed size; the
  running sum in time order gives the bytes live during the forward, and its maximum is the
  peak growth. As on CUDA, the model's weights, buffers and input are added. Memory allocated
  outside PyTorch's allocator (the OpenMP runtime, glibc arenas, Python objects) is not seen.

The measurement is one extra forward outside the timed loop, so it cannot disturb the timings.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

CPU_ALLOCATOR = "cpu-torch-allocator"
CUDA_MAX_ALLOCATED = "cuda-max-memory-allocated"
NOT_MEASURED = "not-measured"

PEAK_MEM_KINDS = {
    CPU_ALLOCATOR: "weights + buffers + input, plus the peak growth of bytes allocated through "
    "PyTorch's CPU allocator during one forward (torch.profiler memory events)",
    CUDA_MAX_ALLOCATED: "weights + buffers + input, plus torch.cuda.max_memory_allocated() "
    "growth during one forward after reset_peak_memory_stats()",
    NOT_MEASURED: "peak memory was not measured",
}

_CPU_MEMORY_DEVICES = ("CPU", "MKLDNN", "IDEEP")


@dataclass(frozen=True)
class MemoryPeak:
    peak_bytes: int | None
    activation_bytes: int | None
    kind: str


def resident_bytes(model: nn.Module, *tensors: torch.Tensor) -> int:
    """Bytes of the distinct storages behind the model's parameters, buffers and ``tensors``."""
    seen: dict[int, int] = {}
    for tensor in [*model.parameters(), *model.buffers(), *tensors]:
        if tensor.device.type == "meta":
            continue
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: the profiler's C++ side prints a
    ``profiler_start`` / ``profiler_stop`` line to it at every use, which no setting turns off.
    Python exceptions are unaffected (they propagate); the forward being profiled already ran
    during warm-up, so no first-time warning is lost."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _cpu_growth(forward: Callable[[], object]) -> int | None:
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        forward()
    try:
        events = prof.profiler.kineto_results.events()
        changes = [
            (event.start_ns(), event.nbytes())
            for event in events
            if event.name() == "[memory]"
            and str(event.device_type()).rsplit(".", 1)[-1] in _CPU_MEMORY_DEVICES
        ]
    except AttributeError:  # the profiler's result API moved: report "not measured", not 0
        return None
    changes.sort(key=lambda item: item[0])
    live = peak = 0
    for _, delta in changes:
        live += delta
        peak = max(peak, live)
    return peak


def measure_peak_memory(
    forward: Callable[[], object], model: nn.Module, inputs: torch.Tensor, device: torch.device
) -> MemoryPeak:
    """Run ``forward`` once and report the peak bytes it needed, with the method's name."""
    base = resident_bytes(model, inputs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        forward()
        torch.cuda.synchronize(device)
        growth = max(0, torch.cuda.max_memory_allocated(device) - before)
        return MemoryPeak(base + growth, growth, CUDA_MAX_ALLOCATED)
    growth = _cpu_growth(forward)
    if growth is None:
        return MemoryPeak(None, None, NOT_MEASURED)
    return MemoryPeak(base + growth, growth, CPU_ALLOCATOR)
