"""Steady memory allocation for benchmarks: glibc's malloc thresholds fixed with ``mallopt``.

Caveat first: this changes how the whole test process allocates from then on (large blocks
come from the heap and stay there instead of being mapped and unmapped each time), so it is
done only when a benchmark is about to be timed, and only where glibc is the C library.

Why: a feature map of a few hundred KB or more is above glibc's initial mmap threshold
(128 KiB), so its allocation is a fresh ``mmap`` whose pages fault in on first touch, and the
free returns them. glibc then raises the threshold as it sees such frees, and trims the heap
when its top grows past another threshold: whether a given tensor costs page faults depends on
the allocator's history. On the 2-core VM this was measured on, a plain ResNet bottleneck on a
64 x 56 x 56 map took a median 0.71 to 1.94 ms per call (200 calls) in 9 fresh processes, and
0.56 to 0.87 ms in 9 with the thresholds fixed; the fastest call was 0.54 ms in both, so most
of the spread was page faults. Fixing the thresholds, as the ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` environment variables would at start-up, makes every run allocate
the same way; what is left is the machine's own noise, which the pairing with a reference
cancels best when the reference does the same kind of work as the module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
"""The largest mmap threshold glibc accepts on 64-bit systems."""
TRIM_THRESHOLD_BYTES = 256 << 20


@functools.cache
def steady_allocator() -> str | None:
    """Fix glibc's mmap and trim thresholds (once per process); say what was set, or ``None``
    where this is not glibc or it refused."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not (libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        return None
    return (f"glibc malloc: mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MiB, trim threshold "
            f"{TRIM_THRESHOLD_BYTES >> 20} MiB (mallopt)")
