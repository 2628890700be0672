"""OpenVINO on the CPU: the model converted with ``openvino.convert_model``, saved as IR
(float32 weights), compiled by the CPU plugin for latency with the run's threads.

Caveats first:

- Precision is pinned to float32 (``INFERENCE_PRECISION_HINT = f32``): on a CPU with bf16 or
  AMX instructions the plugin would otherwise run bfloat16 by default, and the latency would
  not be the float32 model's that the other modes time. The IR is saved without the default
  float16 compression of weights, for the same reason.
- The model reaches OpenVINO as a ``torch.export`` program, ``convert_model(program)``,
  not as ``convert_model(model, example_input=x)``: that call traces the forward with
  TorchScript, and a trace of a forward that branches on a tensor's value keeps the one branch
  it saw, silently; its tracer warnings cannot be made errors either, since torch's own shape
  checks raise them for zoo modules (GroupNorm in SA). ``torch.export`` refuses a
  data-dependent branch instead. The converted model is reshaped to the example's static
  shape (the program's batch and spatial sizes come out dynamic).
- Compilation (the CPU plugin's graph transformations and kernel choice) happens in
  ``compile_model``, at load, in every timing process; the artifact built once is the IR.
- ``PERFORMANCE_HINT = LATENCY`` and ``INFERENCE_NUM_THREADS`` = the run's threads; one
  inference request, synchronous. The plugin's own thread pool (TBB) is not torch's.
- Tolerance of the output check: ``atol`` 1e-5, ``rtol`` 1e-4 of the largest eager output,
  as for ONNX Runtime: both compute in float32, the plugin fuses BatchNorm and picks its own
  (oneDNN, blocked-layout) convolutions, and ResNet-18 and ResNet-50 outputs move by about
  1e-6 of their scale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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

NAME = "openvino"
EXTRA = "openvino"
PACKAGES = ("openvino",)
ATOL = 1e-5
RTOL = 1e-4
FILE = "model.xml"


def unavailable(device: str) -> str | None:
    """Why OpenVINO cannot time on ``device`` here (``None``: it can)."""
    return cpu_only(NAME, device) or missing_packages(NAME, EXTRA, PACKAGES)


def compile_config(threads: int) -> dict[str, str]:
    """The CPU plugin's configuration for a timed model (see the module doc)."""
    return {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads),
            "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": "1"}


def _bound_call(path: Path, request: LoadRequest, expected: tuple[int, ...] | None):
    import openvino as ov

    if expected is not None and tuple(request.input.shape) != expected:
        raise AttnprofError(
            f"{NAME}: the model at {path} was converted for input {expected}, got "
            f"{tuple(request.input.shape)}"
        )
    compiled = ov.Core().compile_model(str(path), "CPU", compile_config(request.threads))
    infer = compiled.create_infer_request()
    x = request.input.detach().contiguous().numpy()

    def forward():
        """One synchronous ``infer``: the prepared numpy input shared, not copied; the output
        copied out into a new numpy array (as the other runtimes hand back new outputs)."""
        return infer.infer({0: x}, share_inputs=True, share_outputs=False)

    return forward


def load(built: Built, request: LoadRequest) -> Callable[[], object]:
    """Compile the IR for the CPU with the run's threads; the call that is timed is one
    synchronous inference on the input prepared here."""
    return _bound_call(built.path, request, built.input_shape)


def build(request: BuildRequest) -> Built:
    """``torch.export`` the model, convert the program with ``openvino.convert_model``, save
    the IR in ``request.folder/model.xml`` (float32 weights), and check it against eager."""
    import openvino as ov
    import torch

    path = request.folder / FILE
    with nothing_left_on_error(request.folder):
        with stopwatch() as elapsed:
            try:
                with torch.inference_mode(False), torch.no_grad():
                    program = torch.export.export(request.model, (request.example,))
            except Exception as exc:
                raise failure(request, NAME, "export", exc) from exc
            try:
                model = ov.convert_model(program)
                model.reshape(list(request.input_shape))  # the timed shape, static
                ov.save_model(model, str(path), compress_to_fp16=False)
            except Exception as exc:
                raise failure(request, NAME, "convert", exc) from exc
        check = verify(request, NAME, lambda req: _bound_call(path, req, None), ATOL, RTOL)
    details = {"exporter": "torch.export, openvino.convert_model", "convert_s": elapsed[0],
               "config": compile_config(request.threads), "nodes": len(model.get_ordered_ops())}
    return Built(runtime=NAME, path=path, input_shape=request.input_shape,
                 build_s=elapsed[0], check=check, runtime_version=ov.get_version(),
                 details=details)


RUNTIME = Runtime(
    name=NAME,
    description=("OpenVINO CPU plugin: torch.export + openvino.convert_model IR (float32), "
                 "compiled with the LATENCY hint, f32 precision, the run's threads"),
    extra=EXTRA,
    passes=("inference",),
    unavailable=unavailable,
    build=build,
    load=load,
)
