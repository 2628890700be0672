"""Per-module and per-operator breakdowns of a count: the arithmetic, kept apart from counters.

Caveat first: a module's *self* count (what ran in its own forward, outside its children) is
what the counters record, because self counts sum exactly to the total; what a reader wants in
a tree is the *inclusive* count of a subtree, derived here. A module called twice (shared
weights) is one entry holding both calls. Modules that never ran do not appear.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from torch import nn

from attnprof.results.counts import AttentionSplit, Breakdown


def parent_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def depth_of(name: str) -> int:
    """0 for the model itself (``""``), 1 for its children, ..."""
    return 0 if not name else name.count(".") + 1


def inclusive(self_counts: Mapping[str, int]) -> dict[str, int]:
    """Every module's subtree total: its self count plus every descendant's, ancestors listed
    (so a parent that did nothing itself still appears with its children's sum)."""
    totals: Counter = Counter()
    for name, value in self_counts.items():
        node = name
        while True:
            totals[node] += value
            if not node:
                break
            node = parent_of(node)
    return dict(totals)


def exclusive(subtree_counts: Mapping[str, float]) -> dict[str, int]:
    """Self counts from subtree totals (fvcore's ``by_module``, thop's layer tree), each
    rounded first so that the self counts telescope exactly to the rounded root total."""
    rounded = {name: round(float(value)) for name, value in subtree_counts.items()}
    children: Counter = Counter()
    for name, value in rounded.items():
        if name:
            children[parent_of(name)] += value
    return {name: value - children[name] for name, value in rounded.items()
            if value - children[name]}


def tree_order(names: Iterable[str], depth: int | None = None) -> list[str]:
    """``names`` with their ancestors, each parent before its children, in first-seen order
    (the order the forward ran them), down to ``depth``."""
    ordered: dict[str, None] = {"": None}
    for name in names:
        parts = name.split(".") if name else []
        for end in range(1, len(parts) + 1):
            if depth is not None and end > depth:
                break
            ordered.setdefault(".".join(parts[:end]), None)
    return list(ordered)


def collapse(self_counts: Mapping[str, int], depth: int) -> dict[str, int]:
    """Subtree totals of the modules down to ``depth``; deeper ones are folded into their
    ancestor at ``depth``. The rows at exactly ``depth`` plus the self counts above it still sum
    to the total."""
    return {name: value for name, value in inclusive(self_counts).items()
            if depth_of(name) <= depth}


def attention_owner(name: str, attention: Iterable[str]) -> str | None:
    """The attention module that ``name`` is, or lies inside; ``None`` outside all of them."""
    return next((a for a in attention if name == a or name.startswith(a + ".")), None)


def attention_stages(model: nn.Module, names: Iterable[str]) -> dict[str, int | None]:
    """Each attention module's stage, as attnprof's builders tag it (``None`` if untagged)."""
    return {name: getattr(model.get_submodule(name), "attnprof_stage", None) for name in names}


def by_stage(breakdown: Breakdown, moved: bool = False) -> dict[int | None, int]:
    """The attention modules' subtree totals summed per stage (of the bytes with ``moved``)."""
    self_counts = breakdown.bytes_by_module if moved else breakdown.by_module
    totals = inclusive(self_counts or {})
    sums: Counter = Counter()
    for name, stage in breakdown.attention.items():
        sums[stage] += totals.get(name, 0)
    return dict(sums)


def attention_split(breakdown: Breakdown) -> AttentionSplit:
    """The attention part of ``breakdown``, per stage and per operator."""

    def keyed(sums: dict[int | None, int]) -> dict[str, int]:
        return {("?" if stage is None else str(stage)): value
                for stage, value in sorted(sums.items(), key=lambda kv: (kv[0] is None, kv[0]))}

    moved = breakdown.bytes_by_module is not None
    return AttentionSplit(
        by_stage=keyed(by_stage(breakdown)),
        by_op=breakdown.attention_by_op,
        bytes_by_stage=keyed(by_stage(breakdown, moved=True)) if moved else None,
        bytes_by_op=breakdown.attention_bytes_by_op,
    )


def make(by_module: Mapping[str, int], by_op: Mapping[str, int], model: nn.Module,
         attention: Iterable[str], bytes_by_module: Mapping[str, int] | None = None,
         bytes_by_op: Mapping[str, int] | None = None,
         attention_by_op: Mapping[str, int] | None = None,
         attention_bytes_by_op: Mapping[str, int] | None = None) -> Breakdown:
    """A :class:`Breakdown` with zero entries dropped, modules in the order they ran and
    operators largest first."""

    def clean(counts, largest_first=False):
        if counts is None:
            return None
        items = sorted(counts.items(), key=lambda kv: -kv[1]) if largest_first else counts.items()
        return {key: int(value) for key, value in items if value}

    return Breakdown(clean(by_module), clean(by_op, True), clean(bytes_by_module),
                     clean(bytes_by_op, True), attention_stages(model, attention),
                     clean(attention_by_op, True), clean(attention_bytes_by_op, True))

