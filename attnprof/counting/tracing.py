"""Shared machinery of the counters: which modules are attention, which of them is running, and
a trace of every leaf-module call.

Every hook registered here is removed when its context exits, even after an error, so counting
never changes the model it counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.utils._python_dispatch import TorchDispatchMode

from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.rules import moves_data_only, numel
from attnprof.errors import AttnprofError
from attnprof.networks.slot import attention_modules


def attention_paths(model: nn.Module, names: Iterable[str] | None = None) -> list[str]:
    """The qualified names of ``model``'s attention modules.

    By default those :func:`attnprof.networks.attention_modules` finds (a backbone's own list,
    or what fills a user's slots); ``names`` overrides them, and an unknown name is an error
    rather than a silent 0.
    """
    if names is None:
        return [name for name, _ in attention_modules(model)]
    names = list(names)
    known = dict(model.named_modules())
    missing = [name for name in names if name not in known]
    if missing:
        raise AttnprofError(f"no module named {missing[0]!r} in the model to attribute to")
    return names


def modules_inside(model: nn.Module, names: Sequence[str]) -> set[int]:
    """``id()`` of every module within the named modules' subtrees (the named ones included)."""
    return {id(sub) for name in names for sub in model.get_submodule(name).modules()}


def attention_params(model: nn.Module, names: Sequence[str]) -> int:
    """Parameters inside the named modules, each shared parameter counted once."""
    seen: dict[int, int] = {}
    for name in names:
        for param in model.get_submodule(name).parameters():
            seen[id(param)] = param.numel()
    return sum(seen.values())


def model_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def input_like(model: nn.Module, shape: Sequence[int]) -> torch.Tensor:
    """A float input of ``shape`` on the model's device (zeros, or storage-free on meta)."""
    device = model_device(model)
    if device.type == "meta":
        return torch.empty(tuple(shape), device=device)
    return torch.zeros(tuple(shape), device=device)


class AttentionScope:
    """Knows, while the model runs, whether execution is inside an attention module.

    Forward pre/post hooks on the attention modules keep a depth counter; ``active`` is true
    while at least one of them is running (nested attention modules count once).
    """

    def __init__(self):
        self.depth = 0

    @property
    def active(self) -> bool:
        return self.depth > 0

    def _enter(self, module, args):
        self.depth += 1

    def _leave(self, module, args, output):
        self.depth -= 1

    @contextmanager
    def watching(self, model: nn.Module, names: Sequence[str]) -> Iterator[AttentionScope]:
        try:
            with hooked([model.get_submodule(name) for name in names], self._enter, self._leave):
                yield self
        finally:
            self.depth = 0


@contextmanager
def hooked(modules: Iterable[nn.Module], enter: Callable, leave: Callable) -> Iterator[None]:
    """``enter`` as a forward pre-hook and ``leave`` as a forward hook (called even when the
    forward raises) on every module, all removed on exit."""
    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave, always_call=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def unregistered_hooks(
    model: nn.Module, enter: Callable, leave: Callable
) -> Iterator[set[int]]:
    """``enter``/``leave`` around every call of a module that is *not* registered in ``model``
    (kept in a plain list or dict, or built inside a forward), through torch's global module
    hooks, removed on exit. Yields the ``id()`` set of the registered modules."""
    registered = {id(module) for module in model.modules()}

    def pre(module, args):
        if id(module) not in registered:
            enter(module, args)

    def post(module, args, output):
        if id(module) not in registered:
            leave(module, args, output)

    handles = [register_module_forward_pre_hook(pre)]
    try:
        handles.append(register_module_forward_hook(post, always_call=True))
        yield registered
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def module_stack(model: nn.Module, where: list[str]) -> Iterator[list[str]]:
    """Keep ``where`` listing the qualified names of the modules running, innermost last,
    while the model runs (hooks on every submodule, removed on exit)."""
    names = {id(module): name for name, module in model.named_modules() if name}

    def enter(module, args):
        where.append(names[id(module)])

    def leave(module, args, output):
        where.pop()

    modules = [module for name, module in model.named_modules() if name]
    with hooked(modules, enter, leave):
        yield where


@dataclass
class LeafCall:
    """One call of a leaf module (a module without children)."""

    name: str
    module: nn.Module
    in_numel: int
    out_numel: int
    in_attention: bool
    computed: bool = False
    """Whether any op that does arithmetic (not pure data movement) ran inside the call."""


@dataclass
class LeafTrace:
    """Every leaf-module call of one forward pass, in order, and the arithmetic ops that ran
    outside any leaf module (functional calls such as ``x * gate`` or the residual add)."""

    calls: list[LeafCall]
    functional: Counter

    def uncounted(self, counted: Callable[[LeafCall], bool]) -> dict[str, int]:
        """What did arithmetic but counted 0: ``counted(call)`` says whether a call counted.

        Leaf modules are named by their type (``Sigmoid``), functional ops by their aten name
        (``aten::mul``); the values are numbers of calls.
        """
        found: Counter = Counter()
        for call in self.calls:
            if call.computed and not counted(call):
                found[type(call.module).__name__] += 1
        found.update(self.functional)
        return dict(sorted(found.items()))


class CountingMode(TorchDispatchMode):
    """A dispatch mode that only observes ops, never run under ``torch.compile``.

    Caveat first: torch wraps every mode's ``__torch_dispatch__`` so that a compiler skips it,
    and that wrapper imports ``torch._dynamo`` on its first call: over a second of a cold
    start, for nothing, since counting never compiles. Opting out (the hook torch documents on
    :class:`TorchDispatchMode`) keeps it off; :mod:`attnprof.counting.no_dynamo` does the same
    for torch's own meta kernels.
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


class _ComputeCensus(CountingMode):
    """Marks the running leaf call as having computed, or counts a functional op."""

    def __init__(self, stack: list[LeafCall], functional: Counter):
        super().__init__()
        self.stack = stack
        self.functional = functional

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not moves_data_only(func):
            if self.stack:
                self.stack[-1].computed = True
            else:
                self.functional[func._schema.name] += 1
        return out


def trace_leaf_calls(
    model: nn.Module, shape: Sequence[int], attention: Sequence[str]
) -> tuple[LeafTrace, object]:
    """Run ``model`` once on an input of ``shape`` and record its leaf calls.

    Returns the trace and the model's output.
    """
    inside = modules_inside(model, attention)
    names = {id(module): name for name, module in model.named_modules()}
    calls: list[LeafCall] = []
    stack: list[LeafCall] = []
    functional: Counter = Counter()

    def enter(module, args):
        stack.append(LeafCall(names.get(id(module), "?"), module, numel(args), 0,
                              id(module) in inside))

    def leave(module, args, output):
        call = stack.pop()
        call.out_numel = numel(output)
        calls.append(call)

    x = input_like(model, shape)
    leaves = [module for module in model.modules() if next(module.children(), None) is None]
    with dynamo_stand_in(), hooked(leaves, enter, leave), torch.no_grad(), \
            _ComputeCensus(stack, functional):
        output = model(x)
    return LeafTrace(calls, functional), output

