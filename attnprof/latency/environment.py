"""What machine a latency was measured on: device, threads, libraries, CUDA/cuDNN/driver, CPU.

A latency is a property of (model, input, machine, software, settings); the record of a
measurement embeds this description so a table can say when two numbers came from different
machines. Everything here is read, never set: the thread count is set by the timing code and
read back here.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import torch

from attnprof.errors import AttnprofError
from attnprof.records_json import JsonRecord, decode


@dataclass(frozen=True)
class Environment(JsonRecord):
    """The machine and software a measurement ran on. ``None`` means "not applicable/unknown"."""

    device: str
    device_name: str
    timestamp_utc: str
    attnprof_version: str
    torch_version: str
    python_version: str
    platform: str
    machine: str
    cpu_model: str
    logical_cpus: int | None
    physical_cpus: int | None
    cpu_capability: str | None
    """The SIMD level PyTorch's CPU kernels dispatch to (``AVX2``, ``AVX512``, ...)."""
    cpu_bf16_native: bool | None
    """Whether the CPU advertises bfloat16 instructions (avx512_bf16 / amx_bf16)."""
    cpu_governor: str | None
    load_avg_1m: float | None
    torch_threads: int
    interop_threads: int
    parallel_backend: str | None
    mkldnn: bool
    cuda_version: str | None
    cudnn_version: int | None
    driver_version: str | None
    gpu_capability: str | None
    gpu_memory_bytes: int | None
    cudnn_benchmark: bool | None
    tf32_matmul: bool | None
    tf32_cudnn: bool | None

    @classmethod
    def from_dict(cls, data: dict) -> Environment:
        if not isinstance(data, dict):
            raise AttnprofError(f"environment must be a mapping, got {type(data).__name__}")
        return decode(cls, data, "environment record")

    def summary(self) -> str:
        """One line for a table caption."""
        parts = [self.device_name, f"{self.torch_threads} threads", f"torch {self.torch_version}"]
        if self.device.startswith("cuda"):
            parts += [f"CUDA {self.cuda_version}", f"cuDNN {self.cudnn_version}",
                      f"driver {self.driver_version}"]
        return ", ".join(str(p) for p in parts)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _bf16(flags: set[str]) -> bool | None:
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}) if flags else None


@functools.lru_cache(maxsize=1)
def _cpu_static() -> tuple[str, bool | None]:
    """CPU model name and bf16 support; /proc/cpuinfo when present, else py-cpuinfo."""
    text = _read("/proc/cpuinfo")
    if text:
        name = None
        flags: set[str] = set()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model Name", "Hardware") and name is None:
                name = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
        if name:
            return name, _bf16(flags)
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
        return (info.get("brand_raw") or platform.processor() or "unknown CPU",
                _bf16(set(info.get("flags", []))))
    except Exception:  # py-cpuinfo is best effort: a description must never fail a measurement
        return platform.processor() or "unknown CPU", None


def best_effort(read: Callable[[], Any]) -> Any:
    """``read()``, or ``None`` when it fails: a description must never fail a measurement."""
    try:
        return read()
    except Exception:
        return None


def physical_cpus() -> int | None:
    import psutil

    return psutil.cpu_count(logical=False)


def cpu_capability() -> str | None:
    """The SIMD level torch's CPU kernels dispatch to (``AVX2``, ``AVX512``, ...)."""
    return torch.backends.cpu.get_cpu_capability()


def _parallel_backend() -> str | None:
    for line in torch.__config__.parallel_info().splitlines():
        if line.startswith("ATen parallel backend"):
            return line.split(":", 1)[1].strip()
    return None


@functools.lru_cache(maxsize=1)
def driver_version() -> str | None:
    """The NVIDIA driver version, from NVML when installed, else ``nvidia-smi``; else ``None``."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].strip() if out else None


def collect_environment(device: str | torch.device = "cpu") -> Environment:
    """Describe this machine for a measurement on ``device`` (read at call time)."""
    from attnprof import __version__

    dev = torch.device(device)
    cpu_model, bf16 = _cpu_static()
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    cuda = dev.type == "cuda"
    if cuda:
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        device_name = props.name
        capability = f"{props.major}.{props.minor}"
        gpu_memory = int(props.total_memory)
        device_label = f"cuda:{index}"
    else:
        device_name, capability, gpu_memory, device_label = cpu_model, None, None, dev.type
    cudnn_available = cuda and torch.backends.cudnn.is_available()
    return Environment(
        device=device_label,
        device_name=device_name,
        timestamp_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        attnprof_version=__version__,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_model=cpu_model,
        logical_cpus=os.cpu_count(),
        physical_cpus=best_effort(physical_cpus),
        cpu_capability=best_effort(cpu_capability),
        cpu_bf16_native=bf16,
        cpu_governor=governor.strip() if governor else None,
        load_avg_1m=best_effort(lambda: os.getloadavg()[0]),
        torch_threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        parallel_backend=best_effort(_parallel_backend),
        mkldnn=bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        cuda_version=torch.version.cuda if cuda else None,
        cudnn_version=torch.backends.cudnn.version() if cudnn_available else None,
        driver_version=driver_version() if cuda else None,
        gpu_capability=capability,
        gpu_memory_bytes=gpu_memory,
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark) if cuda else None,
        tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32) if cuda else None,
        tf32_cudnn=bool(torch.backends.cudnn.allow_tf32) if cuda else None,
    )


class CpuContention:
    """How busy the CPUs were with *other* work while a measurement ran.

    A context manager: on exit, ``other_cpus`` is the average number of logical CPUs that were
    busy with anything but this process (other processes, the kernel on their behalf, and time
    the hypervisor stole), from ``psutil.cpu_times()`` minus this process's own CPU time. On a
    quiet machine it is near 0; a value near the core count means the timings were contended.
    ``None`` where psutil cannot tell.
    """

    def __init__(self) -> None:
        self.other_cpus: float | None = None
        self._start: tuple[float, float, float] | None = None

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            import psutil

            system = psutil.cpu_times()
            busy = sum(getattr(system, name, 0.0) for name in
                       ("user", "nice", "system", "irq", "softirq", "steal"))
            own = psutil.Process().cpu_times()
            mine = own.user + own.system + own.children_user + own.children_system
        except Exception:
            return None
        return busy, mine, time.perf_counter()

    def __enter__(self) -> CpuContention:
        self._start = self._sample()
        return self

    def __exit__(self, *exc_info) -> None:
        end = self._sample()
        if self._start is None or end is None:
            return
        wall = end[2] - self._start[2]
        if wall <= 0:
            return
        other = (end[0] - self._start[0]) - (end[1] - self._start[1])
        self.other_cpus = max(0.0, other / wall)
