"""What machine and software a result was measured on, in enough detail to tell two apart.

Caveat first: everything here is read, never guessed. A field its source does not state is
``None`` (a CPU without a sysfs cache folder, a torch build whose configuration has other
lines); nothing volatile (the clock frequency, the load, the time) is included, so two runs on
the same machine describe it identically and two machines differ exactly where they do. The
thread counts are the process's settings when the description is taken, not necessarily the
ones a timing later used (timings record their own).

Sources, and the exact lines relied on:

- the CPU: py-cpuinfo's ``get_cpu_info()`` (``brand_raw``, ``vendor_id_raw``, ``arch``,
  ``family``, ``model``, ``stepping``, ``flags``; cached for the process, it takes a few tenths
  of a second); the cache sizes from Linux's sysfs
  (``/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}``), else glibc's
  ``os.sysconf("SC_LEVEL*_CACHE_SIZE")``. py-cpuinfo's own cache figures are not used: they mix
  per-core and all-core totals from one platform to the next;
- torch's build: ``torch.__config__.show()``, the lines ``- Intel(R) ... Math Kernel Library
  Version X``, ``- Intel(R) MKL-DNN vX`` (or ``oneDNN vX``), ``- OpenMP N (a.k.a. OpenMP X)``
  and ``BLAS_INFO=X`` / ``USE_OPENMP=OFF`` among the build settings; and
  ``torch.__config__.parallel_info()``, the lines ``at::get_num_threads() : N``,
  ``at::get_num_interop_threads() : N`` and ``ATen parallel backend: X``;
- the GPU: ``torch.cuda.get_device_properties`` and, where it exists, ``nvidia-smi
  --query-gpu=uuid,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader`` for the
  driver and the maximum clocks, the line picked by the device's UUID (so that
  ``CUDA_VISIBLE_DEVICES`` cannot pair a device with another GPU's clocks);
- a suite file's repository: ``git -C FOLDER`` (``rev-parse``, ``remote get-url origin``,
  ``status --porcelain``).
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

from attnprof.latency.environment import best_effort, cpu_capability, physical_cpus

ISA_EXTENSIONS = (
    "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd", "sve", "sve2",
)
"""The instruction-set extensions that decide which kernels torch runs (named as Linux's
``/proc/cpuinfo`` flags name them: 64-bit ARM calls NEON ``asimd``); others are not listed."""

_CACHE_ROOT = Path("/sys/devices/system/cpu/cpu0/cache")
_SIZE = re.compile(r"^(\d+)([KMG]?)$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_SYSCONF_CACHES = {"l1d": "SC_LEVEL1_DCACHE_SIZE", "l1i": "SC_LEVEL1_ICACHE_SIZE",
                   "l2": "SC_LEVEL2_CACHE_SIZE", "l3": "SC_LEVEL3_CACHE_SIZE"}
GIT_TIMEOUT_S = 10


def describe_machine(device: str = "cpu") -> dict[str, Any]:
    """``{"cpu": ..., "torch_build": ..., "gpu": ...}``: JSON values under stable key names;
    ``gpu`` is present only for a CUDA ``device`` (``"cuda"``, ``"cuda:1"``) torch can use
    (``None`` if torch then fails to describe it: a description never fails a run)."""
    description: dict[str, Any] = {"cpu": cpu_description(), "torch_build": torch_build()}
    device = str(device)
    if device.startswith("cuda") and torch.cuda.is_available():
        _, _, index = device.partition(":")
        try:
            description["gpu"] = gpu_description(int(index) if index.isdigit() else None)
        except (RuntimeError, AssertionError):  # a driver that stopped answering
            description["gpu"] = None
    return description


# --- the CPU -----------------------------------------------------------------------------------


@functools.cache
def _cpuinfo() -> dict[str, Any]:
    try:
        import cpuinfo

        return cpuinfo.get_cpu_info()
    except Exception:  # py-cpuinfo can fail on unusual platforms: then the fields are unknown
        return {}


def cpu_description() -> dict[str, Any]:
    """Model, vendor, architecture, family/model/stepping, ISA extensions (sorted), cache sizes
    in bytes (see :func:`cache_sizes`) and the logical and physical CPU counts."""
    info = _cpuinfo()
    flags = {str(flag).lower() for flag in info.get("flags") or ()}
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
        "physical_cpus": best_effort(physical_cpus),
    }


def cache_sizes(root: Path = _CACHE_ROOT) -> dict[str, int | None]:
    """Bytes of ONE instance of each cache level, ``l1d``, ``l1i``, ``l2``, ``l3``: per core for
    L1 and (on current x86) L2, per group of cores sharing it for L3, never a total over the
    chip. From sysfs, else glibc's sysconf; ``None`` where neither says."""
    found: dict[str, int | None] = dict.fromkeys(_SYSCONF_CACHES)
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
    if root == _CACHE_ROOT:
        for name, key in _SYSCONF_CACHES.items():
            if found[name] is None:
                found[name] = _sysconf(key)
    return found


def _sysconf(key: str) -> int | None:
    try:
        value = os.sysconf(key)
    except (ValueError, OSError, AttributeError):  # not a name this C library knows
        return None
    return value if value > 0 else None


# --- torch's build -----------------------------------------------------------------------------


def torch_build(config: str | None = None, parallel: str | None = None) -> dict[str, Any]:
    """torch's version; BLAS, MKL, oneDNN and OpenMP as its build reports them; its parallel
    backend and thread counts; the SIMD level its CPU kernels dispatch to; CUDA and cuDNN.

    ``config`` and ``parallel`` are the texts of ``torch.__config__.show()`` and
    ``parallel_info()`` (read when not given). ``openmp`` is the OpenMP version (``"4.5"``, or
    the ``_OPENMP`` date where no version is named), ``False`` where the build says
    ``USE_OPENMP=OFF``, else ``None``."""
    config = torch.__config__.show() if config is None else config
    parallel = torch.__config__.parallel_info() if parallel is None else parallel
    threads = _first(r"at::get_num_threads\(\)\s*:\s*(\d+)", parallel)
    interop = _first(r"at::get_num_interop_threads\(\)\s*:\s*(\d+)", parallel)
    return {
        "version": torch.__version__,
        "blas": _first(r"\bBLAS_INFO=([^,\s]+)", config),
        "mkl": _first(r"Math Kernel Library Version (\d+(?:\.\d+)*)", config),
        "onednn": _first(r"(?:MKL-DNN|oneDNN) v(\d+(?:\.\d+)*)", config),
        "openmp": _openmp(config),
        "parallel_backend": _first(r"^ATen parallel backend:\s*(.+)$", parallel),
        "intra_op_threads": int(threads) if threads else None,
        "inter_op_threads": int(interop) if interop else None,
        "cpu_capability": best_effort(cpu_capability),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, flags=re.M)
    return match[1].strip() if match else None


def _openmp(config: str) -> str | bool | None:
    match = re.search(r"^\s*-\s*OpenMP (\d+)(?: \(a\.k\.a\. OpenMP ([\d.]+)\))?", config, re.M)
    if match:
        return match[2] or match[1]
    return False if re.search(r"\bUSE_OPENMP=OFF\b", config) else None


# --- the GPU -----------------------------------------------------------------------------------

NVIDIA_SMI_QUERY = "uuid,driver_version,clocks.max.sm,clocks.max.mem"


def gpu_description(index: int | None = None) -> dict[str, Any]:
    """Name, compute capability, memory in bytes, multiprocessors and the number of visible
    GPUs from torch; the driver and the maximum SM and memory clocks (MHz) from nvidia-smi,
    ``None`` where it is absent or does not name this device."""
    index = torch.cuda.current_device() if index is None else index
    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "") or "") or None
    rows = parse_nvidia_smi(_nvidia_smi())
    row = next((r for r in rows if uuid and r["uuid"] == uuid), None)
    drivers = {r["driver"] for r in rows}  # one per machine: it holds without the row
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_bytes": int(props.total_memory),
        "multiprocessors": props.multi_processor_count,
        "count": torch.cuda.device_count(),
        "driver": drivers.pop() if len(drivers) == 1 else None,
        "clocks": {"sm_max_mhz": row["sm_max_mhz"] if row else None,
                   "memory_max_mhz": row["memory_max_mhz"] if row else None},
    }


def _nvidia_smi() -> str:
    """nvidia-smi's answer to :data:`NVIDIA_SMI_QUERY`; empty where it is absent or fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ""
    try:
        done = subprocess.run([smi, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """One ``{uuid, driver, sm_max_mhz, memory_max_mhz}`` per line of nvidia-smi's csv answer
    to :data:`NVIDIA_SMI_QUERY` (with or without units; ``[N/A]`` gives ``None``); the UUID
    without nvidia-smi's ``GPU-`` prefix, as torch prints it. Lines of another shape (an error
    message) are skipped."""
    rows = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 4 or not parts[0].startswith(("GPU-", "MIG-")):
            continue
        rows.append({"uuid": parts[0].removeprefix("GPU-"), "driver": parts[1] or None,
                     "sm_max_mhz": _mhz(parts[2]), "memory_max_mhz": _mhz(parts[3])})
    return rows


def _mhz(value: str) -> int | None:
    number = value.removesuffix("MHz").strip()
    return int(number) if number.isdigit() else None


# --- a suite file's repository -----------------------------------------------------------------


def git_output(folder: str | Path, *args: str) -> str | None:
    """The stripped output of ``git -C folder ARGS``, or ``None`` when git is missing, fails
    (not a repository, no commit yet, a repository git does not trust) or takes too long.

    Variables that point git elsewhere (``GIT_DIR``, set inside git hooks) are dropped, so the
    answer is about ``folder``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")}
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_S, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def suite_source(path: str | Path) -> dict[str, Any] | None:
    """The git repository a suite file lives in, or ``None`` outside git and for a suite
    shipped with attnprof (whose commit is attnprof's own, in the provenance already).

    Keys: ``repository`` (the ``origin`` remote's URL, else the top folder's name), ``commit``
    (HEAD), ``path`` (the file's, relative to the top folder, with ``/``), ``dirty`` (a tracked
    file of the repository differs from the commit; untracked files are not counted) and
    ``file_dirty`` (this file differs from the commit, or is not in it)."""
    from attnprof.suite.config import SUITES_DIR

    file = Path(path).expanduser()
    if not file.is_file() or file.resolve().parent == SUITES_DIR.resolve():
        return None
    folder = file.resolve().parent
    found = (git_output(folder, "rev-parse", "--show-toplevel", "HEAD") or "").splitlines()
    if len(found) != 2:  # not in a repository, or one without a commit yet
        return None
    root, head = Path(found[0]).resolve(), found[1].strip()
    try:
        relative = file.resolve().relative_to(root).as_posix()
    except ValueError:  # a link out of the repository
        return None
    changed = git_output(root, "status", "--porcelain", "--untracked-files=no")
    changed_file = git_output(root, "status", "--porcelain", "--untracked-files=all", "--",
                              relative)
    return {
        "repository": git_output(folder, "remote", "get-url", "origin") or root.name,
        "commit": head,
        "path": relative,
        "dirty": bool(changed),
        "file_dirty": bool(changed_file),
    }


# --- differences -------------------------------------------------------------------------------


def machine_differences(a: dict[str, Any] | None, b: dict[str, Any] | None,
                        names: tuple[str, str] = ("A", "B")) -> list[str]:
    """Every difference between two descriptions, one line each, in the order of their sorted
    dotted keys: ``cpu.model: AMD EPYC vs Intel Xeon``; a list names the items only one side has
    (``cpu.isa: avx512f only in A; amx_bf16 only in B``); a part only one side has is one line
    (``gpu: only in B``). ``unknown`` shows a ``None`` value, ``absent`` a missing key. Equal
    descriptions give ``[]``."""
    lines: list[str] = []
    _differences(a or {}, b or {}, "", names, lines)
    return lines


_ABSENT = object()


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str, names: tuple[str, str],
                 lines: list[str]) -> None:
    for key in sorted(a.keys() | b.keys(), key=str):
        name = f"{prefix}{key}"
        left, right = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if left == right:
            continue
        if isinstance(left, dict) and isinstance(right, dict):
            _differences(left, right, f"{name}.", names, lines)
        elif isinstance(left, dict) != isinstance(right, dict) and (
                left in (None, _ABSENT) or right in (None, _ABSENT)):
            lines.append(f"{name}: only in {names[0] if isinstance(left, dict) else names[1]}")
        elif isinstance(left, list) and isinstance(right, list):
            only_a = sorted(set(map(str, left)) - set(map(str, right)))
            only_b = sorted(set(map(str, right)) - set(map(str, left)))
            parts = [f"{', '.join(only_a)} only in {names[0]}"] if only_a else []
            parts += [f"{', '.join(only_b)} only in {names[1]}"] if only_b else []
            shown = "; ".join(parts) if parts else f"{left} vs {right}"  # order, repeats
            lines.append(f"{name}: {shown}")
        else:
            lines.append(f"{name}: {_shown(left)} vs {_shown(right)}")


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    return "unknown" if value is None else str(value)
