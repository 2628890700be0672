"""Where each variant's attention cost sits: per stage and per operator, from the stored splits.

Caveat first: this reads the :class:`~attnprof.results.counts.AttentionSplit` each count kept
(results files written before it was recorded have none, and the report then leaves the
section out). Stages are attnprof's own numbering of a backbone's stages (0 is the first);
operators are split only where a convention prices ops (``full``'s aten ops, ``paper``'s module
types).
"""

from __future__ import annotations

from dataclasses import dataclass

from attnprof.report.tables import ok_cells
from attnprof.results import ResultsDocument
from attnprof.suite.config import BASELINE

TOP_OPS = 3
"""How many operators a row names, the heaviest first."""


@dataclass(frozen=True)
class AttentionPlace:
    """One variant's attention part on one backbone and setting."""

    backbone: str
    setting: str
    variant: str
    convention: str
    unit: str
    total: int
    by_stage: dict[str, int]
    bytes_convention: str | None = None
    bytes_total: int | None = None
    bytes_by_stage: dict[str, int] | None = None
    heaviest_ops: tuple[tuple[str, float], ...] = ()
    """``(op, share of the attention bytes)``, the heaviest first (of its value where no
    bytes were counted)."""


def attention_places(doc: ResultsDocument, convention: str) -> list[AttentionPlace]:
    """Every attention cell with a stored split under ``convention``, in suite order; bytes and
    operators from the first convention that counted bytes."""
    places = []
    for cell in ok_cells(doc):
        if cell.variant == BASELINE:
            continue
        counts = cell.profile.counts
        count = counts.get(convention)
        if count is None or count.attention_split is None:
            continue
        moved = next((c for c in counts.values()
                      if c.attention_split is not None and c.attention_split.bytes_by_stage), None)
        split = (moved or count).attention_split
        ops = (split.bytes_by_op if moved else split.by_op) or {}
        whole = sum(ops.values())
        heaviest = tuple((op, value / whole) for op, value in
                         sorted(ops.items(), key=lambda kv: -kv[1])[:TOP_OPS]) if whole else ()
        places.append(AttentionPlace(
            backbone=cell.backbone,
            setting=cell.setting,
            variant=cell.variant,
            convention=convention,
            unit=count.unit,
            total=count.attention or 0,
            by_stage=count.attention_split.by_stage,
            bytes_convention=moved.convention if moved else None,
            bytes_total=moved.attention_bytes if moved else None,
            bytes_by_stage=moved.attention_split.bytes_by_stage if moved else None,
            heaviest_ops=heaviest,
        ))
    return places
