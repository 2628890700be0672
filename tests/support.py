"""Small helpers shared by the tests (pytest puts this folder on sys.path)."""

from torch import nn


class Fn(nn.Module):
    """Wraps a function, so a functional call can be profiled as a model."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)
