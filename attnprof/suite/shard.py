"""A deterministic share of a suite's cells, for splitting one run across CI jobs (``--shard K/N``).

Caveat first: a variant's latency Δ is only meaningful against the plain backbone timed in the
same rounds, so the baseline (``none``) of every group a shard holds variants of travels with
them: it is counted and timed in each such shard. Where a group straddles two shards its
baseline is therefore measured twice; :mod:`attnprof.results.merge` keeps one of its timings
(the lowest shard's) and every variant keeps the ratio to the baseline of its own rounds.

The share depends on the suite alone, never on the machine or the time: the variant cells (all
but the baselines) in suite order are cut into ``N`` contiguous runs of near-equal length, and
shard ``K`` takes the ``K``-th. Contiguous runs keep each group's variants together where they
can, so few baselines are timed twice. A group with no variant at all (a suite of baselines
only) goes to the shard its position picks, round robin. The same suite and ``N`` give the same
shares on every machine, which is what lets the jobs of a CI matrix each run ``--shard K/N``
without talking to each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from attnprof.errors import AttnprofError

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")

Planned = TypeVar("Planned")


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (1-based) of ``count`` shares."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> ``Shard(2, 3)``; anything else is refused with what would be valid."""
        match = _SPEC.fullmatch(str(text))
        if match is None:
            raise AttnprofError(
                f"--shard expects K/N (this job's share K of N, e.g. 2/3), got {text!r}"
            )
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= index <= count:
            raise AttnprofError(
                f"--shard {text}: K must be between 1 and N (N at least 1), e.g. 1/{max(count, 1)}"
            )
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, planned: Sequence[tuple[str, str, bool, Planned]]) -> list[Planned]:
        """This shard's items of ``planned``, in their order.

        ``planned`` holds ``(backbone, setting, is_baseline, item)`` in suite order; the result
        keeps the items of this shard's variant cells and the baselines of their groups.
        """
        variants = [i for i, (_, _, baseline, _) in enumerate(planned) if not baseline]
        start, stop = _bounds(len(variants), self.index, self.count)
        mine = set(variants[start:stop])
        groups = list(dict.fromkeys((b, s) for b, s, _, _ in planned))
        with_variants = {planned[i][:2] for i in variants}
        wanted_groups = {planned[i][:2] for i in mine} | {
            group for position, group in enumerate(groups)
            if group not in with_variants and position % self.count == self.index - 1
        }
        return [
            item for i, (backbone, setting, baseline, item) in enumerate(planned)
            if i in mine or (baseline and (backbone, setting) in wanted_groups)
        ]


def _bounds(total: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous runs over ``total`` items, sizes differing by at
    most one (the longer runs first)."""
    size, longer = divmod(total, count)
    start = (index - 1) * size + min(index - 1, longer)
    return start, start + size + (1 if index <= longer else 0)
