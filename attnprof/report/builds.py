"""What each mode built once per run: how long compiling or exporting took, and whether the
built model computes what eager computes.

Caveats first: a build is timed apart from every timing and never mixed into one. Files
written before builds were recorded hold, for ``compile``, only each process's first call
(compilation and one run, or a cache hit in a process that found inductor's cache warm): the
median of those stands in for the build, and the row says so. The output check is on one
random input (:class:`attnprof.runtimes.base.OutputCheck`); a build whose check failed was
never timed, and its row keeps the numbers that refused it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attnprof.report.tables import LatencyKey, builds, latency_entry
from attnprof.results import Cell

if TYPE_CHECKING:  # the check is read by its fields only: a mode's own record type fits
    from attnprof.runtimes.base import OutputCheck


@dataclass(frozen=True)
class BuildRow:
    """One variant's build in one pass and mode (``key``).

    ``build_s``: seconds of compiling or exporting; ``first_call``: it is the median first
    call of older files instead; ``check``: the output check (``None``: not checked, as for a
    compiled training step); ``error``: why the timing failed, where it did.
    """

    backbone: str
    setting: str
    variant: str
    key: LatencyKey
    build_s: float | None
    first_call: bool = False
    check: OutputCheck | None = None
    runtime_version: str | None = None
    error: str | None = None


def build_row(cell: Cell, key: LatencyKey) -> BuildRow | None:
    entry = latency_entry(cell, key)
    if entry is None or not builds(entry):
        return None
    error = entry.failure.error if entry.failure is not None else None
    built = entry.build
    if built is not None:
        return BuildRow(cell.backbone, cell.setting, cell.variant, key, built.build_s,
                        check=built.check, runtime_version=built.runtime_version, error=error)
    calls = entry.record.first_call_s if entry.record is not None else ()
    return BuildRow(cell.backbone, cell.setting, cell.variant, key,
                    statistics.median(calls) if calls else None, first_call=bool(calls),
                    error=error)


def build_rows(cells: tuple[Cell, ...], keys: tuple[LatencyKey, ...]) -> list[BuildRow]:
    """Every counted cell's build in every mode that builds, by condition, then cell."""
    return [row for key in keys for cell in cells if cell.ok
            if (row := build_row(cell, key)) is not None]
