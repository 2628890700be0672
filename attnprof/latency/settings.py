"""Latency settings, resolved and checked before anything runs; measuring is :mod:`.timing`'s.

Caveats first: what cannot run here (``cuda`` without a GPU, float16 on a CPU, ``torch.compile``
without a C++ compiler) is refused with an :class:`~attnprof.errors.AttnprofError` naming what
would be valid, so no number is produced for a configuration that did not run. What is resolved
is recorded in every record (:meth:`RunSettings.meta`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import torch

from attnprof.errors import AttnprofError, choices
from attnprof.latency.stats import CI_LEVEL, min_samples_for_ci

DTYPES = {"float32": "full precision", "bfloat16": "torch.autocast, on cpu or cuda",
          "float16": "torch.autocast, on cuda only"}
"""The precisions a latency is measured in, each with how it runs."""
_DTYPE_ALIASES = {
    "float32": "float32", "fp32": "float32", "float": "float32", "torch.float32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16", "torch.bfloat16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16", "torch.float16": "float16",
}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class RunSettings:
    """Validated settings of one measurement: where, how many threads, what precision."""

    device: torch.device
    threads: int
    dtype: str
    channels_last: bool
    compile_mode: str | None

    @property
    def autocast(self) -> bool:
        return self.dtype != "float32"

    @property
    def compile(self) -> bool:
        return self.compile_mode is not None

    @property
    def mode(self) -> str:
        """The execution mode (:data:`attnprof.passes.MODES`): ``compile`` or ``eager``."""
        return "compile" if self.compile else "eager"

    @property
    def device_label(self) -> str:
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else 0
            return f"cuda:{index}"
        return "cpu"

    def meta(self) -> dict:
        """The record fields these settings determine."""
        return {
            "device": self.device_label,
            "threads": self.threads,
            "dtype": self.dtype,
            "autocast": self.autocast,
            "channels_last": self.channels_last,
            "compile": self.compile,
            "compile_mode": self.compile_mode,
            "mode": self.mode,
        }


def resolve_device(device: str | torch.device) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; CUDA only when ``torch.cuda.is_available()``."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise AttnprofError(
            f"unknown device {device!r}; valid devices: cpu, cuda, cuda:N"
        ) from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise AttnprofError(f"device {device!r} is not supported; valid devices: cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA"
        raise AttnprofError(
            f"device {device!r} was asked for but no CUDA GPU is available: "
            f"torch.cuda.is_available() is False (torch {torch.__version__}, built with "
            f"{built}); use --device cpu, or install a CUDA build of torch"
        )
    count = torch.cuda.device_count()
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    if index >= count:
        raise AttnprofError(
            f"device {device!r}: only {count} CUDA device(s), cuda:0..cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> str:
    """Canonical precision name; bfloat16/float16 run under ``torch.autocast``.

    float16 autocast is measured on CUDA only (CPU float16 kernels are a slow fallback path that
    no one deploys); bfloat16 autocast runs on both (on a CPU without native bf16 instructions
    it is emulated, which the environment's ``cpu_bf16_native`` records).
    """
    key = str(dtype).lower()
    if key not in _DTYPE_ALIASES:
        raise AttnprofError(f"unknown dtype {dtype!r}; valid dtypes: {choices(DTYPES)}")
    name = _DTYPE_ALIASES[key]
    if device.type == "cpu" and name == "float16":
        raise AttnprofError(
            "dtype 'float16' is only measured on CUDA (autocast); on cpu use float32 or bfloat16"
        )
    if device.type == "cuda" and name == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise AttnprofError(
            f"dtype 'bfloat16' is not supported by {torch.cuda.get_device_name(device)}; "
            "use float32 or float16"
        )
    return name


def _cxx_compiler() -> str | None:
    """The C/C++ compiler inductor would use: ``$CXX``, else g++, c++, clang++ on PATH."""
    for candidate in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def compile_unavailable_reason(device: torch.device) -> str | None:
    """Why ``torch.compile`` (inductor) cannot run here, or ``None`` when it should."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    try:
        import torch._dynamo as dynamo

        if not dynamo.is_dynamo_supported():
            return "TorchDynamo does not support this Python version"
    except Exception as exc:
        return f"TorchDynamo cannot be imported ({exc})"
    if _cxx_compiler() is None:
        return "inductor needs a C++ compiler and none was found ($CXX, g++, c++, clang++)"
    if device.type == "cuda":
        import importlib.util

        if importlib.util.find_spec("triton") is None:
            return "inductor needs triton for CUDA and it is not installed"
    return None


def resolve_compile(compile: bool | str, device: torch.device) -> str | None:
    """``False`` -> no compile; ``True`` -> ``"default"``; or one of the compile modes."""
    if compile is False or compile is None:
        return None
    mode = "default" if compile is True else compile
    if mode not in COMPILE_MODES:
        raise AttnprofError(
            f"unknown compile mode {compile!r}; valid: False, True, {choices(COMPILE_MODES)}"
        )
    reason = compile_unavailable_reason(device)
    if reason is not None:
        raise AttnprofError(f"torch.compile cannot run here: {reason}; run without compile")
    return mode


def resolve_threads(threads: int | None) -> int:
    if threads is None:
        return torch.get_num_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise AttnprofError(f"threads must be a positive integer, got {threads!r}")
    return threads


def resolve_settings(
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: str | torch.dtype = "float32",
    channels_last: bool = False,
    compile: bool | str = False,
) -> RunSettings:
    """Validate every setting; raises AttnprofError for anything that cannot run here."""
    dev = resolve_device(device)
    return RunSettings(
        device=dev,
        threads=resolve_threads(threads),
        dtype=resolve_dtype(dtype, dev),
        channels_last=bool(channels_last),
        compile_mode=resolve_compile(compile, dev),
    )


def check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise AttnprofError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_samples(samples: int, what: str = "samples") -> int:
    needed = min_samples_for_ci(CI_LEVEL)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < needed:
        raise AttnprofError(
            f"{what} must be an integer >= {needed} (the fewest for a {CI_LEVEL:.0%} "
            f"interval of the median), got {samples!r}"
        )
    return samples
