"""The models one profile counts: on the meta device where the model can run there, on real
CPU tensors where it cannot, never refused for where it ran.

Caveat first: the meta device computes no values, so code that needs them (a tensor built in
``forward`` without a device, such as ``torch.linspace(0, 1, w)``, lands on the CPU and cannot
meet a meta tensor; ``.item()``, ``.tolist()``) cannot run there, although it runs on the CPU.
Such a model is built again on the CPU (initialised weights) and counted there: every
convention gives the same numbers on either device, the CPU only costs real forwards. The
note that says so, and why, travels with the record. A model that fails on the CPU too cannot
run at all and is refused on one line with the CPU's error.

A refusal of attnprof's own (an option the module does not take, an output of the wrong shape)
is the same on any device and is never retried.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from torch import nn

from attnprof.attention.contract import Inspection, inspect_forward
from attnprof.blame import blamed, cut
from attnprof.errors import AttnprofError
from attnprof.networks import attention_modules


def _own_refusal(exc: BaseException) -> bool:
    """An AttnprofError that wraps nothing raised by the model: attnprof's own check."""
    return isinstance(exc, AttnprofError) and exc.__cause__ is None


class CountingModels:
    """The model to count (``model``, meta or CPU), what its checking forward found
    (``inspection``), a CPU model when one is needed (:meth:`cpu`) and the notes to keep.

    ``build(device)`` builds the profiled model on ``"meta"`` or ``"cpu"``; ``label`` names it
    in messages (``resnet50 + se``); ``keeps_shape`` asks each attention module to return its
    input's shape (all but ``conv`` modules, see :mod:`attnprof.attention.contract`).
    """

    def __init__(self, build: Callable[[str | None], nn.Module], label: str,
                 shape: Sequence[int], keeps_shape: bool = True):
        self._build = build
        self.label = label
        self.shape = tuple(shape)
        self.keeps_shape = keeps_shape
        self.notes: list[str] = []
        self._cpu: nn.Module | None = None
        self.model, self.inspection = self._checked()

    def cpu(self) -> nn.Module:
        """The model built on the CPU with initialised weights (built once, when first asked)."""
        if self._cpu is None:
            self._cpu = self._build("cpu")
        return self._cpu

    @property
    def on_meta(self) -> bool:
        return self.model is not self._cpu

    def _inspect(self, model: nn.Module) -> Inspection:
        modules = attention_modules(model)
        with blamed(self.label, self.shape, modules):
            return inspect_forward(model, self.shape, modules, self.label,
                                   keeps_shape=self.keeps_shape)

    def _checked(self) -> tuple[nn.Module, Inspection]:
        try:
            model = self._build("meta")
            return model, self._inspect(model)
        except Exception as exc:
            if _own_refusal(exc):
                raise
            why = exc
        cpu = self.cpu()  # a failure here is the model's own: it propagates, on one line
        inspection = self._inspect(cpu)
        self.note_cpu("the model", why)
        return cpu, inspection

    def note_cpu(self, what: str, why: BaseException) -> None:
        """Say that ``what`` was counted on CPU tensors because of ``why`` (on meta)."""
        reason = re.sub(r"^ \(input [0-9x]+\): ", "", str(why).removeprefix(self.label))
        self.notes.append(
            f"{self.label}: {what} was counted on CPU tensors (initialised weights) instead of "
            f"the meta device, where it cannot run: {cut(reason)}"
        )

    def count(self, convention, target: nn.Module, shape: Sequence[int], paths: list[str],
              breakdown: bool):
        """``convention``'s count of ``target``; a meta-device failure is counted again on
        the CPU model, with a note."""
        modules = attention_modules(target)
        try:
            with blamed(self.label, shape, modules):
                return convention.count(target, shape, paths, breakdown=breakdown)
        except Exception as exc:
            if _own_refusal(exc) or target is self._cpu:
                raise
            why = exc
        cpu = self.cpu()
        with blamed(self.label, shape, attention_modules(cpu)):
            counted = convention.count(cpu, shape, paths, breakdown=breakdown)
        self.note_cpu(f"convention {convention.name!r}", why)
        return counted
