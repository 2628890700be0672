"""Small helpers shared by the tests (pytest puts this folder on sys.path)."""

import importlib.util

import pytest
import torch
from torch import nn


def installed(*names: str) -> bool:
    """Whether every package named can be imported here (found, not imported)."""
    return all(importlib.util.find_spec(name) is not None for name in names)


needs_onnx = pytest.mark.skipif(not installed("onnx", "onnxruntime", "onnxscript"),
                                reason="pip install 'attnprof[onnx]'")


class Fn(nn.Module):
    """Wraps a function, so a functional call can be profiled as a model."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Recorder(nn.Module):
    """An attention module that records its width, stage and inputs, and returns a
    distinguishable transform of them (``x * 0.5 + 0.25``)."""

    def __init__(self, channels: int, stage: int | None = None):
        super().__init__()
        self.channels = channels
        self.stage = stage
        self.seen: list[torch.Tensor] = []
        self.returned: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        out = x * 0.5 + 0.25
        self.returned.append(out.detach().clone())
        return out


def outside_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child that runs pytest (or a workflow step) of its
    own, less the variables that tell pytest it is an xdist worker (pytest-benchmark would
    disable itself in the child)."""
    import os

    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
            **extra}


def import_source(tmp_path, monkeypatch, name: str, source: str):
    """Writes ``source`` as the module ``name`` in ``tmp_path``, imports it as a user's file
    would be (the folder on sys.path and current), and yields it; forgotten afterwards, so
    the next test imports its own copy."""
    import importlib
    import sys

    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    importlib.invalidate_caches()
    yield importlib.import_module(name)
    sys.modules.pop(name, None)
