"""What a deployment runtime declares, and the records that cross its two boundaries.

Caveats first: these runtimes time one inference forward on the CPU in float32, nothing else
(no training step, no autocast, no GPU). A runtime's artifact is built once per run, in the
process that plans the run, and loaded in every timing process; what is timed is the
zero-argument call that :attr:`Runtime.load` returns, so loading, export and compilation are
never mixed into a timing. A built artifact is checked against eager PyTorch before it is
returned: a runtime whose outputs differ beyond its declared tolerance raises, so no latency is
ever measured for a model that computes something else.

The heavy libraries (onnxruntime, openvino, the inductor compiler) are imported inside the
runtimes' functions, never when attnprof is imported: a machine without them can still load,
merge and report results that were measured with them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from attnprof.blame import one_line
from attnprof.errors import AttnprofError

REASON_CHARS = 300
"""How much of an exporter's or compiler's message goes into the one-line error; the whole
exception stays chained (``__cause__``)."""

CHECK_SEED = 20240
"""Seed of the random input the output check runs on: a fresh draw, not the example input the
model was exported with, so a graph specialised on the traced values would be caught."""


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AttnprofError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_input(what: str, x: Any) -> None:
    """A 4-D float32 input; its device is the mode's to judge (the deployment runtimes refuse
    anything but the cpu up front, in ``unavailable``)."""
    if not isinstance(x, torch.Tensor):
        raise AttnprofError(f"{what}: the input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.dtype != torch.float32:
        raise AttnprofError(
            f"{what}: the input must be a 4-D (N, C, H, W) float32 tensor, got "
            f"shape {tuple(x.shape)}, {x.dtype}, on {x.device}"
        )


@dataclass(frozen=True)
class BuildRequest:
    """Build one variant's artifact: ``model`` (eval mode; train mode for a training step)
    exported or compiled for ``example``'s shape.

    ``folder`` receives the artifact (it is created if missing); ``threads`` is the run's
    thread count, used for the output check; ``name`` says what is built in messages
    (``"resnet50 + se"``). ``pass_name``, ``compile_mode`` and ``optimizer`` matter to modes
    that time a training step or call ``torch.compile``
    (:mod:`attnprof.latency.modes`); the deployment runtimes build inference forwards only.
    """

    model: nn.Module
    example: torch.Tensor
    folder: Path
    threads: int
    name: str
    pass_name: str = "inference"
    compile_mode: str = "default"
    optimizer: str = "none"
    dtype: str = "float32"
    """The precision the timing runs in (bfloat16/float16: under ``torch.autocast``)."""

    def __post_init__(self):
        if not isinstance(self.model, nn.Module):
            raise AttnprofError(
                f"{self.name}: a runtime builds an nn.Module, got {type(self.model).__name__}"
            )
        if self.model.training and self.pass_name != "train":
            raise AttnprofError(
                f"{self.name}: the model is in train mode; runtimes export inference forwards "
                "(call model.eval() first)"
            )
        _check_input(self.name, self.example)
        _positive_int("threads", self.threads)
        object.__setattr__(self, "folder", Path(self.folder))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.example.shape)


@dataclass(frozen=True)
class OutputCheck:
    """How far the runtime's outputs are from eager PyTorch's on one random input.

    Each output is checked against its own magnitude, and the record is the output nearest
    to failing (a model with several outputs: a small one can not hide behind a large one's
    tolerance): ``max_abs_err = max |runtime - eager|`` over that output's elements,
    ``scale = max |eager|`` of that output and ``max_rel_err = max_abs_err / scale`` (relative
    to the output's magnitude, not element by element, so an element near zero does not blow
    it up). The check passes when ``max_abs_err <= atol + rtol * scale``.
    """

    max_abs_err: float
    max_rel_err: float
    scale: float
    atol: float
    rtol: float

    @property
    def ok(self) -> bool:
        return math.isfinite(self.max_abs_err) and (
            self.max_abs_err <= self.atol + self.rtol * self.scale
        )

    def to_dict(self) -> dict[str, float | bool]:
        return {"max_abs_err": self.max_abs_err, "max_rel_err": self.max_rel_err,
                "scale": self.scale, "atol": self.atol, "rtol": self.rtol, "ok": self.ok}

    def describe(self) -> str:
        return (f"max abs err {self.max_abs_err:.3g}, max rel err {self.max_rel_err:.3g} of "
                f"max |eager| {self.scale:.3g} (tolerance {self.atol:g} + {self.rtol:g} x "
                "max |eager|)")


@dataclass(frozen=True)
class Built:
    """A checked artifact: where it is, how long it took to make (s), what it was checked to.

    ``build_s`` is the time to produce the artifact (export, and compilation where the runtime
    compiles ahead of time); the check is not in it. ``details`` holds JSON-ready facts that
    differ per runtime (the exporter used, node counts, the split of ``build_s``).
    """

    runtime: str
    path: Path | None
    """The artifact; ``None`` where it lives in a compiler's own cache (``torch.compile``)."""
    input_shape: tuple[int, ...]
    build_s: float
    check: OutputCheck | None
    """``None`` where nothing comparable was built (a compiled training step)."""
    runtime_version: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: how ``results.json`` keeps a build, and how the artifact is described
        (:meth:`from_dict`)."""
        return {"runtime": self.runtime, "path": None if self.path is None else str(self.path),
                "input_shape": list(self.input_shape), "build_s": self.build_s,
                "check": None if self.check is None else self.check.to_dict(),
                "runtime_version": self.runtime_version, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Built:
        """The artifact :meth:`to_dict` described (a missing field is refused); whether it may
        be loaded is :meth:`loadable`'s question."""
        try:
            check = data["check"]
            built = cls(
                runtime=str(data["runtime"]),
                path=None if data["path"] is None else Path(data["path"]),
                input_shape=tuple(int(v) for v in data["input_shape"]),
                build_s=float(data["build_s"]),
                check=None if check is None else OutputCheck(
                    max_abs_err=float(check["max_abs_err"]),
                    max_rel_err=float(check["max_rel_err"]), scale=float(check["scale"]),
                    atol=float(check["atol"]), rtol=float(check["rtol"])),
                runtime_version=str(data["runtime_version"]),
                details=dict(data.get("details", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AttnprofError(f"not a built runtime artifact: {one_line(exc)}") from None
        return built

    def loadable(self) -> Built:
        """This artifact, refused when its output check did not pass: nothing that computes
        another model is ever loaded for timing."""
        if self.check is not None and not self.check.ok:
            raise AttnprofError(
                f"the {self.runtime} artifact at {self.path} failed its output check "
                f"({self.check.describe()}); it is not loaded"
            )
        return self


@dataclass(frozen=True)
class LoadRequest:
    """Load an artifact in a timing process and bind ``input`` (its shape must be the built
    one); ``threads`` is the run's thread count. The modes that run the torch model itself
    (eager, ``torch.compile``) also take the ``model``, the pass and the compile settings."""

    input: torch.Tensor
    threads: int
    model: nn.Module | None = None
    built: Built | None = None
    pass_name: str = "inference"
    compile_mode: str = "default"
    optimizer: str = "none"

    def __post_init__(self):
        _check_input("runtime input", self.input)
        _positive_int("threads", self.threads)


@dataclass(frozen=True)
class Runtime:
    """A deployment runtime as a timing mode: what it runs, how to build and load it.

    ``unavailable(device)`` says in one line why it cannot run on ``device`` here (``None``
    when it can), without importing the runtime; ``build`` runs once per run and variant;
    ``load`` runs in every timing process and returns the zero-argument call that is timed.
    """

    name: str
    description: str
    extra: str
    passes: tuple[str, ...]
    unavailable: Callable[[str], str | None]
    build: Callable[[BuildRequest], Built]
    load: Callable[[Built, LoadRequest], Callable[[], object]]

    @property
    def install(self) -> str:
        """The command that installs this runtime's extra."""
        return f"pip install 'attnprof[{self.extra}]'"


def missing_packages(runtime: str, extra: str, packages: tuple[str, ...]) -> str | None:
    """One line naming the packages of ``extra`` that are not installed, or ``None``.

    Looks the packages up without importing them (``importlib.util.find_spec``)."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"{runtime} needs {', '.join(missing)}, not installed; "
            f"pip install 'attnprof[{extra}]'")


def cpu_only(runtime: str, device: str) -> str | None:
    """Why ``device`` is refused by a runtime that is timed on the cpu only, or ``None``."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        return f"unknown device {device!r}; {runtime} runs on cpu"
    if kind != "cpu":
        return f"{runtime} is timed on the cpu only, not {device!r}; use --device cpu"
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of ``exc``'s cause chain: the exporters wrap the reason in
    generic "step 1/3 failed, next steps" text, the reason itself sits at the bottom."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def failure(request: BuildRequest, runtime: str, step: str, exc: BaseException) -> AttnprofError:
    """The one-line error for a model that ``runtime`` could not ``step`` (export, compile),
    with the root cause's message cut to :data:`REASON_CHARS`; raise it ``from exc`` so the
    whole chain stays attached."""
    reason = _ANSI.sub("", one_line(root_cause(exc)))
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 3] + "..."
    return AttnprofError(f"{request.name}: {runtime} could not {step} the model: {reason}")


@contextlib.contextmanager
def nothing_left_on_error(folder: Path) -> Iterator[None]:
    """Create ``folder``; when the block raises, remove what it added there, so a failed build
    (an export error, outputs that differ from eager) leaves no artifact that looks usable."""
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    try:
        yield
    except BaseException:
        for entry in set(folder.iterdir()) - before:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then restore the old count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as elapsed:`` ... then ``elapsed[0]`` is the block's seconds."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


def check_input(shape: tuple[int, ...]) -> torch.Tensor:
    """The random input of the output check: standard normal, seeded with :data:`CHECK_SEED`."""
    generator = torch.Generator().manual_seed(CHECK_SEED)
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def arrays(value: Any) -> list[np.ndarray]:
    """Every array in a forward's result, in order (tensor, array, sequence or mapping)."""
    if isinstance(value, torch.Tensor):
        return [value.detach().cpu().numpy()]
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict) or callable(getattr(value, "values", None)):
        return [a for item in value.values() for a in arrays(item)]
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in arrays(item)]
    return [np.asarray(value)]


def compare(reference: Any, result: Any, atol: float, rtol: float, what: str) -> OutputCheck:
    """An :class:`OutputCheck` of ``result`` against ``reference`` (eager's output).

    Outputs that differ in number or shape raise: they are not the same model. A reference
    with NaN or inf raises too: no runtime can be checked against it."""
    expected, got = arrays(reference), arrays(result)
    if len(expected) != len(got):
        raise AttnprofError(
            f"{what}: the runtime returned {len(got)} output(s), eager PyTorch {len(expected)}"
        )
    worst, scale, nearest = 0.0, 0.0, -1.0
    for ref, out in zip(expected, got, strict=True):
        if tuple(ref.shape) != tuple(out.shape):
            raise AttnprofError(
                f"{what}: the runtime's output has shape {tuple(out.shape)}, eager PyTorch's "
                f"{tuple(ref.shape)}"
            )
        ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
        if not np.all(np.isfinite(ref64)):
            raise AttnprofError(
                f"{what}: eager PyTorch itself outputs NaN or inf on a random input, so there "
                "is nothing to check the runtime against (an input too small for the model, "
                "such as a 1x1 feature map normalised by its standard deviation?)"
            )
        diff = np.abs(out64 - ref64)
        error = float(diff.max()) if diff.size else 0.0
        if not np.all(np.isfinite(out64)):
            error = math.inf
        magnitude = float(np.abs(ref64).max()) if ref64.size else 0.0
        closeness = error / (atol + rtol * magnitude) if atol + rtol * magnitude > 0 else (
            0.0 if error == 0 else math.inf)
        if closeness > nearest:  # this output is the nearest to failing so far
            worst, scale, nearest = error, magnitude, closeness
    relative = worst / scale if scale > 0 else (0.0 if worst == 0 else math.inf)
    return OutputCheck(max_abs_err=worst, max_rel_err=relative, scale=scale, atol=atol,
                       rtol=rtol)


def verify(
    request: BuildRequest,
    runtime: str,
    load: Callable[[LoadRequest], Callable[[], object]],
    atol: float,
    rtol: float,
) -> OutputCheck:
    """Run the artifact as it will be timed (``load``) and eager PyTorch on one random input
    (:func:`check_input`); raise when they differ beyond ``atol + rtol * max |eager|``.

    Caveat: a zoo model straight from its constructor has some gates constant (SA's and SGE's
    gate weights start at 0, GC's last conv is zeroed), so for those modules this check sees
    the data path and the backbone but not the gate's inner branch; the tests check every
    module with such parameters drawn at random (tests/test_runtimes.py)."""
    x = check_input(request.input_shape)
    with torch_threads(request.threads), torch.inference_mode():
        reference = request.model(x)
        call = load(LoadRequest(input=x, threads=request.threads))
        result = call()
    check = compare(reference, result, atol, rtol, f"{request.name} on {runtime}")
    if not check.ok:
        raise AttnprofError(
            f"{request.name}: {runtime} computes other outputs than eager PyTorch on a random "
            f"input: {check.describe()}; it is not timed"
        )
    return check
