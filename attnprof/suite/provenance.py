"""Where and with what a result was measured: versions, machine, threads, commit, time, and
the suite file's own repository and commit with each variant's source fingerprint.

The summary fields come from :func:`attnprof.latency.environment.collect_environment`, the same
one every latency record embeds, so a results file and its records never disagree; the detailed
machine (CPU model, family, ISA extensions, caches; torch's build; the GPU) comes from
:func:`attnprof.machine.describe_machine`, which ``compare`` and ``merge`` tell machines apart by.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from attnprof.errors import AttnprofError
from attnprof.latency.environment import collect_environment
from attnprof.machine.identity import git_output, suite_source
from attnprof.results import Provenance
from attnprof.suite.config import Suite


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path | None = None) -> str | None:
    """The commit of the checkout attnprof runs from (``-dirty`` when changed), if any."""
    folder = folder or Path(__file__).resolve().parents[2]
    head = git_output(folder, "rev-parse", "HEAD")
    if not head:
        return None
    dirty = git_output(folder, "status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if dirty else "")


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


def collect(suite: Suite | None = None, devices: str | Iterable[str] = ()) -> Provenance:
    """Provenance of a run, recorded with every results file.

    ``suite``: adds its file's repository (:func:`attnprof.machine.suite_source`; ``None`` for
    a shipped suite) and each variant's source fingerprint. ``devices``: the device or devices
    the run times on (``"cuda"``, ``("cpu", "cuda")``); the detailed machine then describes the
    GPU as well."""
    from attnprof.machine import describe_machine

    devices = (devices,) if isinstance(devices, str) else tuple(devices)
    device = next((d for d in devices if str(d).startswith("cuda")), "cpu")
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
        variant_sources=None if suite is None else variant_sources(suite),
    )


def variant_sources(suite: Suite) -> dict[str, str]:
    """Each variant's name -> the fingerprint of its attention factory's source file
    (:func:`attnprof.fingerprint.variant_source_fingerprint`); a variant whose module can no
    longer be found is left out rather than failing the run's record."""
    from attnprof.fingerprint import variant_source_fingerprint

    found = {}
    for variant in suite.variants:
        try:
            found[variant.name] = variant_source_fingerprint(variant.attention)
        except AttnprofError:
            continue
    return found
