"""ONNX Runtime: the model exported with ``torch.onnx``, run by an ``InferenceSession`` on the
CPU with every graph optimisation on.

Caveats first:

- The export is static: the graph is specialised to the example input's shape (batch and
  resolution), which is the shape that is timed. The exporter is the one built on
  ``torch.export`` (``dynamo=True``, needs ``onnxscript``); only when it fails is the older
  TorchScript exporter tried, and :attr:`Built.details` says which one produced the file and
  why the first failed. The TorchScript exporter traces, and a trace of a forward that
  branches on a tensor's value keeps the one branch it saw: its tracer warnings are errors
  here, so such a model fails instead of exporting wrong. A model that neither exports raises
  with the first exporter's reason (its root cause, on one line).
- The session's graph optimisation (``ORT_ENABLE_ALL``: constant folding, Conv+BN+ReLU and
  Gemm+activation fusion, the blocked NCHWc layout for convolutions) runs when a session is
  created, so it is paid at load, in every timing process, never in a timed call.
- Threads: ``intra_op_num_threads`` is the run's thread count, ``inter_op_num_threads`` 1,
  sequential execution. The intra-op threads do not spin between calls
  (``session.intra_op.allow_spinning = 0``): in paired rounds two sessions, or a session and
  eager PyTorch, take turns in one process, and a pool that spins after its call would take
  a core from the next one. A server that runs one session alone may spin and can be a
  little faster than timed here.
- Tolerance of the output check: ``atol`` 1e-5, ``rtol`` 1e-4 of the largest eager output.
  Both sides compute in float32; the export folds BatchNorm into the convolutions and the
  session sums convolutions in another order (MLAS, NCHWc blocks), which moves ResNet
  outputs by about 1e-6 of their scale; a wrong operator moves them by far more than 1e-4.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnprof.errors import AttnprofError
from attnprof.runtimes.base import (
    BuildRequest,
    Built,
    LoadRequest,
    Runtime,
    cpu_only,
    failure,
    missing_packages,
    nothing_left_on_error,
    stopwatch,
    verify,
)

NAME = "onnxruntime"
EXTRA = "onnx"
PACKAGES = ("onnx", "onnxruntime", "onnxscript")
ATOL = 1e-5
RTOL = 1e-4
FILE = "model.onnx"


def unavailable(device: str) -> str | None:
    """Why ONNX Runtime cannot time on ``device`` here (``None``: it can)."""
    return cpu_only(NAME, device) or missing_packages(NAME, EXTRA, PACKAGES)


def _export(request: BuildRequest, path: Path, dynamo: bool) -> None:
    import torch

    # The exporters print progress, graphs and warnings; the file (or the error) is what counts.
    with (contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()),
          warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad()):
        warnings.simplefilter("ignore")
        if not dynamo:
            # A trace that reads a tensor's value keeps the one branch it saw: refuse it.
            warnings.simplefilter("error", torch.jit.TracerWarning)
        torch.onnx.export(request.model, (request.example,), str(path), dynamo=dynamo)


def export(request: BuildRequest, path: Path) -> dict[str, Any]:
    """Export ``request.model`` to ``path``; returns which exporter wrote it (and why the
    first one failed, when it did). Raises AttnprofError when neither exports the model."""
    try:
        _export(request, path, dynamo=True)
        return {"exporter": "torch.onnx dynamo=True (torch.export)"}
    except Exception as first:
        try:
            _export(request, path, dynamo=False)
        except Exception:
            raise failure(request, NAME, "export", first) from first
        return {"exporter": "torch.onnx dynamo=False (TorchScript)",
                "dynamo_failure": failure(request, NAME, "export", first).args[0]}


def session_options(threads: int, *, profile_prefix: str | None = None,
                    optimized_path: Path | None = None):
    """The session options every timed and profiled session uses (see the module doc)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: the NCHWc serialisation warning is expected
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return options


def open_session(path: Path, threads: int, **options):
    """An ``InferenceSession`` of the file at ``path`` on the CPU execution provider."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads, **options),
                                providers=["CPUExecutionProvider"])


def save_optimized(path: Path, out: Path, threads: int) -> Path:
    """Write the graph ONNX Runtime actually runs (after ``ORT_ENABLE_ALL``) to ``out``.

    Caveat: the file may hold operators of this CPU's blocked layout (NCHWc); it is for reading
    (node counts, names for the profiler), or for loading on this same machine only."""
    open_session(path, threads, optimized_path=out)
    return out


def _bound_call(path: Path, request: LoadRequest, expected: tuple[int, ...] | None):
    if expected is not None and tuple(request.input.shape) != expected:
        raise AttnprofError(
            f"{NAME}: the model at {path} was exported for input {expected}, got "
            f"{tuple(request.input.shape)}"
        )
    session = open_session(path, request.threads)
    name = session.get_inputs()[0].name
    feed = {name: request.input.detach().contiguous().numpy()}

    def forward() -> list:
        """One ``session.run``: binds the prepared numpy input (no copy of a contiguous
        float32 array), runs the graph, allocates the outputs and returns them as numpy."""
        return session.run(None, feed)

    return forward


def load(built: Built, request: LoadRequest) -> Callable[[], object]:
    """Open a session on ``built``'s file with the run's threads; the call that is timed is
    one ``session.run(None, {input: x})`` on the input prepared here, once."""
    return _bound_call(built.path, request, built.input_shape)


def build(request: BuildRequest) -> Built:
    """Export to ``request.folder/model.onnx``, check a session's outputs against eager, and
    count the nodes before and after ONNX Runtime's optimisation."""
    import onnx
    import onnxruntime as ort

    path = request.folder / FILE
    with nothing_left_on_error(request.folder):
        with stopwatch() as elapsed:
            details = export(request, path)
        check = verify(request, NAME, lambda req: _bound_call(path, req, None), ATOL, RTOL)
        optimized = save_optimized(path, request.folder / "model.optimized.onnx",
                                   request.threads)
    details.update({
        "export_s": elapsed[0],
        "nodes_exported": len(onnx.load(str(path), load_external_data=False).graph.node),
        "nodes_optimized": len(onnx.load(str(optimized), load_external_data=False).graph.node),
        "optimized_path": str(optimized),
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "execution_provider": "CPUExecutionProvider",
        "intra_op_spinning": False,
    })
    return Built(runtime=NAME, path=path, input_shape=request.input_shape,
                 build_s=elapsed[0], check=check, runtime_version=ort.__version__,
                 details=details)


RUNTIME = Runtime(
    name=NAME,
    description=("ONNX Runtime CPUExecutionProvider: torch.onnx export (dynamo), "
                 "ORT_ENABLE_ALL graph optimisations, the run's threads intra-op, no spinning"),
    extra=EXTRA,
    passes=("inference",),
    unavailable=unavailable,
    build=build,
    load=load,
)
