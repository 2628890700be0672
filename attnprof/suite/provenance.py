"""Where and with what a result was measured: versions, machine, threads, commit, time."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (fast), else py-cpuinfo, else the platform."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        import cpuinfo

        return cpuinfo.get_cpu_info().get("brand_raw") or platform.processor()
    except Exception:  # py-cpuinfo probes the machine; any failure just means "unknown"
        return platform.processor() or "unknown"


def git_commit(folder: Path | None = None) -> str | None:
    folder = folder or Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "")


def gpu_info() -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    driver = None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        driver = result.stdout.strip().splitlines()[0] if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return {
        "name": props.name,
        "memory_bytes": props.total_memory,
        "driver": driver,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def collect() -> dict[str, Any]:
    """Provenance of a run, recorded with every results file."""
    from attnprof import __version__

    return {
        "attnprof": __version__,
        "torch": torch.__version__,
        "fvcore": _version("fvcore"),
        "thop": _version("thop"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_info(),
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
