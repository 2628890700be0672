"""The execution modes a model is timed in: one entry each, with one object of hooks.

Caveats first: a mode's timing is only comparable with the same mode's baseline; the
scheduler pairs every variant with the baseline run in the same mode and pass, never across
modes. What the timed call includes differs by mode and is stated in each hook's docstring
(ONNX Runtime's call, for one, includes binding the input and allocating the outputs).

A mode is data (:class:`Mode`: its name, what it runs, the passes it can time, the pip extra it
needs) plus one hooks object, named by import path so that listing the modes imports nothing
heavy. The hooks answer three questions:

- ``unavailable(device)``: why the mode cannot run here (``None`` when it can), asked before
  anything runs, so a missing extra or compiler is one line up front, never a failed cell;
- ``build(request)``: once per run, per variant and pass, in a fresh process before any timing
  process starts: compile, export or package the model and check that it computes what eager
  computes (``None`` for eager, which builds nothing);
- ``load(request)``: in every timing process, the zero-argument call that is timed.

Adding a mode is one entry in :data:`MODES` and one hooks object.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from attnprof.errors import AttnprofError, choices
from attnprof.runtimes.base import BuildRequest, Built, LoadRequest, compare


class ModeHooks(Protocol):
    def unavailable(self, device: torch.device) -> str | None: ...

    def build(self, request: BuildRequest) -> Built | None: ...

    def load(self, request: LoadRequest) -> Callable[[], object]: ...


@dataclass(frozen=True)
class Mode:
    """One execution mode: its name, what runs, the passes it can time, the pip extra that
    installs it (``None``: nothing beyond attnprof), and its hooks' import path."""

    name: str
    description: str
    passes: tuple[str, ...]
    hooks: str
    extra: str | None = None
    torch_memory: bool = True
    """Whether its memory goes through PyTorch's allocator (peak memory is measured then)."""
    builds: bool = False
    """Whether it builds something once per run before the timing processes (``hooks.build``)."""
    autocast: bool = True
    """Whether it runs bfloat16/float16 under ``torch.autocast`` (the runtimes: float32 only)."""

    def load_hooks(self) -> ModeHooks:
        module, _, attribute = self.hooks.partition(":")
        return getattr(importlib.import_module(module), attribute)


def _step(request: LoadRequest, runnable: Callable) -> Callable[[], object]:
    if request.pass_name == "train":
        from attnprof.passes import TrainStep

        return TrainStep(request.model, runnable, request.input, request.optimizer)
    x = request.input
    return lambda: runnable(x)


class EagerHooks:
    """PyTorch eager: the module itself, one kernel per op; nothing to build."""

    def unavailable(self, device: torch.device) -> str | None:
        return None

    def build(self, request: BuildRequest) -> Built | None:
        return None

    def load(self, request: LoadRequest) -> Callable[[], object]:
        return _step(request, request.model)


COMPILE_ATOL = 1e-5
COMPILE_RTOL = 1e-4
"""torch.compile reorders float32 reductions and fuses pointwise chains: outputs differ from
eager by rounding. The same bound as the deployment runtimes' (:mod:`attnprof.runtimes`):
at most 1e-5 + 1e-4 x the largest eager output."""


class CompileHooks:
    """``torch.compile`` (inductor). The build compiles each model once per run in a fresh
    process, which fills inductor's on-disk caches (FX graph and AOTAutograd caches); every
    timing process then compiles again, served from those caches in seconds. The build's
    first call is the compile time recorded; a timing process's first call is recorded too
    (tracing and a cache hit), and neither is ever mixed into the timings."""

    def unavailable(self, device: torch.device) -> str | None:
        from attnprof.latency.settings import compile_unavailable_reason

        return compile_unavailable_reason(device)

    def build(self, request: BuildRequest) -> Built | None:
        compiled = torch.compile(request.model, mode=request.compile_mode)
        load = LoadRequest(request.example, request.threads, request.model, None,
                           request.pass_name, request.compile_mode, request.optimizer)
        began = time.perf_counter()
        try:
            got = _run_once(_step(load, compiled), request)
        except Exception as exc:
            from attnprof.blame import one_line

            raise AttnprofError(
                f"torch.compile (mode {request.compile_mode!r}) failed for {request.name}: "
                f"{one_line(exc)}; time it with modes = [\"eager\"]"
            ) from exc
        seconds = time.perf_counter() - began
        check = None
        if request.pass_name == "inference":
            expected = _run_once(_step(load, request.model), request)
            check = compare(expected, got, COMPILE_ATOL, COMPILE_RTOL,
                            f"{request.name} under torch.compile")
            if not check.ok:
                raise AttnprofError(
                    f"{request.name}: torch.compile computes other outputs than eager on the "
                    f"same input: {check.describe()}; it is not timed")
        return Built("compile", None, request.input_shape, seconds, check, torch.__version__,
                     {"compile_mode": request.compile_mode})

    def load(self, request: LoadRequest) -> Callable[[], object]:
        return _step(request, torch.compile(request.model, mode=request.compile_mode))


def _run_once(call: Callable[[], object], request: BuildRequest) -> torch.Tensor:
    """One call as a timing process makes it: the pass's grad mode, the run's autocast (so
    the graph compiled here is the graph the timing processes find in the cache)."""
    import contextlib

    context = torch.enable_grad() if request.pass_name == "train" else torch.inference_mode()
    cast = (torch.autocast(request.example.device.type, dtype=getattr(torch, request.dtype))
            if request.dtype != "float32" else contextlib.nullcontext())
    with context, cast:
        out = call()
    return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)


class RuntimeHooks:
    """A deployment runtime (:mod:`attnprof.runtimes`) as a mode: its build exports or
    compiles and checks the model once per run, its load binds the timed input."""

    def __init__(self, name: str):
        self.name = name

    def _runtime(self):
        from attnprof.runtimes import get_runtime

        return get_runtime(self.name)

    def unavailable(self, device: torch.device) -> str | None:
        return self._runtime().unavailable(str(device))

    def build(self, request: BuildRequest) -> Built | None:
        return self._runtime().build(request)

    def load(self, request: LoadRequest) -> Callable[[], object]:
        if request.built is None:
            raise AttnprofError(f"{self.name}: nothing was built to load")
        return self._runtime().load(request.built.loadable(), request)


EAGER = EagerHooks()
COMPILE = CompileHooks()
ONNXRUNTIME = RuntimeHooks("onnxruntime")
AOTI = RuntimeHooks("aoti")
OPENVINO = RuntimeHooks("openvino")

MODES: dict[str, Mode] = {
    "eager": Mode("eager", "PyTorch eager execution, one kernel per op",
                  ("inference", "train"), "attnprof.latency.modes:EAGER"),
    "compile": Mode("compile", "torch.compile (inductor); compiled once per run, its caches "
                    "serve every timing process; compilation timed apart, never mixed into "
                    "the timings", ("inference", "train"), "attnprof.latency.modes:COMPILE",
                      builds=True),
    "onnxruntime": Mode("onnxruntime", "ONNX Runtime (CPU), exported once per run with "
                        "torch.onnx, all graph optimisations on, the run's threads",
                        ("inference",), "attnprof.latency.modes:ONNXRUNTIME", extra="onnx",
                        torch_memory=False, builds=True, autocast=False),
    "aoti": Mode("aoti", "an AOTInductor package (compiled PyTorch as deployed), built once "
                 "per run, loaded in every process", ("inference",),
                 "attnprof.latency.modes:AOTI", torch_memory=False, builds=True, autocast=False),
    "openvino": Mode("openvino", "OpenVINO's CPU plugin, converted once per run from "
                     "torch.export, latency hint, the run's threads", ("inference",),
                     "attnprof.latency.modes:OPENVINO", extra="openvino", torch_memory=False,
                     builds=True, autocast=False),
}
"""The modes a suite can time, by name."""


def check_mode(name: str) -> Mode:
    if name not in MODES:
        raise AttnprofError(f"unknown mode {name!r}; valid modes: {choices(MODES)}")
    return MODES[name]


def check_condition(condition: Any, device: torch.device, dtype: str = "float32") -> None:
    """Refuse a pass x mode that cannot run on ``device`` in ``dtype`` here, with why and what
    would."""
    from attnprof.passes import check_pass

    check_pass(condition.pass_name)
    mode = check_mode(condition.mode)
    if dtype != "float32" and not mode.autocast:
        raise AttnprofError(
            f"mode {mode.name!r} times float32 only, not {dtype}; time {dtype} with modes "
            "eager or compile"
        )
    if condition.pass_name not in mode.passes:
        raise AttnprofError(
            f"mode {mode.name!r} times {' and '.join(mode.passes)} only, not the "
            f"{condition.pass_name!r} pass; time that pass with modes eager or compile"
        )
    reason = mode.load_hooks().unavailable(device)
    if reason is not None:
        install = f"pip install 'attnprof[{mode.extra}]'"
        hint = f" ({install})" if mode.extra and install not in reason else ""
        raise AttnprofError(
            f"mode {mode.name!r} cannot run on {device} here: {reason}{hint}; time the "
            f"other modes without it"
        )
