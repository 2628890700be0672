"""Rules written as text, and rule tables resolved: what makes a convention declarable as data.

Caveat first: the text form is deliberately small, a sum of terms with integer coefficients,
so a suite file can declare a convention without running code, and every rule means one
thing. The terms, for one call of a module or one aten op:

- ``input``: elements of the first tensor argument;
- ``output``: elements of the (first) output;
- ``macs``: multiply-adds of a convolution or a matrix product (``Conv*``/``ConvTranspose*``
  and ``Linear`` modules; the ``convolution``, ``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``mv``,
  ``addmv``, ``dot`` and ``linear`` ops); an error elsewhere, never a silent 0;
- ``bias``: one per output element when the layer or op adds a bias, else 0.

``"2 * macs + bias"`` is a convolution in FLOPs, ``"output"`` one per output element, ``"0"``
free on purpose (counted as 0, not listed as uncounted). Keys name module types (``Conv2d``,
``torch.nn.Conv2d``, ``package.module:Class``) or aten ops (``aten::sigmoid``, ``sigmoid``;
every overload of the op).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from attnprof.errors import AttnprofError

TERMS = ("input", "output", "macs", "bias")
_TERM = re.compile(r"^(?:(\d+)\s*\*\s*)?(input|output|macs|bias)(?:\s*\*\s*(\d+))?$|^(\d+)$")

ModuleRule = Callable[[object, int, int], int]
OpRule = Callable[[tuple, dict, object], int]


@dataclass(frozen=True)
class RuleText:
    """A parsed rule: ``{term: coefficient}`` and a constant, with the text it came from."""

    text: str
    terms: tuple[tuple[str, int], ...]
    constant: int = 0

    def __str__(self) -> str:
        return self.text


def parse_rule(text: str, where: str) -> RuleText:
    """Parse ``"2 * macs + bias"``; an invalid text is one error naming ``where``."""
    if not isinstance(text, str) or not text.strip():
        raise AttnprofError(f"{where}: {text!r} is not a rule; {_HOW}")
    terms: dict[str, int] = {}
    constant = 0
    for part in text.split("+"):
        found = _TERM.match(part.strip())
        if not found:
            raise AttnprofError(f"{where}: {text!r} is not a rule; {_HOW}")
        left, term, right, alone = found.groups()
        if alone is not None:
            constant += int(alone)
            continue
        if left is not None and right is not None:
            raise AttnprofError(f"{where}: {text!r} is not a rule; {_HOW}")
        terms[term] = terms.get(term, 0) + int(left or right or 1)
    return RuleText(text.strip(), tuple(terms.items()), constant)


_HOW = ("write a sum of terms such as '2 * macs + bias' over " + ", ".join(TERMS)
        + " with whole-number coefficients, or '0'")


# ---- the terms, for modules and for ops ---------------------------------------------------


def module_macs(module, in_numel: int, out_numel: int) -> int:
    """Multiply-adds of one call of a convolution or linear module (see the module docstring)."""
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # weight (C_in, C_out / groups, k...): every input element meets C_out / groups * k.
        return in_numel * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvNd):
        # every output element is a dot product of length k * C_in / groups.
        return out_numel * math.prod(module.kernel_size) * (module.in_channels // module.groups)
    if isinstance(module, nn.Linear):
        return out_numel * module.in_features
    raise AttnprofError(
        f"rule term 'macs' is defined for convolution and linear modules; "
        f"{type(module).__name__} is neither: price it with input or output"
    )


def module_bias(module, in_numel: int, out_numel: int) -> int:
    bias = getattr(module, "bias", None)
    return out_numel if bias is not None and not isinstance(bias, bool) else 0


def _total(rule: RuleText, measure: Callable[[str], int]) -> int:
    """The rule's value, ``measure(term)`` giving each term's count for this call."""
    return rule.constant + sum(k * measure(term) for term, k in rule.terms)


def module_rule(rule: RuleText) -> ModuleRule:
    def apply(module, in_numel: int, out_numel: int) -> int:
        def measure(term: str) -> int:
            if term == "input":
                return in_numel
            if term == "output":
                return out_numel
            return (module_macs if term == "macs" else module_bias)(module, in_numel, out_numel)

        return _total(rule, measure)

    apply.__doc__ = rule.text
    return apply


def op_rule(rule: RuleText, name: str) -> OpRule:
    from attnprof.counting import rules as table

    def apply(args: tuple, kwargs: dict, out) -> int:
        def measure(term: str) -> int:
            if term == "input":
                return table.numel(args)
            if term == "output":
                return table.numel(out)
            found = (table.MACS if term == "macs" else table.BIAS).get(name)
            if found is None:
                raise AttnprofError(
                    f"rule term {term!r} is defined for convolutions and matrix products; "
                    f"aten::{name} is neither: price it with input or output"
                )
            return found(args, kwargs, out)

        return _total(rule, measure)

    apply.__doc__ = rule.text
    return apply


# ---- keys ---------------------------------------------------------------------------------


def module_type(key, where: str) -> type:
    """``Conv2d``, ``torch.nn.Conv2d`` or ``package.module:Class`` -> the class."""
    from torch import nn

    if isinstance(key, type):
        found = key
    elif isinstance(key, str) and key.strip():
        text = key.strip()
        module_name, _, attribute = (text.partition(":") if ":" in text
                                     else text.rpartition("."))
        try:
            found = (getattr(importlib.import_module(module_name), attribute) if module_name
                     else getattr(nn, attribute, None))
        except (ImportError, AttributeError, ValueError):
            found = None
    else:
        found = None
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise AttnprofError(
            f"{where}: {key!r} is not a module type; name a torch.nn class (Conv2d, Sigmoid, "
            "...) or your own as 'package.module:Class'"
        )
    return found


def op_packet(key, where: str):
    """``aten::sigmoid``, ``aten.sigmoid``, ``sigmoid`` or an op packet -> the op packet."""
    import torch

    if isinstance(key, torch._ops.OpOverloadPacket):
        return key
    if isinstance(key, torch._ops.OpOverload):
        return key.overloadpacket
    name = key.strip() if isinstance(key, str) else ""
    for prefix in ("aten::", "aten."):
        name = name.removeprefix(prefix)
    packet = getattr(torch.ops.aten, name, None) if name else None
    if not isinstance(packet, torch._ops.OpOverloadPacket):
        raise AttnprofError(
            f"{where}: {key!r} is not an aten op; name one as PyTorch does, such as "
            "'aten::sigmoid' or 'aten::convolution' (the ops a model runs are listed by "
            "'attnprof profile --by-op --conventions full')"
        )
    return packet


# ---- whole tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRules:
    """A convention's rules, resolved: module types to module rules, op packets to op rules."""

    modules: Mapping[type, ModuleRule]
    ops: Mapping[object, OpRule]

    def for_module(self, module) -> ModuleRule | None:
        """The rule of ``module``'s type or its nearest listed base class, or None."""
        for cls in type(module).__mro__:
            if cls in self.modules:
                return self.modules[cls]
        return None

    def for_op(self, func) -> OpRule | None:
        return self.ops.get(func.overloadpacket)


def compile_tables(modules: Mapping, ops: Mapping, where: str) -> CompiledRules:
    """Resolve every key and rule of a convention's tables; one error names the first bad one."""
    compiled_modules = {}
    for key, rule in modules.items():
        place = f"{where}: modules.{key if isinstance(key, str) else key.__name__}"
        kind = module_type(key, place)
        if isinstance(rule, str):
            rule = module_rule(parse_rule(rule, place))
        elif not callable(rule):
            raise AttnprofError(f"{place}: {rule!r} is not a rule; {_HOW}")
        compiled_modules[kind] = rule
    compiled_ops = {}
    for key, rule in ops.items():
        place = f"{where}: ops.{key}"
        packet = op_packet(key, place)
        if isinstance(rule, str):
            rule = op_rule(parse_rule(rule, place), packet.__name__.split(".")[-1])
        elif not callable(rule):
            raise AttnprofError(f"{place}: {rule!r} is not a rule; {_HOW}")
        compiled_ops[packet] = rule
    return CompiledRules(compiled_modules, compiled_ops)
