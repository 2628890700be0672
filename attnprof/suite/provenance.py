"""Where and with what a result was measured: versions, machine, threads, commit, time, and
the suite file's own repository and commit with each variant's source fingerprint.

The summary fields come from :func:`attnprof.latency.environment.collect_environment`, the same
one every latency record embeds, so a results file and its records never disagree; the detailed
machine (CPU model, family, ISA extensions, caches; torch's build; the GPU) comes from
:func:`attnprof.machine.describe_machine`, which ``compare`` and ``merge`` tell machines apart by.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from attnprof.latency.environment import collect_environment
from attnprof.results import Provenance
from attnprof.suite.config import Suite


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(folder: Path | None = None) -> str | None:
    """The commit of the checkout attnprof runs from (``-dirty`` when changed), if any."""
    folder = folder or Path(__file__).resolve().parents[2]

    def git(*args: str) -> subprocess.CompletedProcess | None:
        return _git(folder, *args)

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


def suite_source(path: str | Path) -> dict[str, Any] | None:
    """The git repository a suite file lives in: its ``repository`` (the origin's URL, else the
    top folder's name), ``commit``, ``path`` inside it, and whether the file (``file_dirty``) or
    any tracked file (``dirty``) differs from the commit. ``None`` outside git or for a shipped
    suite (attnprof's own commit covers it)."""
    from attnprof.suite.config import SUITES_DIR

    file = Path(path)
    if not file.is_file() or file.resolve().parent == SUITES_DIR.resolve():
        return None
    folder = file.resolve().parent
    top = _git(folder, "rev-parse", "--show-toplevel")
    head = _git(folder, "rev-parse", "HEAD")
    if top is None or head is None or top.returncode or head.returncode:
        return None
    root = Path(top.stdout.strip())
    relative = file.resolve().relative_to(root.resolve()).as_posix()
    origin = _git(folder, "remote", "get-url", "origin")
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    changed_file = _git(root, "status", "--porcelain", "--", relative)
    return {
        "repository": origin.stdout.strip() if origin and not origin.returncode else root.name,
        "commit": head.stdout.strip(),
        "path": relative,
        "dirty": bool(changed and changed.stdout.strip()),
        "file_dirty": bool(changed_file and changed_file.stdout.strip()),
    }


def collect(suite: Suite | None = None, device: str = "cpu") -> Provenance:
    """Provenance of a run, recorded with every results file (with ``suite``: its file's
    repository and each variant's source fingerprint; with a CUDA ``device``: the GPU)."""
    from attnprof.fingerprint import variant_source_fingerprint
    from attnprof.machine import describe_machine

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
        machine=describe_machine(device),
        suite_source=suite_source(suite.source) if suite is not None and suite.source else None,
        variant_sources=None if suite is None else {
            v.name: variant_source_fingerprint(v.attention) for v in suite.variants
        },
    )
