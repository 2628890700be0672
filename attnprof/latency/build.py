"""Build once per run what a mode needs, before any timing process: compile, export, package.

Caveats first: the build runs in a fresh process of its own, never in a timing process, so
that the compiler's memory and one-time work stay out of every timing (a one-process timing,
``processes = 1``, builds in its own process, and its notes say its interval describes that
process only); a timing process then
only loads (an ONNX file, an AOTInductor package) or compiles from the warm caches the build
left. A build that fails, or whose model does not compute what eager computes on the same
random input (within the mode's tolerance), fails that arm with the reason in one line: the
arm is never timed and never silently skipped.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from attnprof.latency.modes import MODES, BuildRequest, Built
from attnprof.latency.records import arm_key
from attnprof.latency.rounds import ModelOrFactory, seeded_build, settings_of
from attnprof.latency.spec import Condition, TimingSpec
from attnprof.latency.timing import make_input, prepare_model


@dataclass(frozen=True)
class BuildJob:
    """The arms of one group whose modes build, and the folder their artifacts go to."""

    spec: TimingSpec
    variants: Mapping[str, ModelOrFactory]
    arms: tuple[tuple[Condition, str], ...]
    folder: str


@dataclass(frozen=True)
class BuildRun:
    """What a build process left: ``built`` by arm key, ``failed`` arms with one line each
    (their tracebacks in ``tracebacks``), and how long the whole build took."""

    built: dict[str, Built] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0


def needs_build(condition: Condition) -> bool:
    """Whether the condition's mode builds anything once per run."""
    return MODES[condition.mode].builds


def artifact_folder(root: str | Path, condition: Condition, variant: str) -> Path:
    """Where one arm's artifact goes: a folder of its own per mode, pass *and variant*.

    Why the variant: every runtime writes one file name (``model.onnx``, ``model.pt2``, ...),
    so arms sharing a folder would overwrite each other and every process would then time
    the last one built against itself. The name keeps the variant readable (an import path's
    ``:`` and ``/`` become ``_``) and ends in a checksum of the exact name, so two names that
    read alike never share a folder.
    """
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", variant)[:60]
    tag = f"{zlib.crc32(variant.encode()):08x}"
    return Path(root, condition.mode, condition.pass_name, f"{readable}-{tag}")


def build_arms(job: BuildJob, progress: Callable[[int, int], None] | None = None) -> BuildRun:
    """Build every arm of ``job`` here (the worker's entry point); failures are per arm."""
    began = time.perf_counter()
    spec = job.spec
    settings = settings_of(spec)
    previous = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        run = _build_each(job, settings, progress)
    finally:
        torch.set_num_threads(previous)
    return BuildRun(run.built, run.failed, run.tracebacks, time.perf_counter() - began)


def _build_each(job: BuildJob, settings, progress) -> BuildRun:
    import traceback

    from attnprof.blame import one_line
    from attnprof.errors import AttnprofError

    spec = job.spec
    x = make_input(spec.input_shape, spec.batch, settings, spec.seed)
    run = BuildRun()
    for done, (condition, variant) in enumerate(job.arms, 1):
        key = arm_key(condition.label, variant)
        try:
            model = prepare_model(seeded_build(variant, job.variants[variant], spec.seed),
                                  settings, train=condition.pass_name == "train")
            folder = artifact_folder(job.folder, condition, variant)
            folder.mkdir(parents=True, exist_ok=True)
            built = MODES[condition.mode].load_hooks().build(BuildRequest(
                model, x, folder, spec.threads, variant, condition.pass_name,
                spec.compile_mode, spec.optimizer, spec.dtype))
            if built is not None and built.check is not None and not built.check.ok:
                check = built.check
                raise AttnprofError(
                    f"{condition.mode} computes other outputs than eager for {variant}: max "
                    f"abs error {check.max_abs_err:.3g}, max rel error {check.max_rel_err:.3g} "
                    f"(allowed atol {check.atol:g}, rtol {check.rtol:g}); not timed"
                )
            if built is not None:
                run.built[key] = built
        except Exception as exc:
            line = str(exc) if isinstance(exc, AttnprofError) else one_line(exc)
            run.failed[key] = line
            run.tracebacks[key] = "".join(traceback.format_exception(exc)).rstrip()
        if progress is not None:
            progress(done, len(job.arms))
    return run
