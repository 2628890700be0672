"""Counting conventions as data: the public form a convention is declared in, and the registry.

Caveat first: a count is meaningless without its convention, and the conventions disagree on
purpose (the published tables' ``paper`` counter calls a sigmoid free; ``full`` does not). So a
convention is declared once, as data, and every place that lists, describes or validates
conventions (the counters, suite files, reports, ``attnprof list``) reads that declaration.

A convention is either

- **rules**: ``modules`` (a rule per module type: every call of a module of that type, or of a
  subclass, is priced by the rule and the ops inside it are not priced again) and/or ``ops`` (a
  rule per aten op, for everything that runs outside a ruled module). Anything that does
  arithmetic and meets no rule counts 0 *and is listed* under ``uncounted``. A rule is a text
  such as ``"2 * macs + bias"`` (see :mod:`attnprof.counting.rule_text`) or, from Python, a
  function: ``rule(module, input_elements, output_elements)`` for a module type,
  ``rule(args, kwargs, out)`` for an op. ``base`` starts from another rules convention's tables
  and overrides them. ``paper``, ``full`` and ``conv-linear`` are declared this way; or
- **an external counter** (``counter``, ``"module:function"``): ``fvcore`` and ``thop`` wrap
  those libraries as they are, so their rules are theirs, not data here.

Users declare their own with :func:`register_convention` (Python) or a ``[conventions.NAME]``
table in a suite file. This module imports nothing heavy: tables and counters are named by
import path and loaded only when a count is asked for.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from attnprof.errors import AttnprofError, choices

UNITS = ("MAC", "FLOP")
"""A MAC is one multiply-accumulate; a FLOP one arithmetic operation (a MAC is two FLOPs)."""

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

Rules = Mapping[Any, Any] | str | None
"""A rule table: a mapping (type or op -> rule), or the import path ``module:attribute`` of one."""


@dataclass(frozen=True)
class Convention:
    """One counting convention (see the module docstring for the two kinds).

    ``description`` is stored with every count (precise, for the results file); ``summary`` is
    the sentence reports and ``attnprof list`` show (the description when empty).
    ``needs_real_tensors``: the counter cannot run on a meta-device model (fvcore traces real
    tensors, so it is slow). ``bytes``: also report the bytes every op reads and writes.
    ``origin`` says where it was declared (``built-in``, ``python``, or a suite file).
    """

    name: str
    unit: str
    description: str
    summary: str = ""
    modules: Rules = None
    ops: Rules = None
    base: str | None = None
    bytes: bool = False
    counter: str | Callable | None = None
    needs_real_tensors: bool = False
    origin: str = "python"
    data: dict = field(default_factory=dict, compare=False, repr=False)
    """The declaration as written in a suite file (rule texts only), stored with the results."""

    @property
    def shown(self) -> str:
        return self.summary or self.description

    @property
    def uses_rules(self) -> bool:
        return self.counter is None

    def count(self, model, shape, attention=None, *, breakdown: bool = False):
        """Count ``model`` on an input of ``shape``: a
        :class:`~attnprof.results.counts.ConventionCount`."""
        if self.counter is None:
            from attnprof.counting.engine import count_with_rules

            return count_with_rules(self, model, shape, attention, breakdown=breakdown)
        counter = self.counter
        if isinstance(counter, str):
            module, function = counter.split(":")
            counter = getattr(importlib.import_module(module), function)
        return counter(model, shape, attention, breakdown=breakdown)

    def tables(self) -> tuple[dict, dict]:
        """``(module rules, op rules)`` as plain mappings, the base's overridden by its own."""
        modules: dict = {}
        ops: dict = {}
        if self.base is not None:
            modules, ops = (dict(t) for t in get_convention(self.base).tables())
        modules.update(_load(self.modules))
        ops.update(_load(self.ops))
        return modules, ops


def _load(table: Rules) -> Mapping:
    if table is None:
        return {}
    if isinstance(table, str):
        module, attribute = table.split(":")
        return getattr(importlib.import_module(module), attribute)
    return table


BUILT_IN: tuple[Convention, ...] = (
    Convention(
        "paper",
        "MAC",
        "classic per-module MAC counter of the published tables: Conv2d, Linear (no bias), "
        "BatchNorm2d, ReLU-family, pooling and Upsample modules only; everything else 0",
        "the classic per-module MAC counter of the SGE and SA-Net tables: conv, linear, BN, "
        "ReLU, pooling; sigmoid, softmax, element-wise products and sums count 0",
        modules="attnprof.counting.paper:PAPER_RULES",
        origin="built-in",
    ),
    Convention(
        "fvcore",
        "MAC",
        "fvcore.nn.FlopCountAnalysis as it is: jit trace on real tensors, 1 per fused "
        "multiply-add for conv, matmul, norms, adaptive avg pooling; unsupported ops 0",
        "fvcore's FlopCountAnalysis: one per fused multiply-add; ops it does not support "
        "(sigmoid, element-wise mul, mean, ...) count 0 and are listed below",
        counter="attnprof.counting.fvcore_count:count_fvcore",
        needs_real_tensors=True,
        origin="built-in",
    ),
    Convention(
        "thop",
        "MAC",
        "thop.profile as it is: leaf modules by type, MACs; ReLU and max pooling 0, "
        "functional calls and modules without a thop rule 0; its own parameter count in "
        "reported_params",
        "thop's module hooks, in MACs; a parameter a module owns directly (SGE's, SA's) is "
        "skipped, so thop's own parameter count is low for them",
        counter="attnprof.counting.thop_count:count_thop",
        origin="built-in",
    ),
    Convention(
        "full",
        "FLOP",
        "every aten op on meta tensors, in FLOPs (2 per multiply-add; pointwise, reductions, "
        "pooling, normalisation and activations by attnprof's documented rule table), with "
        "the bytes each op reads and writes (eager, unfused)",
        "every aten op, 2 FLOPs per multiply-add, element-wise work included, plus the bytes "
        "each op reads and writes (the memory traffic that latency follows)",
        ops="attnprof.counting.rules:RULES",
        bytes=True,
        origin="built-in",
    ),
    Convention(
        "conv-linear",
        "MAC",
        "multiply-adds of convolution (Conv1d/2d/3d, transposed too) and Linear modules only, "
        "biases not counted; everything else 0 (the MobileNet papers' MAdds, ECA-Net's FLOPs)",
        "multiply-adds of convolutions and linear layers only, as the MobileNet and ECA-Net "
        "papers count; normalisation, activations, pooling and element-wise work count 0",
        modules={
            kind: "macs"
            for kind in ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                         "ConvTranspose3d", "Linear")
        },
        origin="built-in",
    ),
)

CONVENTIONS: dict[str, Convention] = {c.name: c for c in BUILT_IN}
"""Every convention known to this process: the built-ins, then those registered."""

DEFAULT_CONVENTIONS: tuple[str, ...] = ("paper", "fvcore", "thop", "full")
"""What a profile counts when not told: the four conventions of the published comparisons."""


def get_convention(name: str | Convention) -> Convention:
    """A registered convention by name (any case), or ``name`` itself when it is one."""
    if isinstance(name, Convention):
        return name
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in CONVENTIONS:
        raise AttnprofError(
            f"unknown counting convention {name!r}; valid conventions: {choices(CONVENTIONS)} "
            "(or one registered with attnprof.register_convention)"
        )
    return CONVENTIONS[key]


def check_convention(convention: Convention, where: str | None = None) -> Convention:
    """Validate a declaration; raises one :class:`AttnprofError` naming what is wrong.

    Rule tables are resolved here (module types imported, aten ops looked up, rule texts
    parsed), so a mistake is found when the convention is declared, not halfway through a run.
    """
    where = where or f"convention {convention.name!r}"
    if not isinstance(convention.name, str) or not NAME.match(convention.name):
        raise AttnprofError(
            f"{where}: invalid name {convention.name!r}; use lower-case letters, digits, "
            "'-', '_' and '.'"
        )
    if convention.unit not in UNITS:
        raise AttnprofError(f"{where}: unit {convention.unit!r}; valid units: {choices(UNITS)}")
    if not isinstance(convention.description, str) or not convention.description.strip():
        raise AttnprofError(f"{where}: a description is required (what it counts, what not)")
    if convention.counter is not None:
        if convention.modules or convention.ops or convention.base:
            raise AttnprofError(
                f"{where}: give either a counter or rules (modules, ops, base), not both"
            )
        return convention
    if convention.base is not None:
        base = get_convention(convention.base)
        if not base.uses_rules:
            rules = choices([c.name for c in CONVENTIONS.values() if c.uses_rules])
            raise AttnprofError(
                f"{where}: base {base.name!r} wraps an external counter and has no rules to "
                f"start from; valid bases: {rules}"
            )
    from attnprof.counting.rule_text import compile_tables

    modules, ops = convention.tables()
    if not modules and not ops:
        raise AttnprofError(
            f"{where}: no rules; give modules (a rule per module type) and/or ops (a rule per "
            "aten op), or a base convention to start from"
        )
    compile_tables(modules, ops, where)
    return convention


def register_convention(convention: Convention | None = None, /, **declaration: Any) -> Convention:
    """Declare a counting convention and make it countable by name, like a built-in.

    Give a :class:`Convention` or its fields as keywords::

        attnprof.register_convention(
            name="paper-sigmoid", unit="MAC", base="paper",
            description="paper, plus one MAC per sigmoid output element",
            modules={"Sigmoid": "output"}, ops={"aten::sigmoid": "output"})

    A built-in's name cannot be taken; registering the same name again replaces the earlier
    declaration (so a notebook cell can be re-run).
    """
    if convention is None:
        try:
            convention = Convention(**declaration)
        except TypeError as exc:
            raise AttnprofError(f"register_convention: {exc}") from None
    elif declaration:
        convention = replace(convention, **declaration)
    if convention.origin == "built-in" or convention.name in {c.name for c in BUILT_IN}:
        raise AttnprofError(
            f"convention {convention.name!r}: that is a built-in convention's name; choose "
            f"another (built-ins: {choices([c.name for c in BUILT_IN])})"
        )
    check_convention(convention)
    CONVENTIONS[convention.name] = convention
    return convention
