"""AOTInductor: the model compiled ahead of time by inductor into a ``.pt2`` package, the
deployable form of ``torch.compile``, loaded and run without Python tracing or recompiling.

Caveats first:

- Building is slow: inductor generates C++ for the whole graph and compiles it with the
  system's C++ compiler (tens of seconds for ResNet-18, about a minute or more for ResNet-50 on
  two cores). Inductor's caches are turned off for the build, so ``build_s`` is a cold build
  every time, comparable between runs and variants, never a cache hit.
- The package is specialised to the example input's shape and to this machine's CPU
  instruction set; it is built and loaded on the same machine.
- Threads: the package's generated kernels run on OpenMP and its convolutions and matrix
  products on ATen/oneDNN, both in the process's own thread pool, so the run's thread count
  is set with ``torch.set_num_threads`` before loading and stays set for the calls (the
  timing process sets it anyway). The package honours it: loaded after
  ``torch.set_num_threads(1)`` one OS thread does the work, after ``(2)`` two share it
  (per-thread CPU time, tests/test_runtimes.py), also when a process loads it a second time
  with another count.
- Tolerance of the output check: ``atol`` 1e-5, ``rtol`` 1e-4 of the largest eager output.
  Both compute in float32, but inductor fuses BatchNorm and the pointwise chains into
  generated loops and reduces in its own (vectorised) order, which moves ResNet outputs by
  about 1e-6 of their scale.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable
from pathlib import Path

import torch

from attnprof.errors import AttnprofError
from attnprof.runtimes.base import (
    BuildRequest,
    Built,
    LoadRequest,
    Runtime,
    cpu_only,
    failure,
    nothing_left_on_error,
    stopwatch,
    verify,
)

NAME = "aoti"
EXTRA = "aoti"
ATOL = 1e-5
RTOL = 1e-4
FILE = "model.pt2"


def unavailable(device: str) -> str | None:
    """Why an AOTInductor package cannot be built and timed on ``device`` here."""
    refused = cpu_only(NAME, device)
    if refused:
        return refused
    from attnprof.latency.settings import compile_unavailable_reason

    reason = compile_unavailable_reason(torch.device(device))
    if reason is not None:
        return f"{NAME} cannot build here: {reason}"
    import importlib

    inductor = importlib.import_module("torch._inductor")
    if not hasattr(inductor, "aoti_compile_and_package"):
        return f"{NAME} needs torch >= 2.6 (aoti_compile_and_package), have {torch.__version__}"
    return None


def _bound_call(path: Path, request: LoadRequest, expected: tuple[int, ...] | None):
    if expected is not None and tuple(request.input.shape) != expected:
        raise AttnprofError(
            f"{NAME}: the package at {path} was compiled for input {expected}, got "
            f"{tuple(request.input.shape)}"
        )
    torch.set_num_threads(request.threads)
    runner = torch._inductor.aoti_load_package(str(path))
    x = request.input.detach().contiguous()

    def forward():
        """One call of the loaded package under ``torch.inference_mode``: the compiled
        kernels on the prepared input, the output tensor allocated by the package."""
        with torch.inference_mode():
            return runner(x)

    return forward


def load(built: Built, request: LoadRequest) -> Callable[[], object]:
    """Set ``torch.set_num_threads(request.threads)`` (left set: the calls need it), load the
    package; the call that is timed is one forward of it on the input prepared here."""
    return _bound_call(built.path, request, built.input_shape)


def build(request: BuildRequest) -> Built:
    """``torch.export.export`` then ``aoti_compile_and_package`` into
    ``request.folder/model.pt2`` (caches off), and check the loaded package against eager."""
    import torch._inductor.config as inductor_config

    path = request.folder / FILE
    with nothing_left_on_error(request.folder):
        with stopwatch() as elapsed:
            started = time.perf_counter()
            try:
                with torch.inference_mode(False), torch.no_grad():
                    program = torch.export.export(request.model, (request.example,))
            except Exception as exc:
                raise failure(request, NAME, "export", exc) from exc
            export_s = time.perf_counter() - started
            try:
                with inductor_config.patch(force_disable_caches=True):
                    torch._inductor.aoti_compile_and_package(program, package_path=str(path))
            except Exception as exc:
                raise failure(request, NAME, "compile", exc) from exc
        # verify restores torch's thread count after the load has set it
        check = verify(request, NAME, lambda req: _bound_call(path, req, None), ATOL, RTOL)
    details = {
        "export_s": export_s,
        "compile_s": elapsed[0] - export_s,
        "package_bytes": path.stat().st_size,
        "inductor_caches": "disabled",
    }
    return Built(runtime=NAME, path=path, input_shape=request.input_shape,
                 build_s=elapsed[0], check=check, runtime_version=_version(), details=details)


def _version() -> str:
    try:
        return f"torch {importlib.metadata.version('torch')}"
    except importlib.metadata.PackageNotFoundError:
        return f"torch {torch.__version__}"


RUNTIME = Runtime(
    name=NAME,
    description=("AOTInductor .pt2 package: torch.export, inductor C++ compiled ahead of time "
                 "(caches off), loaded with aoti_load_package, torch threads set to the run's"),
    extra=EXTRA,
    passes=("inference",),
    unavailable=unavailable,
    build=build,
    load=load,
)
