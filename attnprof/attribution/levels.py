"""Which of the profiler's nested events is the operator that the ``full`` count counts.

Caveat first: the profiler records every operator call that goes through the dispatcher, at
every level of nesting, so one call in a module's forward shows up as a small tree:
``aten::conv2d -> aten::convolution -> aten::_convolution -> aten::mkldnn_convolution``,
``aten::linear -> aten::t, aten::addmm -> aten::expand, aten::copy_``. Counting every event
would count one convolution four times; counting only the outermost would count ``linear``
where the ``full`` count sees ``t`` and ``addmm``.

The ``full`` count (:mod:`attnprof.counting.engine`) sees operators through a dispatch mode,
which sits below autograd: an operator whose only kernel is *CompositeImplicitAutograd* (it is
written in terms of other operators, as ``conv2d``, ``linear``, ``reshape``,
``adaptive_avg_pool2d`` and ``batch_norm`` are) has been decomposed before the mode sees
anything, and everything an operator's own kernel calls runs below the mode, unseen. So the
operator the count sees is, on every path down the profiler's tree, **the outermost event that
is not CompositeImplicitAutograd**; its composite ancestors only dispatched, and its descendants
are its implementation. That is the level attnprof counts at, asking the dispatcher what
each operator declares rather than keeping a list of names (:func:`is_composite`; the walk
itself is :func:`attnprof.attribution.eager.profiled_forward`'s).

The profiler names an event without its overload. An operator counts as composite when all
its overloads are (``out=`` variants left aside: a forward does not write into given tensors);
for the few names whose overloads differ (``std``, ``var``, ``max``, ``where``, the upsampling
ops), the outermost event is the counted one, so ``x.std(dim)``, whose composite overload calls
the other, counts once as ``aten::std``, as the count does; ``torch.max(a, b)`` would count as
``aten::max`` where the count says ``aten::maximum`` (one call either way).
"""

from __future__ import annotations

import functools

import torch

ATEN = "aten::"
COMPOSITE_KEY = "CompositeImplicitAutograd"


@functools.cache
def is_composite(name: str) -> bool:
    """Whether every overload of the aten operator ``name`` (``"aten::linear"``) is
    CompositeImplicitAutograd: calling it only dispatches to other operators."""
    if not name.startswith(ATEN):
        return False
    packet = getattr(torch.ops.aten, name[len(ATEN):], None)
    if packet is None or not hasattr(packet, "overloads"):
        return False
    kinds = set()
    for overload in packet.overloads():
        if overload == "out" or overload.endswith("_out") or overload.startswith("out_"):
            continue
        qualified = name if overload == "default" else f"{name}.{overload}"
        try:
            kinds.add(torch._C._dispatch_has_kernel_for_dispatch_key(qualified, COMPOSITE_KEY))
        except RuntimeError:  # an overload the dispatcher does not know in this build
            continue
    return kinds == {True}


def is_operator(name: str) -> bool:
    """Whether a profiler event is an aten operator call (not a label or a Python frame)."""
    return name.startswith(ATEN)


LEVEL = ("eager: on every path down the profiler's tree, the outermost aten operator that is not "
         "CompositeImplicitAutograd (the operators the full count sees); composite operators "
         "above it count as dispatch time, what it calls as its own time")
"""The rule, as a :class:`~attnprof.attribution.records.GroupAttribution` states it."""
