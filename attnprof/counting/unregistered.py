"""Parameters and modules that run in a forward without being registered in the model.

Caveat first: ``model.parameters()`` and ``model.modules()`` see only what is registered (an
attribute that is an ``nn.Module`` or ``nn.Parameter``, an ``nn.ModuleList``, ...). Layers kept
in a plain Python list or dict, or built inside ``forward``, still run, and their weights still
cost memory and arithmetic, but they are invisible to every count that walks the registered
tree (the parameter count, ``paper``'s and ``thop``'s module hooks) and they would not be
trained either (an optimizer gets ``model.parameters()``). A public module with this bug ran
hundreds of unregistered convolutions while its registered tree had no parameter at all.

:func:`census` watches one forward and finds them: unregistered modules through torch's global
module hooks, unregistered parameters through a :class:`~torch.overrides.TorchFunctionMode`
that sees every ``nn.Parameter`` an op is given (a functional call such as
``F.conv2d(x, self.weights[0])`` included). Each is attributed to the attention module running
when it was used (``""`` outside every attention module).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import nn
from torch.overrides import TorchFunctionMode

from attnprof.counting.tracing import hooked, unregistered_hooks


@dataclass(frozen=True)
class Unregistered:
    """What one forward ran without its being registered in the model.

    ``modules``: module type -> distinct modules of that type; ``params``: elements of the
    distinct unregistered parameters (those of unregistered modules included);
    ``attention_params``: the part of ``params`` used inside attention modules; ``places``:
    the attention modules they ran in (``""``: outside every attention module), in order.
    """

    modules: dict[str, int]
    params: int
    attention_params: int
    places: tuple[str, ...]

    @property
    def module_count(self) -> int:
        return sum(self.modules.values())

    def describe(self) -> str:
        """``12 modules (Conv2d x12) with 200,448 parameters``, or only the parameters."""
        kinds = ", ".join(f"{kind} x{n}" for kind, n in self.modules.items())
        parts = []
        if self.modules:
            parts.append(f"{self.module_count} module{'s' * (self.module_count != 1)} ({kinds})")
        noun = "parameter" if self.params == 1 else "parameters"
        parts.append(f"{self.params:,} {noun}")
        return " with ".join(parts)

    def where(self) -> str:
        """The first place and how many more: ``layer1.0.attention (and 15 more)``."""
        first = self.places[0] or "the network's own forward"
        more = len(self.places) - 1
        return first + (f" (and {more} more)" if more else "")


@dataclass
class Census:
    """Filled while :func:`census` watches a forward."""

    parameters: dict[int, tuple[nn.Parameter, str]] = field(default_factory=dict)
    """``id()`` -> (parameter, the attention module it was used in, ``""`` outside)."""
    modules: dict[int, tuple[nn.Module, str]] = field(default_factory=dict)

    def result(self) -> Unregistered | None:
        """What was found, or ``None`` when everything that ran is registered."""
        if not self.parameters and not self.modules:
            return None
        kinds = Counter(type(module).__name__ for module, _ in self.modules.values())
        places = dict.fromkeys(
            place for _, place in (*self.modules.values(), *self.parameters.values())
        )
        return Unregistered(
            modules=dict(kinds.most_common()),
            params=sum(p.numel() for p, _ in self.parameters.values()),
            attention_params=sum(p.numel() for p, place in self.parameters.values() if place),
            places=tuple(places),
        )


class _ParameterWatch(TorchFunctionMode):
    """Records every unregistered ``nn.Parameter`` that an op is given."""

    def __init__(self, census: Census, registered: set[int], running: list[str]):
        super().__init__()
        self.census = census
        self.registered = registered
        self.running = running

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # a parameter is an op's argument itself, or in a list of them (torch.cat): two levels
        # deep is enough, and far cheaper per op than flattening every argument tree
        for value in (*args, *kwargs.values()):
            if isinstance(value, (list, tuple)):
                for item in value:
                    self._see(item)
            else:
                self._see(value)
        return func(*args, **kwargs)

    def _see(self, value) -> None:
        if isinstance(value, nn.Parameter) and id(value) not in self.registered:
            place = self.running[-1] if self.running else ""
            self.census.parameters.setdefault(id(value), (value, place))


@contextmanager
def census(model: nn.Module, attention: Sequence[tuple[str, nn.Module]] = (),
           parameters: bool = True) -> Iterator[Census]:
    """Watch the forward run inside the block; the yielded :class:`Census` holds what ran
    unregistered. ``attention``: the attention modules by name, for attributing it.
    ``parameters=False`` watches modules only (the parameters of unregistered modules are
    still found; parameters used on their own are not), without the cost of seeing every op."""
    found = Census()
    registered = {id(p) for p in model.parameters()}
    running: list[str] = []
    names = {id(module): name for name, module in attention}

    def enter_attention(module, args):
        running.append(names[id(module)])

    def leave_attention(module, args, output):
        running.pop()

    def enter(module, args):
        place = running[-1] if running else ""
        found.modules.setdefault(id(module), (module, place))
        for param in module.parameters():
            if id(param) not in registered:
                found.parameters.setdefault(id(param), (param, place))

    def leave(module, args, output):
        pass

    watch = (_ParameterWatch(found, registered, running) if parameters
             else contextlib.nullcontext())
    with hooked([module for _, module in attention], enter_attention, leave_attention), \
            unregistered_hooks(model, enter, leave), watch:
        yield found
