"""The one counter behind every rules convention (``paper``, ``full``, ``conv-linear``, yours).

Caveats first: a module rule prices a whole call of a module from its input and output sizes,
so the ops inside a ruled module are not priced again (their bytes still count); the outermost
ruled module wins when ruled modules nest. Everything that runs outside ruled modules is priced
by the op rules. What does arithmetic and meets no rule counts 0 and is listed under
``uncounted``: by aten op name when the convention has op rules, else (a per-module convention
such as ``paper``) by the leaf module type that ran it, or the aten op where it ran outside
any leaf module (a functional call such as ``x * gate``).

One forward pass on the model (meta tensors: milliseconds, nothing allocated) under a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` that sees every aten op below
autograd, with forward hooks on every module, all removed afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from attnprof.counting.breakdown import make as make_breakdown
from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.rule_text import CompiledRules, ModuleRule, compile_tables
from attnprof.counting.rules import moves_data_only, numel, op_name, traffic
from attnprof.counting.tracing import (
    AttentionScope,
    CountingMode,
    attention_paths,
    hooked,
    input_like,
    modules_inside,
    unregistered_hooks,
)
from attnprof.results.counts import ConventionCount


@dataclass
class _Call:
    """One running call of a ruled module or a leaf module."""

    name: str
    module: nn.Module
    in_numel: int
    rule: ModuleRule | None
    in_attention: bool
    leaf: bool
    computed: bool = False


class RuleCounter(CountingMode):
    """Prices every op by a convention's op rules, unless a ruled module running claims it.

    ``where`` lists the names of the modules running (innermost last) and ``calls`` the running
    ruled and leaf calls; :func:`watching` keeps both. Usable on its own (no module rules):
    ``with RuleCounter(rules): model(x)``.
    """

    def __init__(self, rules: CompiledRules, *, count_bytes: bool = True,
                 scope: AttentionScope | None = None):
        super().__init__()
        self.rules = rules
        self.count_bytes = count_bytes
        self.scope = scope or AttentionScope()
        self.where: list[str] = []
        self.calls: list[_Call] = []
        self.name_ops = bool(rules.ops)
        self.value = self.bytes = self.attention = self.attention_bytes = 0
        self.by_module: Counter = Counter()
        self.by_kind: Counter = Counter()
        self.bytes_by_module: Counter = Counter()
        self.bytes_by_op: Counter = Counter()
        self.attention_by_kind: Counter = Counter()
        self.attention_bytes_by_op: Counter = Counter()
        self.uncounted: Counter = Counter()

    # Aliases that read naturally for the FLOP convention.
    @property
    def flops(self) -> int:
        return self.value

    @property
    def by_op(self) -> Counter:
        return self.by_kind

    def _claimed(self) -> bool:
        return any(call.rule is not None for call in self.calls)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = op_name(func)
        module = self.where[-1] if self.where else ""
        value = 0
        if not self._claimed():
            rule = self.rules.for_op(func)
            if rule is not None:
                value = int(rule(args, kwargs, out))
                self.by_kind[name] += value
                if self.scope.active:
                    self.attention_by_kind[name] += value
            elif not moves_data_only(func):
                if self.name_ops or not (self.calls and self.calls[-1].leaf):
                    self.uncounted[name] += 1
                else:
                    self.calls[-1].computed = True
        elif self.calls and not moves_data_only(func):
            self.calls[-1].computed = True
        self._add(module, value, self.scope.active)
        if self.count_bytes:
            moved = traffic(func, args, kwargs, out)
            self.bytes += moved
            self.bytes_by_module[module] += moved
            self.bytes_by_op[name] += moved
            if self.scope.active:
                self.attention_bytes += moved
                self.attention_bytes_by_op[name] += moved
        return out

    def _add(self, module: str, value: int, in_attention: bool) -> None:
        self.value += value
        self.by_module[module] += value
        if in_attention:
            self.attention += value

    def enter(self, name: str, module: nn.Module, args, rule: ModuleRule | None,
              in_attention: bool, leaf: bool) -> None:
        self.where.append(name)
        if rule is not None or leaf:
            self.calls.append(_Call(name, module, numel(args), rule, in_attention, leaf))

    def leave(self, module: nn.Module, output, tracked: bool) -> None:
        self.where.pop()
        if not tracked:
            return
        call = self.calls.pop()
        if call.rule is not None:
            if not self._claimed():  # the outermost ruled call prices the whole call
                value = int(call.rule(call.module, call.in_numel, numel(output)))
                self._add(call.name, value, call.in_attention)
                self.by_kind[type(call.module).__name__] += value
                if call.in_attention:
                    self.attention_by_kind[type(call.module).__name__] += value
        elif call.computed and not self.name_ops:
            self.uncounted[type(call.module).__name__] += 1


@contextmanager
def watching(counter: RuleCounter, model: nn.Module, attention: Sequence[str]):
    """Hooks on every module of ``model`` (itself included) that keep ``counter``'s module
    stack and its ruled and leaf calls; a context manager, all hooks removed on exit.

    A module that runs without being registered in ``model`` (layers kept in a plain Python
    list) is seen through torch's global hooks and priced by the same rules, under the name
    ``<enclosing module>.<unregistered Type>``, inside attention when it runs inside an
    attention module: a module rule never misses it.
    """
    inside = modules_inside(model, attention)
    names = {id(module): name for name, module in model.named_modules()}
    plan = {}
    for module in model.modules():
        plan[id(module)] = _plan(counter, module)

    def enter(module, args):
        rule, leaf, _ = plan[id(module)]
        counter.enter(names[id(module)], module, args, rule, id(module) in inside, leaf)

    def leave(module, args, output):
        counter.leave(module, output, plan[id(module)][2])

    running: list[bool] = []  # per unregistered call: whether the counter tracks it

    def enter_unregistered(module, args):
        rule, leaf, tracked = _plan(counter, module)
        where = f"{counter.where[-1]}." if counter.where and counter.where[-1] else ""
        running.append(tracked)
        counter.enter(f"{where}<unregistered {type(module).__name__}>", module, args, rule,
                      counter.scope.active, leaf)

    def leave_unregistered(module, args, output):
        counter.leave(module, output, running.pop())

    with hooked(list(model.modules()), enter, leave), \
            unregistered_hooks(model, enter_unregistered, leave_unregistered):
        yield


def _plan(counter: RuleCounter, module: nn.Module) -> tuple[ModuleRule | None, bool, bool]:
    """``(rule, leaf, tracked)`` for a module: its rule, whether it has no children, and
    whether the counter follows its calls."""
    rule = counter.rules.for_module(module)
    leaf = next(module.children(), None) is None
    return rule, leaf, rule is not None or leaf


def count_with_rules(
    convention, model: nn.Module, shape: Sequence[int], attention: Iterable[str] | None = None,
    breakdown: bool = False,
) -> ConventionCount:
    """Count ``model`` on an input of ``shape`` under a rules ``convention`` (see
    :func:`attnprof.counting.count`); cheap on the meta device, it works on real tensors too."""
    names = attention_paths(model, attention)
    modules, ops = convention.tables()
    rules = compile_tables(modules, ops, f"convention {convention.name!r}")
    scope = AttentionScope()
    counter = RuleCounter(rules, count_bytes=convention.bytes, scope=scope)
    x = input_like(model, shape)
    with dynamo_stand_in(), scope.watching(model, names), watching(counter, model, names), \
            torch.no_grad(), counter:
        model(x)
    return ConventionCount(
        convention=convention.name,
        unit=convention.unit,
        value=counter.value,
        attention=counter.attention,
        uncounted=dict(sorted(counter.uncounted.items())),
        description=convention.description,
        bytes=counter.bytes if convention.bytes else None,
        attention_bytes=counter.attention_bytes if convention.bytes else None,
        breakdown=make_breakdown(
            counter.by_module, counter.by_kind, model, names,
            counter.bytes_by_module if convention.bytes else None,
            counter.bytes_by_op if convention.bytes else None,
            counter.attention_by_kind,
            counter.attention_bytes_by_op if convention.bytes else None,
        ) if breakdown else None,
    )
