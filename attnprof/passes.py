"""What one pass runs: an inference forward, or a training step (forward, loss, backward).

Caveats first: a training step needs a loss, and attnprof's networks carry no labels, so the
step uses a stand-in chosen to be cheap and defined for every output: cross-entropy against
class 0 for a ``(N, K)`` output (a classification head), else the mean of squares of every
floating output tensor (a feature map, a detection backbone's stages). It costs a few
operations per output element, counted and timed like the rest of the step. The optimizer
step is optional (``optimizer="sgd"``: plain SGD with momentum 0.9); counts cover forward and
backward only, since an optimizer's cost depends on the optimizer, not on the module.

Counting (:mod:`attnprof.counting.training`) and timing (:mod:`attnprof.latency.rounds`) both
take the loss from here, so the step that is counted is the step that is timed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from attnprof.errors import AttnprofError, choices
from attnprof.latency.modes import MODES as _MODES

PASSES = {
    "inference": "one forward in eval mode, under torch.inference_mode()",
    "train": "one training step in train mode: forward, loss, backward (gradients set to "
             "None first), and the optimizer step where one is named",
}
"""The passes a suite can time, each with what it runs."""

MODES = {name: mode.description for name, mode in _MODES.items()}
"""The execution modes a suite can time, each with what runs (one entry each in
:data:`attnprof.latency.modes.MODES`, where their hooks live)."""

OPTIMIZERS = ("none", "sgd")

LOSS = ("cross-entropy against class 0 for a (N, K) output, else the mean of squares of each "
        "floating output tensor")
"""What :func:`loss_of` computes, as the report states it."""


def qualifiers(pass_name: str, mode: str) -> list[str]:
    """The words a label adds for a pass and mode: none for the default (an eager forward),
    so a forward-only run reads as it always did; ``["train", "compile"]`` at most."""
    return [word for word, default in ((pass_name, "inference"), (mode, "eager"))
            if word != default]


def check_pass(name: str) -> str:
    if name not in PASSES:
        raise AttnprofError(f"unknown pass {name!r}; valid passes: {choices(PASSES)}")
    return name


def check_mode(name: str) -> str:
    if name not in MODES:
        raise AttnprofError(f"unknown mode {name!r}; valid modes: {choices(MODES)}")
    return name


def _floating(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _floating(item)]
    return []


def loss_of(output) -> torch.Tensor:
    """The stand-in loss of a model's output (see the module docstring)."""
    tensors = _floating(output)
    if not tensors:
        raise AttnprofError(
            f"the model's output ({type(output).__name__}) holds no floating tensor to take a "
            "loss of; a train pass needs one"
        )
    if len(tensors) == 1 and tensors[0].dim() == 2:
        logits = tensors[0]
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return nn.functional.cross_entropy(logits.float(), target)
    total = tensors[0].float().pow(2).mean()
    for tensor in tensors[1:]:
        total = total + tensor.float().pow(2).mean()
    return total


def check_optimizer(name: str | None) -> str:
    name = "none" if name is None else name
    if name not in OPTIMIZERS:
        raise AttnprofError(f"unknown optimizer {name!r}; valid optimizers: {choices(OPTIMIZERS)}")
    return name


def make_optimizer(model: nn.Module, optimizer: str | None) -> torch.optim.Optimizer | None:
    if check_optimizer(optimizer) == "none":
        return None
    return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)


class TrainStep:
    """``step()`` runs one training step of ``runnable`` (the model, or its compiled wrapper)
    on ``x``: gradients set to None, forward, :func:`loss_of`, backward, optimizer step.

    ``model`` is the module whose parameters are trained (the wrapper's original).
    """

    def __init__(self, model: nn.Module, runnable: Callable, x: torch.Tensor,
                 optimizer: str | None = None):
        self.model = model
        self.runnable = runnable
        self.x = x
        self.optimizer = make_optimizer(model, optimizer)

    def __call__(self) -> torch.Tensor:
        self.model.zero_grad(set_to_none=True)
        loss = loss_of(self.runnable(self.x))
        loss.backward()
        if self.optimizer is not None:
            self.optimizer.step()
        return loss
