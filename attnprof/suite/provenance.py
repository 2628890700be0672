"""Where and with what a result was measured: versions, machine, threads, commit, time.

The machine's description comes from :func:`attnprof.latency.environment.collect_environment`,
the same one every latency record embeds, so a results file and its records never disagree.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from attnprof.latency.environment import collect_environment
from attnprof.results import Provenance


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path | None = None) -> str | None:
    """The commit of the checkout attnprof runs from (``-dirty`` when changed), if any."""
    folder = folder or Path(__file__).resolve().parents[2]

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None

    head = git("rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = status is not None and bool(status.stdout.strip())
    return head.stdout.strip() + ("-dirty" if dirty else "")


def gpu_info() -> dict[str, Any] | None:
    """The GPU torch would use, or ``None`` without CUDA."""
    if not torch.cuda.is_available():
        return None
    env = collect_environment("cuda")
    return {
        "name": env.device_name,
        "memory_bytes": env.gpu_memory_bytes,
        "capability": env.gpu_capability,
        "driver": env.driver_version,
        "cuda": env.cuda_version,
        "cudnn": env.cudnn_version,
    }


def collect() -> Provenance:
    """Provenance of a run, recorded with every results file."""
    env = collect_environment("cpu")
    return Provenance(
        attnprof=env.attnprof_version,
        torch=env.torch_version,
        fvcore=_version("fvcore"),
        thop=_version("thop"),
        python=env.python_version,
        platform=env.platform,
        cpu=env.cpu_model,
        cpu_count=env.logical_cpus,
        gpu=gpu_info(),
        threads=env.torch_threads,
        git_commit=git_commit(),
        utc=env.timestamp_utc,
    )
