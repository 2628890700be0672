"""Profile eager forwards with ``torch.profiler`` and cut each into :class:`OpEvent` stretches.

Caveats first:

- The profiler costs a few microseconds per operator call, so profiled forwards run slower
  than unprofiled ones; the caller times both.
- Each attention module's forward is labelled with ``record_function`` from a forward pre-hook
  to a forward hook, so its operators can be told apart from the backbone's. The hooks' own
  Python runs inside the label and lands in the module's ``between`` time (a few microseconds
  a module); the hooks are on only while profiling.
- Python's garbage collector is off during each profiled forward (:func:`no_collection`).
- Only the calling thread's events are walked: intra-op worker threads run kernels inside an
  operator the calling thread is already timing (their rare own events would count the same
  time twice).

How a forward's span is cut (every moment of it lands in exactly one stretch; the tests check
that the stretches sum to the span):

- an operator event at the ``full`` count's level (:mod:`attnprof.attribution.levels`) is one
  ``op`` stretch from its start to its end, the kernels it called included;
- a composite operator above it gives its own time (its span minus its children's) as a
  ``dispatch`` stretch and is walked into;
- the forward's label, each attention module's label and any other non-operator event give
  their own time as a ``between`` stretch (Python between operators) and are walked into.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from attnprof.attribution.levels import is_composite, is_operator
from attnprof.attribution.records import BACKBONE, ForwardProfile, OpEvent
from attnprof.counting.tracing import hooked
from attnprof.errors import AttnprofError

FORWARD_LABEL = "attnprof.forward"
SCOPE_LABEL = "attnprof.module:"
PROFILER = "torch.profiler, CPU activity, calling thread's events"


@contextmanager
def no_collection() -> Iterator[None]:
    """Python's garbage collector off for the duration, after a full collection, as timeit and
    torch's Timer time (the profiler's event objects of earlier forwards would otherwise
    trigger a collection of several milliseconds anywhere in the next one). Inside another
    ``no_collection`` it does nothing: the collection costs a tenth of a second, so a caller
    timing many forwards collects once per round."""
    if not gc.isenabled():
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def labelled(model: nn.Module, scopes: Mapping[str, str]) -> Iterator[None]:
    """Label every call of the modules named in ``scopes`` (qualified name -> scope) with
    ``record_function(SCOPE_LABEL + scope)``, from its forward pre-hook to its forward hook
    (called even when the forward raises); all removed on exit."""
    modules = {id(model.get_submodule(name)): scope for name, scope in scopes.items()}
    running: dict[int, list] = {}

    def enter(module, args):
        label = record_function(SCOPE_LABEL + modules[id(module)])
        label.__enter__()
        running.setdefault(id(module), []).append(label)

    def leave(module, args, output):
        running[id(module)].pop().__exit__(None, None, None)

    with hooked([model.get_submodule(name) for name in scopes], enter, leave):
        yield


def profiled_forward(model: nn.Module, x: torch.Tensor,
                     attention: Mapping[str, str]) -> ForwardProfile:
    """One forward of ``model`` on ``x`` under the profiler, labelled, cut into stretches.

    ``attention`` maps each attention module's qualified name to its scope; call under
    ``torch.inference_mode()`` with the threads already set.
    """
    with labelled(model, attention), profile(activities=[ProfilerActivity.CPU]) as prof, \
            no_collection():
        begin = time.perf_counter()
        with record_function(FORWARD_LABEL):
            model(x)
        wall = time.perf_counter() - begin
    roots = [e for e in prof.events() if e.name == FORWARD_LABEL and e.cpu_parent is None]
    if len(roots) != 1:  # the label is ours: one per forward, on the calling thread
        raise AttnprofError(f"the profiler gave {len(roots)} spans labelled {FORWARD_LABEL!r} "
                            "for one forward (expected 1): is another profiler running?")
    root = roots[0]
    events: list[OpEvent] = [OpEvent("between", "", BACKBONE, root.self_cpu_time_total)]
    _walk(root, BACKBONE, events)
    return ForwardProfile(span_us=root.time_range.elapsed_us(), events=tuple(events),
                          wall_us=wall * 1e6, recorded=_descendants(root))


def _descendants(event) -> int:
    return sum(1 + _descendants(child) for child in event.cpu_children)


def _walk(parent, scope: str, events: list[OpEvent]) -> None:
    for event in parent.cpu_children:
        name = event.name
        if is_operator(name):
            if is_composite(name):
                events.append(OpEvent("dispatch", name, scope, event.self_cpu_time_total))
                _walk(event, scope, events)
            else:
                events.append(OpEvent("op", name, scope, event.time_range.elapsed_us()))
            continue
        inner = scope
        if name.startswith(SCOPE_LABEL) and scope == BACKBONE:  # the outermost module owns
            inner = name[len(SCOPE_LABEL):]
        events.append(OpEvent("between", "", inner, event.self_cpu_time_total))
        _walk(event, inner, events)
