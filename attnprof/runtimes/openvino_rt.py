"""OpenVINO on the CPU: the model converted with ``openvino.convert_model``, saved as IR
(float32 weights), compiled by the CPU plugin for latency with the run's threads.

Caveats first:

- Precision is pinned to float32 (``INFERENCE_PRECISION_HINT = f32``): on a CPU with bf16 or
  AMX instructions the plugin would otherwise run bfloat16 by default, and the latency would
  not be the float32 model's that the other modes time. The IR is saved without the default
  float16 compression of weights, for the same reason.
- ``convert_model`` traces the forward with TorchScript; a forward that branches on a
  tensor's value would keep the one branch it saw, so the tracer's warnings are errors and
  such a model fails to convert instead of converting wrong.
- Compilation (the CPU plugin's graph transformations and kernel choice) happens in
  ``compile_model``, at load, in every timing process; the artifact built once is the IR.
- ``PERFORMANCE_HINT = LATENCY`` and ``INFERENCE_NUM_THREADS`` = the run's threads; one
  inference request, synchronous. The plugin's own thread pool (TBB) is not torch's.
- Tolerance of the output check: ``atol`` 1e-5, ``rtol`` 1e-3 of the largest eager output,
  ten times looser in ``rtol`` than ONNX Runtime's and AOTInductor's: the CPU plugin may pick
  other float32 convolution algorithms (oneDNN's Winograd and blocked kernels among them),
  whose rounding differs more from ATen's direct convolutions.
"""

from __future__ import annotations

import warnings
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
RTOL = 1e-3
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
    """Convert with ``openvino.convert_model(model, example_input=x)``, save the IR in
    ``request.folder/model.xml`` (float32 weights), and check it against eager."""
    import openvino as ov
    import torch

    path = request.folder / FILE
    with nothing_left_on_error(request.folder):
        with stopwatch() as elapsed:
            try:
                with (torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings()):
                    # convert_model traces the forward; a trace that reads a tensor's value
                    # keeps the one branch it saw, so the tracer's warning is an error here.
                    warnings.simplefilter("error", torch.jit.TracerWarning)
                    model = ov.convert_model(request.model, example_input=request.example)
                ov.save_model(model, str(path), compress_to_fp16=False)
            except Exception as exc:
                raise failure(request, NAME, "convert", exc) from exc
        check = verify(request, NAME, lambda req: _bound_call(path, req, None), ATOL, RTOL)
    details = {"convert_s": elapsed[0], "config": compile_config(request.threads),
               "nodes": len(model.get_ordered_ops())}
    return Built(runtime=NAME, path=path, input_shape=request.input_shape,
                 build_s=elapsed[0], check=check, runtime_version=ov.get_version(),
                 details=details)


RUNTIME = Runtime(
    name=NAME,
    description=("OpenVINO CPU plugin: openvino.convert_model IR (float32 weights), "
                 "compiled with the LATENCY hint, f32 precision, the run's threads"),
    extra=EXTRA,
    passes=("inference",),
    unavailable=unavailable,
    build=build,
    load=load,
)
