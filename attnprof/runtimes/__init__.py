"""Deployment runtimes as timing modes: ONNX Runtime, AOTInductor and OpenVINO on the CPU.

Each runtime is a :class:`Runtime` record: what it runs, the pip extra that installs it,
``unavailable(device)`` (one line when it cannot run here), ``build`` (once per run and
variant: export or compile, then check the outputs against eager PyTorch) and ``load`` (in
every timing process: the zero-argument call that is timed). The runtimes' own libraries are
imported only inside those functions, so importing attnprof never needs them.

    >>> from attnprof.runtimes import RUNTIMES, BuildRequest, LoadRequest
    >>> runtime = RUNTIMES["onnxruntime"]
    >>> runtime.unavailable("cpu")          # None, or "onnxruntime needs ...; pip install ..."
    >>> built = runtime.build(BuildRequest(model, x, folder, threads=2, name="resnet50 + se"))
    >>> forward = runtime.load(built, LoadRequest(input=x, threads=2))
    >>> forward()                            # what is timed: one inference forward
"""

from attnprof.errors import AttnprofError, choices
from attnprof.runtimes import aoti, onnx_rt, openvino_rt
from attnprof.runtimes.base import BuildRequest, Built, LoadRequest, OutputCheck, Runtime

RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime for runtime in (onnx_rt.RUNTIME, aoti.RUNTIME, openvino_rt.RUNTIME)
}
"""The runtimes by name."""


def get_runtime(name: str) -> Runtime:
    """The runtime called ``name``; an unknown name raises with the valid ones."""
    if name not in RUNTIMES:
        raise AttnprofError(f"unknown runtime {name!r}; valid runtimes: {choices(RUNTIMES)}")
    return RUNTIMES[name]


def require(name: str, device: str) -> Runtime:
    """The runtime called ``name``, refused in one line when it cannot run on ``device``."""
    runtime = get_runtime(name)
    reason = runtime.unavailable(device)
    if reason is not None:
        raise AttnprofError(reason)
    return runtime


__all__ = [
    "RUNTIMES",
    "BuildRequest",
    "Built",
    "LoadRequest",
    "OutputCheck",
    "Runtime",
    "get_runtime",
    "require",
]
