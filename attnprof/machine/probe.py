"""What this device can move and compute per second, measured in a few seconds: a roofline.

Caveats first: both limits are what PyTorch's own kernels reach here, with the run's thread
count, not the datasheet.

- **Bandwidth** is a streaming copy, ``dst.copy_(src)``, between two buffers far larger than
  the last-level cache, counted as the bytes read plus the bytes written (``2 x`` the buffer),
  the same convention as the bytes each op "reads and writes" in the ``full`` counting. It is
  not the DRAM spec: a copy with ordinary stores also reads each destination line before
  writing it (write-allocate), traffic that the count leaves out, and on a virtual machine the
  host's other tenants share the memory bus.
  The figure is the **best** copy (STREAM's convention: a copy cannot run faster than the
  memory allows, while everything else that goes wrong only slows it down), over
  ``BUFFER_PAIRS`` buffer pairs allocated in turn. The probe used to take the median copy of
  one pair, and on a 2-core AMD EPYC virtual machine without AVX-512 it read 15.6 and 18.3
  GB/s where a plain copy in the same process ran at 28-32. Two causes, both measured on the
  2-core AMD EPYC virtual machine this was written on:

  - the memory a pair happens to get: interleaved in one process, copies of one long-lived
    128 MiB pair ran at 16-19 GB/s and fresh pairs at 24-32 GB/s, with the same kernel, one
    thread and 4 KiB pages for all (on a virtual machine, the host decides where a guest's
    pages lie);
  - two threads beside other work: torch's OpenMP workers split a copy in two fixed halves
    and spin while they wait, so a neighbour on either CPU holds up every copy (median
    2-thread copies fell to 0.6x of 1-thread ones while other work kept 1.4 CPUs busy; with
    ``OMP_WAIT_POLICY=PASSIVE`` they kept up with a copy made by Python threads).

  Not the cause: the kernel. ``copy_`` runs its AVX2 kernel on AVX-512 CPUs too (it has no
  AVX-512 variant; a profile of the copy shows ``AVX2::direct_copy_kernel``), so
  ``ATEN_CPU_CAPABILITY`` does not change it. The median and every sample are kept. The
  buffers come from torch's allocator, so they get the pages any tensor gets (4 KiB pages
  unless transparent huge pages are on for every allocation).
  An unfused element-wise op on a large tensor (what an attention module adds) runs close to
  this rate; a fresh output tensor costs page faults on top (a first touch of newly mapped
  memory), which the probe, writing into buffers it has already touched, does not include.
- **It is a DRAM figure.** A feature map that fits in the last-level cache (ResNet-50 at
  224x224, batch 1: at most 3.2 MB a tensor) is served faster, so a run can beat the memory
  bound: a :meth:`Roofline.fraction_of_bound` above 1 says the data came from cache, not that
  the probe is wrong.
- **Contention.** Two OpenMP threads sharing a CPU with other work wait for a scheduler slice
  in every parallel region, and work on the other core shares the memory bus: the record
  keeps ``other_cpu_load`` (and ``contended``, as latency records do) to say so.
- **Peak FLOP/s** is the best median rate of ``torch.mm`` on square matrices of a few sizes,
  counted as ``2 n^3`` FLOPs (a multiply and an add per multiply-add), in the measured dtype
  (float32; bfloat16; float16 on CUDA only). It is what a large GEMM reaches, not
  the vendor's peak; convolutions of a real network usually reach less. On CUDA, float32 uses
  whatever ``torch.backends.cuda.matmul.allow_tf32`` says (the method string records it).
- Peak FLOP/s is the median of ``repeats`` timed runs after a warm-up; the bandwidth is the
  best of ``repeats`` copies per buffer pair (above). Each comes with its spread (the
  interquartile range over the median) and the raw per-run rates. On a shared machine a
  figure is only as steady as its neighbours: compare the spreads before the figures.
- **Fixed cost per operator** (``op_fixed_cost_us``, microseconds per op): the median time of
  one eager call of ``torch.add(a, b)`` or ``torch.sigmoid(a)`` on 1-element tensors of the
  probed dtype, issued from a Python loop under ``torch.inference_mode()`` with the run's
  threads: Python's call into torch, argument parsing, the dispatcher, allocating the output
  and a kernel with nothing to do (on CUDA, its launch). What an attention module's many small
  operators each pay before they move a byte. It does not include moving data (the tensors sit
  in L1), waking OpenMP threads (one element runs on the calling thread; an op on a large
  tensor wakes the others too), autograd bookkeeping (inference mode), a profiler's cost, nor
  what composite operators (``linear``) do between their parts; a view (``reshape``), which
  allocates no storage, costs less, an op called from C++ inside another skips the Python
  part.

Why these sizes:

- The copy buffers are each ``max(4 x last-level cache, 128 MiB)`` (the cache size read from
  ``/sys/devices/system/cpu/cpu0/cache``; on CUDA the L2 size, with a 1 GiB floor so a run
  lasts long enough for event timing), so at most a quarter of the data can be served from
  cache; with 32 MiB of L3 that is 128 MiB per buffer and about 10 ms a copy at 25 GB/s.
  Two pairs are alive at once (the next is allocated before the last is freed, so that it
  gets other memory); the four buffers never take more than an eighth of the free memory.
- The GEMMs climb a ladder of sizes (512, 1024, 2048 on a CPU; 2048, 4096, 8192 on CUDA) and
  the best median wins: on a small CPU the blocked kernels often peak at a size whose operands
  fit in the L2 cache, while a GPU needs large matrices to fill its units. A size is tried only
  when its estimated cost (from the previous size, scaled by ``n^3``) fits the time left of
  ``seconds_budget``, so a slow device stops early instead of running for minutes.

:func:`roofline` then bounds an op or a model: with ``F`` FLOPs and ``B`` bytes moved, no run
can take less than ``max(F / peak, B / bandwidth)``; the larger term names the bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attnprof.errors import AttnprofError
from attnprof.latency import stats
from attnprof.latency.environment import CpuContention
from attnprof.latency.records import CONTENDED_OTHER_CPUS
from attnprof.latency.settings import resolve_device, resolve_dtype, resolve_threads
from attnprof.records_json import JsonRecord, encode

MiB = 1 << 20
GB = 1e9
DEFAULT_SECONDS_BUDGET = 2.0
"""Soft limit on one probe's wall time; on a 2-core CPU a probe takes about 1 to 2 s."""
DEFAULT_REPEATS = 11
"""Timed runs per figure, per buffer pair for the bandwidth (odd, so the median is one run's
rate)."""
BUFFER_PAIRS = 3
"""Copy buffer pairs the bandwidth is measured on, one after another (see the module doc)."""
LIVE_BUFFERS = 4
"""Copy buffers alive at once: the pair being timed and the next."""
OP_CALLS = 400
"""Eager calls per timed block of the fixed cost per operator (half add, half sigmoid)."""
MIN_BUFFER_BYTES = {"cpu": 128 * MiB, "cuda": 1024 * MiB}
CACHE_MULTIPLE = 4
"""Each copy buffer is at least this many times the last-level cache."""
MEMORY_FRACTION = 1 / 8
"""At most this fraction of the free memory goes to the two copy buffers."""
MATMUL_SIZES = {"cpu": (512, 1024, 2048), "cuda": (2048, 4096, 8192)}
_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_CPU_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclass(frozen=True)
class MachineLimits(JsonRecord):
    """Memory bandwidth, peak FLOP/s and the fixed cost of an eager operator of one device,
    dtype and thread count, as measured.

    Rates are per second; ``*_spread`` is the interquartile range of the per-run values over
    their median (0.05 = runs within about 5% of each other); ``*_samples_*`` are the per-run
    values in the order they ran; ``*_method`` says exactly what was run. ``other_cpu_load`` is
    the average number of CPUs other work kept busy during the probe (``None``: unknown); on a
    contended machine the figures describe what the neighbours left, not the device.
    """

    device: str
    dtype: str
    threads: int
    bandwidth_bytes_per_s: float
    bandwidth_spread: float
    bandwidth_method: str
    bandwidth_buffer_bytes: int
    bandwidth_samples_bytes_per_s: tuple[float, ...]
    peak_flops_per_s: float
    peak_flops_spread: float
    peak_flops_method: str
    matmul_n: int
    peak_flops_samples_per_s: tuple[float, ...]
    repeats: int
    seconds: float
    other_cpu_load: float | None
    bandwidth_statistic: str = "median"
    """How the copies became ``bandwidth_bytes_per_s``: ``"best"`` (since the probe times
    several buffer pairs) or ``"median"`` (files from before, one pair)."""
    bandwidth_pairs: int = 1
    """Copy buffer pairs timed (``repeats`` copies each)."""
    op_fixed_cost_us: float | None = None
    """Microseconds of one tiny eager operator call (see the module doc for what it holds);
    ``None`` in files from before it was measured."""
    op_fixed_cost_spread: float | None = None
    op_fixed_cost_method: str | None = None
    op_fixed_cost_samples_us: tuple[float, ...] = ()

    @property
    def contended(self) -> bool:
        """Other work kept more than :data:`CONTENDED_OTHER_CPUS` CPUs busy during the probe."""
        return self.other_cpu_load is not None and self.other_cpu_load > CONTENDED_OTHER_CPUS

    @property
    def bandwidth_gb_per_s(self) -> float:
        """Bandwidth in GB/s (10^9 bytes per second)."""
        return self.bandwidth_bytes_per_s / GB

    @property
    def peak_gflops_per_s(self) -> float:
        """Peak in GFLOP/s (10^9 FLOPs per second)."""
        return self.peak_flops_per_s / GB

    @property
    def ridge_point(self) -> float:
        """FLOPs per byte where the two limits meet: below it a workload is memory-bound."""
        return self.peak_flops_per_s / self.bandwidth_bytes_per_s

    def to_dict(self) -> dict[str, Any]:
        derived = {"bandwidth_gb_per_s": self.bandwidth_gb_per_s,
                   "peak_gflops_per_s": self.peak_gflops_per_s,
                   "ridge_point": self.ridge_point, "contended": self.contended}
        return {**encode(self), **derived}  # from_dict ignores the derived keys


@dataclass(frozen=True)
class Roofline(JsonRecord):
    """The least time ``flops`` FLOPs and ``bytes_moved`` bytes can take on one device.

    ``bound`` is ``"memory"`` when moving the bytes takes longer than the arithmetic, else
    ``"compute"`` (a tie, the ridge point itself, counts as compute).
    """

    flops: float
    bytes_moved: float
    compute_s: float
    memory_s: float
    bound_s: float
    bound: str

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOPs per byte (``inf`` when no byte moves)."""
        if self.bytes_moved == 0:
            return math.inf if self.flops > 0 else 0.0
        return self.flops / self.bytes_moved

    def achieved_flops_per_s(self, seconds: float) -> float:
        """The FLOP rate a run that took ``seconds`` reached."""
        return self.flops / _positive_seconds(seconds)

    def achieved_bytes_per_s(self, seconds: float) -> float:
        """The byte rate a run that took ``seconds`` reached."""
        return self.bytes_moved / _positive_seconds(seconds)

    def fraction_of_bound(self, seconds: float) -> float:
        """``bound_s / seconds``: 1.0 is a run at the roofline, 0.25 one four times slower."""
        return self.bound_s / _positive_seconds(seconds)


def roofline(flops: float, bytes_moved: float, limits: MachineLimits) -> Roofline:
    """The roofline bound of ``flops`` FLOPs and ``bytes_moved`` bytes under ``limits``."""
    flops = _non_negative("flops", flops)
    bytes_moved = _non_negative("bytes_moved", bytes_moved)
    _check_limits(limits)
    compute_s = flops / limits.peak_flops_per_s
    memory_s = bytes_moved / limits.bandwidth_bytes_per_s
    bound = "memory" if memory_s > compute_s else "compute"
    return Roofline(flops=flops, bytes_moved=bytes_moved, compute_s=compute_s,
                    memory_s=memory_s, bound_s=max(compute_s, memory_s), bound=bound)


def bytes_time_s(bytes_moved: float, limits: MachineLimits) -> float:
    """The seconds ``bytes_moved`` bytes alone take at the measured bandwidth."""
    bytes_moved = _non_negative("bytes_moved", bytes_moved)
    _check_limits(limits)
    return bytes_moved / limits.bandwidth_bytes_per_s


def last_level_cache_bytes() -> int | None:
    """Size of the CPU's largest-level data cache (as cpu0 sees it), or ``None`` if unknown."""
    best: tuple[int, int] | None = None
    for index in sorted(_CPU_CACHE.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size = _parse_size((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if kind != "Instruction" and (best is None or level > best[0]):
            best = (level, size)
    return None if best is None else best[1]


def probe_machine(
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    threads: int | None = None,
    *,
    seconds_budget: float = DEFAULT_SECONDS_BUDGET,
    repeats: int = DEFAULT_REPEATS,
) -> MachineLimits:
    """Measure the bandwidth, peak FLOP/s and fixed cost per operator of ``device`` in
    ``dtype`` with ``threads``.

    ``threads`` (default: torch's current count) is set for the probe and restored after.
    ``seconds_budget`` is a soft limit: the copy and the smallest GEMM always run, a larger
    GEMM only when its estimated cost fits the time left. Raises
    :class:`~attnprof.errors.AttnprofError` for what cannot run here.
    """
    start = time.perf_counter()
    dev = resolve_device(device)
    name = resolve_dtype(dtype, dev)
    count = resolve_threads(threads)
    if isinstance(seconds_budget, bool) or not isinstance(seconds_budget, (int, float)) \
            or not seconds_budget > 0:
        raise AttnprofError(f"seconds_budget must be a positive number, got {seconds_budget!r}")
    _check_repeats(repeats)
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with torch.no_grad(), CpuContention() as contention:
            bandwidth = _probe_bandwidth(dev, _TORCH_DTYPES[name], count, repeats)
            fixed = _probe_op_cost(dev, _TORCH_DTYPES[name], count, repeats)
            left = seconds_budget - (time.perf_counter() - start)
            gemm = _probe_matmul(dev, _TORCH_DTYPES[name], count, repeats, left)
            conv = _probe_conv(dev, _TORCH_DTYPES[name], count, repeats)
            flops = _best_of(gemm, conv)
    finally:
        torch.set_num_threads(previous)
    label = "cpu" if dev.type == "cpu" else f"cuda:{dev.index}"
    return MachineLimits(
        device=label, dtype=name, threads=count,
        bandwidth_bytes_per_s=bandwidth.best, bandwidth_spread=bandwidth.spread,
        bandwidth_method=bandwidth.method, bandwidth_buffer_bytes=bandwidth.size,
        bandwidth_samples_bytes_per_s=bandwidth.rates,
        peak_flops_per_s=flops.median, peak_flops_spread=flops.spread,
        peak_flops_method=flops.method, matmul_n=flops.size,
        peak_flops_samples_per_s=flops.rates,
        repeats=repeats, seconds=time.perf_counter() - start,
        other_cpu_load=contention.other_cpus,
        bandwidth_statistic="best", bandwidth_pairs=BUFFER_PAIRS,
        op_fixed_cost_us=fixed.median, op_fixed_cost_spread=fixed.spread,
        op_fixed_cost_method=fixed.method, op_fixed_cost_samples_us=fixed.rates,
    )


def probe_bandwidth(
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    threads: int | None = None,
    *,
    repeats: int = DEFAULT_REPEATS,
) -> float:
    """The bandwidth figure of :func:`probe_machine` alone, in bytes per second (read +
    write): the best copy over :data:`BUFFER_PAIRS` buffer pairs, ``repeats`` copies each."""
    dev = resolve_device(device)
    name = resolve_dtype(dtype, dev)
    count = resolve_threads(threads)
    _check_repeats(repeats)
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with torch.no_grad():
            return _probe_bandwidth(dev, _TORCH_DTYPES[name], count, repeats).best
    finally:
        torch.set_num_threads(previous)


def _check_repeats(repeats: int) -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 3:
        raise AttnprofError(f"repeats must be an integer >= 3, got {repeats!r}")


@dataclass(frozen=True)
class _Rates:
    rates: tuple[float, ...]
    size: int
    method: str

    @property
    def median(self) -> float:
        return stats.median(self.rates)

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def spread(self) -> float:
        return stats.iqr(self.rates) / self.median


def _probe_bandwidth(dev: torch.device, dtype: torch.dtype, threads: int,
                     repeats: int) -> _Rates:
    element = torch.empty((), dtype=dtype).element_size()
    size, why = _buffer_bytes(dev)
    numel = size // element
    rates: list[float] = []
    bests: list[float] = []
    moved = 2 * numel * element
    alive: list[tuple[torch.Tensor, torch.Tensor]] = []
    for _ in range(BUFFER_PAIRS):
        pair = (torch.empty(numel, dtype=dtype, device=dev).fill_(1.0),
                torch.empty(numel, dtype=dtype, device=dev).fill_(0.0))  # touched: no faults
        alive = [*alive[-1:], pair]  # the last pair is freed only now: this one got other memory
        timed = [moved / t for t in _time(_copier(*pair), dev, repeats, warmup=2)]
        rates += timed
        bests.append(max(timed))
    alive.clear()
    median = stats.median(rates)
    method = (
        f"dst.copy_(src) on {_where(dev, threads)}, two {_mib(numel * element)} {_name(dtype)} "
        f"buffers ({why}); bytes = read + write = {moved} per copy (write-allocate reads not "
        f"counted); the best of {repeats} timed copies (after 2 warm-up) on each of "
        f"{BUFFER_PAIRS} buffer pairs allocated in turn (best per pair, GB/s: "
        f"{', '.join(f'{b / GB:.1f}' for b in bests)}; median of all {median / GB:.1f})"
    )
    return _Rates(tuple(rates), numel * element, method)


def _copier(src: torch.Tensor, dst: torch.Tensor) -> Callable[[], None]:
    def copy() -> None:
        dst.copy_(src)

    return copy


def _probe_op_cost(dev: torch.device, dtype: torch.dtype, threads: int,
                   repeats: int) -> _Rates:
    """Microseconds per tiny eager op: the median over ``repeats`` timed blocks of
    :data:`OP_CALLS` calls (``_Rates.rates`` holds microseconds here, not rates)."""
    a = torch.ones(1, dtype=dtype, device=dev)
    b = torch.ones(1, dtype=dtype, device=dev)

    def block() -> None:
        for _ in range(OP_CALLS // 2):
            torch.add(a, b)
            torch.sigmoid(a)

    with torch.inference_mode():
        times = _time(block, dev, repeats, warmup=2)
    per_op = tuple(t / OP_CALLS * 1e6 for t in times)
    method = (
        f"torch.add(a, b) and torch.sigmoid(a) in turn on 1-element {_name(dtype)} tensors on "
        f"{_where(dev, threads)}, from a Python loop under torch.inference_mode(); "
        f"microseconds per op = block time / {OP_CALLS}; median of {repeats} timed blocks "
        f"after 2 warm-up"
    )
    return _Rates(per_op, 1, method)


def _probe_matmul(dev: torch.device, dtype: torch.dtype, threads: int, repeats: int,
                  seconds_left: float) -> _Rates:
    sizes = MATMUL_SIZES[dev.type]
    results: list[_Rates] = []
    per_run = None  # seconds of one mm at the previous size
    for n in sizes:
        if per_run is not None:
            cost = per_run * (n / results[-1].size) ** 3 * (repeats + 1)
            if cost > seconds_left:
                break
        begun = time.perf_counter()
        generator = torch.Generator(device=dev).manual_seed(n)
        a = torch.randn(n, n, dtype=dtype, device=dev, generator=generator)
        b = torch.randn(n, n, dtype=dtype, device=dev, generator=generator)
        out = torch.empty(n, n, dtype=dtype, device=dev)

        def mm(a=a, b=b, out=out) -> None:
            torch.mm(a, b, out=out)

        times = _time(mm, dev, repeats, warmup=2 if not results else 1)
        results.append(_Rates(tuple(2 * n**3 / t for t in times), n, ""))
        per_run = stats.median(times)
        seconds_left -= time.perf_counter() - begun
        del a, b, out
    best = max(results, key=lambda r: r.median)
    tried = ", ".join(f"{r.size}: {r.median / GB:.1f}" for r in results)
    skipped = [n for n in sizes if n not in {r.size for r in results}]
    tf32 = ""
    if dev.type == "cuda" and dtype == torch.float32:
        tf32 = f", allow_tf32={torch.backends.cuda.matmul.allow_tf32}"
    method = (
        f"torch.mm(a, b, out=c) of square {_name(dtype)} n x n matrices on "
        f"{_where(dev, threads)}{tf32}; FLOPs = 2 n^3; median of {repeats} timed runs per "
        f"size, best size kept: n={best.size} (GFLOP/s by n: {tried}"
        + (f"; skipped for time: {', '.join(map(str, skipped))}" if skipped else "") + ")"
    )
    return _Rates(best.rates, best.size, method)


CONV_SHAPE = {"cpu": (2, 256, 56), "cuda": (32, 256, 56)}
"""(batch, channels, size) of the probe's 3x3 convolution: ResNet-50's stage-1 width."""
CONV_REPEATS = 5
"""Timed convolutions (each about 0.1 s on a 2-core CPU): their spread is small."""


def _probe_conv(dev: torch.device, dtype: torch.dtype, threads: int, repeats: int) -> _Rates:
    """A 3x3 convolution the size of a ResNet stage: the kernels a CNN runs most (oneDNN's
    on a CPU), which can reach more than the BLAS GEMM a matmul calls."""
    batch, channels, size = CONV_SHAPE[dev.type]
    generator = torch.Generator(device=dev).manual_seed(3)
    x = torch.randn(batch, channels, size, size, dtype=dtype, device=dev, generator=generator)
    w = torch.randn(channels, channels, 3, 3, dtype=dtype, device=dev, generator=generator)

    def conv() -> None:
        torch.nn.functional.conv2d(x, w, padding=1)

    runs = min(repeats, CONV_REPEATS)
    times = _time(conv, dev, runs, warmup=2)
    flops = 2 * batch * channels * channels * 9 * size * size
    method = (f"torch.nn.functional.conv2d 3x3, {channels} -> {channels} channels on "
              f"{batch} x {size} x {size}, {_name(dtype)}, on {_where(dev, threads)}; FLOPs = "
              f"2 per multiply-add = {flops}; median of {runs} timed runs")
    return _Rates(tuple(flops / t for t in times), 0, method)


def _best_of(gemm: _Rates, conv: _Rates) -> _Rates:
    """The faster of the GEMM ladder and the convolution, naming both: a model can reach
    whichever its kernels are, so the lower one would put the bound below reality."""
    best, other = (gemm, conv) if gemm.median >= conv.median else (conv, gemm)
    method = (f"the faster of two: {best.method}; the other reached "
              f"{other.median / GB:.1f} GFLOP/s ({other.method})")
    return _Rates(best.rates, gemm.size, method)


def _time(fn: Callable[[], None], dev: torch.device, repeats: int, warmup: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            torch.cuda.synchronize(dev)
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(repeats)]
            for begin, end in events:
                begin.record()
                fn()
                end.record()
            torch.cuda.synchronize(dev)
            return [begin.elapsed_time(end) / 1e3 for begin, end in events]
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return times


def _buffer_bytes(dev: torch.device) -> tuple[int, str]:
    """Bytes of each copy buffer, and why that many."""
    floor = MIN_BUFFER_BYTES[dev.type]
    if dev.type == "cuda":
        cache = torch.cuda.get_device_properties(dev).L2_cache_size or None
        free = torch.cuda.mem_get_info(dev)[0]
        cache_name = "L2 cache"
    else:
        import psutil

        cache = last_level_cache_bytes()
        free = psutil.virtual_memory().available
        cache_name = "last-level cache"
    wanted = max(floor, CACHE_MULTIPLE * cache) if cache else floor
    why = (f"{CACHE_MULTIPLE}x the {_mib(cache)} {cache_name}, at least {_mib(floor)}" if cache
           else f"{cache_name} size unknown: {_mib(floor)}")
    cap = int(free * MEMORY_FRACTION / LIVE_BUFFERS)
    if wanted > cap:
        wanted = cap
        why += f", capped to {MEMORY_FRACTION:.3g} of the free memory"
    return wanted - wanted % 4096, why


def _parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def _where(dev: torch.device, threads: int) -> str:
    if dev.type == "cuda":
        return f"cuda:{dev.index} ({torch.cuda.get_device_name(dev)})"
    return f"cpu, {threads} thread{'s' if threads != 1 else ''}"


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _mib(size: int) -> str:
    return f"{size / MiB:.0f} MiB"


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise AttnprofError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _positive_seconds(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not math.isfinite(seconds) or not seconds > 0:
        raise AttnprofError(f"seconds must be a finite number > 0, got {seconds!r}")
    return float(seconds)


def _check_limits(limits: MachineLimits) -> None:
    if not isinstance(limits, MachineLimits):
        raise AttnprofError(
            f"limits must be a MachineLimits (from probe_machine), got {type(limits).__name__}"
        )
    for name in ("bandwidth_bytes_per_s", "peak_flops_per_s"):
        value = getattr(limits, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise AttnprofError(f"limits.{name} must be a finite number > 0, got {value!r}")
