"""What machine and software a result was measured on, in enough detail to tell two apart.

Caveat first: everything here is read, never guessed. A field the source does not state is
``None`` (a CPU without a sysfs cache folder, a torch build whose configuration lines have
another shape); nothing volatile (the clock, the load) is included, so two runs on the same
machine describe it identically and two machines differ exactly where they do.

Sources:

- the CPU: py-cpuinfo for the model, vendor, family, model number, stepping and flags (cached:
  it takes about 0.2 s); the cache sizes from Linux's sysfs
  (``/sys/devices/system/cpu/cpu0/cache/index*``), one instance of each level (L1 and L2 are
  per core, L3 per group of cores sharing it), in bytes; py-cpuinfo's own cache figures are
  not used (it reports totals over cores for some levels and not others);
- torch's build: ``torch.__config__.show()`` (the lines naming MKL, oneDNN (MKL-DNN), OpenMP,
  and ``BLAS_INFO=`` among the build settings) and ``torch.__config__.parallel_info()`` (the
  parallel backend and thread counts);
- the GPU: ``torch.cuda.get_device_properties`` and, where it exists, ``nvidia-smi`` for the
  driver and the maximum clocks.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch

ISA_EXTENSIONS = (
    "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve", "sve2",
)
"""The instruction-set extensions that decide which kernels torch runs; others are not listed."""

_CACHE_ROOT = Path("/sys/devices/system/cpu/cpu0/cache")
_SIZE = re.compile(r"^(\d+)([KMG]?)$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def describe_machine(device: str = "cpu") -> dict[str, Any]:
    """``{"cpu": ..., "torch_build": ..., "gpu": ...}``: JSON values, stable key names;
    ``gpu`` only for a CUDA device torch can use."""
    description: dict[str, Any] = {"cpu": cpu_description(), "torch_build": torch_build()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        description["gpu"] = gpu_description()
    return description


@functools.cache
def _cpuinfo() -> dict[str, Any]:
    try:
        import cpuinfo

        return cpuinfo.get_cpu_info()
    except Exception:  # py-cpuinfo can fail on unusual platforms: then the fields are unknown
        return {}


def cpu_description() -> dict[str, Any]:
    """Model, vendor, family/model/stepping, ISA extensions, caches and CPU counts."""
    info = _cpuinfo()
    flags = {str(flag).lower() for flag in info.get("flags") or ()}
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # an unknown count is recorded as such
        physical = None
    return {
        "model": info.get("brand_raw") or None,
        "vendor": info.get("vendor_id_raw") or None,
        "arch": info.get("arch") or None,
        "family": info.get("family"),
        "model_number": info.get("model"),
        "stepping": info.get("stepping"),
        "isa": sorted(ext for ext in ISA_EXTENSIONS if ext in flags),
        "caches": cache_sizes(),
        "logical_cpus": os.cpu_count(),
        "physical_cpus": physical,
    }


def cache_sizes(root: Path = _CACHE_ROOT) -> dict[str, int | None]:
    """Bytes of one instance of each cache level, ``l1d``, ``l1i``, ``l2``, ``l3`` (``None``
    where sysfs does not say)."""
    found: dict[str, int | None] = {"l1d": None, "l1i": None, "l2": None, "l3": None}
    for folder in sorted(root.glob("index*")) if root.is_dir() else ():
        try:
            level = (folder / "level").read_text().strip()
            kind = (folder / "type").read_text().strip()
            size = _SIZE.match((folder / "size").read_text().strip())
        except OSError:
            continue
        if size is None:
            continue
        name = f"l{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        if name in found:
            found[name] = int(size[1]) * _UNITS[size[2]]
    return found


def torch_build(config: str | None = None, parallel: str | None = None) -> dict[str, Any]:
    """torch's version, BLAS, MKL and oneDNN versions, OpenMP, parallel backend, threads and the
    CPU kernels' capability, read from its own configuration text."""
    config = torch.__config__.show() if config is None else config
    parallel = torch.__config__.parallel_info() if parallel is None else parallel

    def first(pattern: str, text: str) -> str | None:
        match = re.search(pattern, text, flags=re.M)
        return match[1].strip() if match else None

    threads = first(r"at::get_num_threads\(\)\s*:\s*(\d+)", parallel)
    interop = first(r"at::get_num_interop_threads\(\)\s*:\s*(\d+)", parallel)
    return {
        "version": torch.__version__,
        "blas": first(r"BLAS_INFO=([^,\s]+)", config),
        "mkl": first(r"Math Kernel Library Version (\S+)", config),
        "onednn": first(r"MKL-DNN v(\S+)", config),
        "openmp": first(r"^\s*-?\s*OpenMP (\d+)", config),
        "parallel_backend": first(r"ATen parallel backend:\s*(.+)$", parallel),
        "intra_op_threads": int(threads) if threads else None,
        "inter_op_threads": int(interop) if interop else None,
        "cpu_capability": _cpu_capability(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }


def _cpu_capability() -> str | None:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return None


def gpu_description(index: int = 0) -> dict[str, Any]:
    """Name, memory, compute capability and count from torch; driver and maximum clocks from
    ``nvidia-smi`` where it exists."""
    props = torch.cuda.get_device_properties(index)
    smi = nvidia_smi(index)
    return {
        "name": props.name,
        "memory_bytes": props.total_memory,
        "capability": f"{props.major}.{props.minor}",
        "count": torch.cuda.device_count(),
        **smi,
    }


NVIDIA_SMI_QUERY = "driver_version,clocks.max.sm,clocks.max.mem"


def nvidia_smi(index: int = 0) -> dict[str, Any]:
    """``driver``, ``sm_clock_max_mhz``, ``memory_clock_max_mhz`` of GPU ``index``; empty where
    nvidia-smi is absent or fails."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--id={index}", f"--query-gpu={NVIDIA_SMI_QUERY}",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else {}


def parse_nvidia_smi(text: str) -> dict[str, Any]:
    """One line of ``--query-gpu=driver_version,clocks.max.sm,clocks.max.mem`` in csv."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    parts = [part.strip() for part in line.split(",")]
    if len(parts) != 3:
        return {}

    def mhz(value: str) -> int | None:
        number = value.removesuffix("MHz").strip()
        return int(number) if number.isdigit() else None

    return {"driver": parts[0] or None, "sm_clock_max_mhz": mhz(parts[1]),
            "memory_clock_max_mhz": mhz(parts[2])}


def machine_differences(a: dict[str, Any] | None, b: dict[str, Any] | None,
                        names: tuple[str, str] = ("A", "B")) -> list[str]:
    """Every difference between two descriptions, one line each, in key order:
    ``cpu.model: AMD EPYC vs Intel Xeon``, ``cpu.isa: amx_bf16 only in B``."""
    flat_a, flat_b = _flatten(a or {}), _flatten(b or {})
    lines = []
    for key in sorted(flat_a.keys() | flat_b.keys()):
        left, right = flat_a.get(key), flat_b.get(key)
        if left == right:
            continue
        if isinstance(left, list) or isinstance(right, list):
            only_a = sorted(set(left or ()) - set(right or ()))
            only_b = sorted(set(right or ()) - set(left or ()))
            parts = [f"{', '.join(only_a)} only in {names[0]}"] if only_a else []
            parts += [f"{', '.join(only_b)} only in {names[1]}"] if only_b else []
            lines.append(f"{key}: {'; '.join(parts)}")
        else:
            lines.append(f"{key}: {_shown(left)} vs {_shown(right)}")
    return lines


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _shown(value: Any) -> str:
    return "unknown" if value is None else str(value)
