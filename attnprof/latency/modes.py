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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from attnprof.errors import AttnprofError, choices
from attnprof.records_json import JsonRecord


@dataclass(frozen=True)
class OutputCheck(JsonRecord):
    """How far a built model's outputs are from eager's on the same random input.

    ``ok`` when every element is within ``atol + rtol * |eager|`` (``torch.allclose``'s rule).
    """

    max_abs_err: float
    max_rel_err: float
    atol: float
    rtol: float
    ok: bool

    @classmethod
    def of(cls, expected: torch.Tensor, got: torch.Tensor, atol: float, rtol: float
           ) -> OutputCheck:
        expected, got = expected.detach().float().cpu(), got.detach().float().cpu()
        if expected.shape != got.shape:
            raise AttnprofError(
                f"the built model returns shape {tuple(got.shape)}, eager "
                f"{tuple(expected.shape)}"
            )
        diff = (expected - got).abs()
        scale = expected.abs().clamp_min(1e-12)
        return cls(float(diff.max()), float((diff / scale).max()), atol, rtol,
                   bool(torch.allclose(got, expected, atol=atol, rtol=rtol)))


@dataclass(frozen=True)
class BuildRequest:
    """What a mode builds from: the model (eval mode, or train mode for a training step, on
    the device), an example input, a folder for artifacts, the run's threads."""

    model: nn.Module
    example: torch.Tensor
    folder: Path
    threads: int
    name: str
    pass_name: str = "inference"
    compile_mode: str = "default"
    optimizer: str = "none"


@dataclass(frozen=True)
class Built(JsonRecord):
    """What a build left: the artifact (``None`` when it lives in a compiler's cache), how
    long building took, the output check, and the runtime's own version and settings."""

    path: str | None
    build_s: float
    check: OutputCheck | None
    runtime_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadRequest:
    """What a timing process loads from: the model and input as the build saw them, the
    artifact the build left, and the pass (a training step times forward, loss, backward)."""

    model: nn.Module
    input: torch.Tensor
    threads: int
    built: Built | None = None
    pass_name: str = "inference"
    compile_mode: str = "default"
    optimizer: str = "none"


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


COMPILE_ATOL = 1e-3
COMPILE_RTOL = 1e-3
"""torch.compile reorders float32 reductions and fuses pointwise chains: outputs differ from
eager by rounding, about 1e-5 relative on a ResNet's logits; 1e-3 leaves room for deep nets."""


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
        load = LoadRequest(request.model, request.example, request.threads, None,
                           request.pass_name, request.compile_mode, request.optimizer)
        began = time.perf_counter()
        try:
            got = _run_once(_step(load, compiled), request.pass_name)
        except Exception as exc:
            from attnprof.blame import one_line

            raise AttnprofError(
                f"torch.compile (mode {request.compile_mode!r}) failed for {request.name}: "
                f"{one_line(exc)}; time it with modes = [\"eager\"]"
            ) from exc
        seconds = time.perf_counter() - began
        check = None
        if request.pass_name == "inference":
            expected = _run_once(_step(load, request.model), request.pass_name)
            check = OutputCheck.of(expected, got, COMPILE_ATOL, COMPILE_RTOL)
        return Built(None, seconds, check, torch.__version__,
                     {"compile_mode": request.compile_mode})

    def load(self, request: LoadRequest) -> Callable[[], object]:
        return _step(request, torch.compile(request.model, mode=request.compile_mode))


def _run_once(call: Callable[[], object], pass_name: str) -> torch.Tensor:
    context = torch.enable_grad() if pass_name == "train" else torch.inference_mode()
    with context:
        out = call()
    return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)


EAGER = EagerHooks()
COMPILE = CompileHooks()

MODES: dict[str, Mode] = {
    "eager": Mode("eager", "PyTorch eager execution, one kernel per op",
                  ("inference", "train"), "attnprof.latency.modes:EAGER"),
    "compile": Mode("compile", "torch.compile (inductor); compiled once per run, its caches "
                    "serve every timing process; compilation timed apart, never mixed into "
                    "the timings", ("inference", "train"), "attnprof.latency.modes:COMPILE",
                      builds=True),
}
"""The modes a suite can time, by name."""


def check_mode(name: str) -> Mode:
    if name not in MODES:
        raise AttnprofError(f"unknown mode {name!r}; valid modes: {choices(MODES)}")
    return MODES[name]


def check_condition(condition: Any, device: torch.device) -> None:
    """Refuse a pass x mode that cannot run on ``device`` here, with why and what would."""
    from attnprof.passes import check_pass

    check_pass(condition.pass_name)
    mode = check_mode(condition.mode)
    if condition.pass_name not in mode.passes:
        raise AttnprofError(
            f"mode {mode.name!r} times {' and '.join(mode.passes)} only, not the "
            f"{condition.pass_name!r} pass; time that pass with modes eager or compile"
        )
    reason = mode.load_hooks().unavailable(device)
    if reason is not None:
        install = f" (pip install 'attnprof[{mode.extra}]')" if mode.extra else ""
        raise AttnprofError(
            f"mode {mode.name!r} cannot run on {device} here: {reason}{install}; time the "
            f"other modes without it"
        )
