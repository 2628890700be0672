"""Join shards and results of several machines into one document (``attnprof merge``).

Caveat first: nothing is ever averaged. A timing is a property of the machine that took it, so
each one keeps its machine; two timings of the same cell, condition and machine are refused
(compare such runs with ``attnprof compare``, which pools them honestly), with one exception:
the baseline of a group that straddles two shards of a run is timed in both (each shard's
variants need it in their own rounds), and the lowest shard's timing is kept. Each variant
keeps the ratio to the baseline of its own rounds either way.

What counts as one machine: the same CPU model and count, GPU, torch build and thread count,
and the same detailed description where the files have one
(:func:`attnprof.machine.describe_machine`). Shards that ran on identical CI runners are one
machine, so merging a run's shards gives the document the unsharded run would have written
(no machine labels); files of different machines give a document whose ``machines`` lists
each with a label (``A``, ``B``, ...) that its timings carry, and the report gets a column
group per machine and device.

Counts do not depend on the machine: a cell present in several files must have been counted
from the same code (its fingerprint) to the same numbers, or the merge is refused.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from attnprof.errors import AttnprofError
from attnprof.results.document import (
    Cell,
    LatencyEntry,
    MachineRun,
    Provenance,
    ResultsDocument,
)
from attnprof.suite.config import Suite

_IDENTITY_FIELDS = ("cpu", "cpu_count", "torch", "threads")


def machine_identity(provenance: Provenance | None) -> str:
    """What tells one machine from another, as a canonical JSON string (equal: same machine)."""
    if provenance is None:
        return "unknown"
    gpu = provenance.gpu.get("name") if isinstance(provenance.gpu, dict) else provenance.gpu
    identity = {name: getattr(provenance, name) for name in _IDENTITY_FIELDS}
    identity.update(gpu=gpu, machine=provenance.machine)
    return json.dumps(identity, sort_keys=True, default=str)


@dataclass
class _Machine:
    provenance: Provenance
    sources: list[str] = field(default_factory=list)


@dataclass
class _Merged:
    """A cell as merged so far, with where each part came from (for error messages)."""

    cell: Cell
    source: str
    entries: dict[tuple, tuple[LatencyEntry, str, bool]] = field(default_factory=dict)
    """(machine, condition, threads) -> (entry, source, whether the source is a shard)."""


def merge_documents(inputs: Sequence[tuple[str, ResultsDocument]]) -> ResultsDocument:
    """One document from ``(path, document)`` pairs of the same suite (see the module's doc)."""
    if not inputs:
        raise AttnprofError("merge needs at least one results file")
    ordered = sorted(inputs, key=lambda item: _shard_index(item[1]))  # lowest shard first
    suite = _merged_suite(ordered)
    machines: dict[str, _Machine] = {}
    cells: dict[str, _Merged] = {}
    for path, doc in ordered:
        sharded = bool(doc.provenance and doc.provenance.shard)
        for provenance in _machines_of(doc):
            machines.setdefault(machine_identity(provenance),
                                _Machine(_unsharded(provenance))).sources.append(
                _described(path, doc))
        for cell in doc.cells:
            _add_cell(cells, cell, path, doc, sharded)
    keys = list(machines)
    labels = ({key: None for key in keys} if len(keys) == 1
              else {key: _label(i) for i, key in enumerate(keys)})
    from attnprof.suite.runner import in_suite_order  # lazily: the runner imports results

    merged_cells = in_suite_order(suite, (_finished(m, labels) for m in cells.values()))
    first = machines[keys[0]] if keys else None
    runs = () if len(keys) < 2 else tuple(
        MachineRun(labels[key], machine.provenance, tuple(dict.fromkeys(machine.sources)))
        for key, machine in machines.items()
    )
    return ResultsDocument(
        suite,
        tuple(merged_cells),
        first.provenance if first else None,
        None,
        runs,
        tuple(_described(path, doc) for path, doc in ordered),
    )


def _shard_index(doc: ResultsDocument) -> int:
    shard = doc.provenance.shard if doc.provenance else None
    return int(shard.split("/")[0]) if shard else 0


def _described(path: str, doc: ResultsDocument) -> str:
    shard = doc.provenance.shard if doc.provenance else None
    return f"{path} (shard {shard})" if shard else path


def _unsharded(provenance: Provenance) -> Provenance:
    return replace(provenance, shard=None)


def _machines_of(doc: ResultsDocument) -> list[Provenance]:
    if doc.machines:
        return [m.provenance for m in doc.machines]
    return [doc.provenance] if doc.provenance is not None else [Provenance()]


def _entry_machine(doc: ResultsDocument, entry: LatencyEntry) -> str:
    return machine_identity(doc.machine(entry.machine) if entry.machine else
                            (doc.provenance or Provenance()))


def _label(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else f"M{index + 1}"


# -- the suite ----------------------------------------------------------------------------------


def _suite_shape(suite: Suite) -> dict[str, Any]:
    """What must agree between the files: everything but where the suite file lay and the
    latency table (devices, processes and rounds may differ by machine)."""
    data = suite.to_dict()
    data.pop("source", None)
    data.pop("latency", None)
    return data


def _merged_suite(inputs: Sequence[tuple[str, ResultsDocument]]) -> Suite:
    first_path, first = inputs[0]
    shape = _suite_shape(first.suite)
    devices = list(first.suite.latency.devices)
    for path, doc in inputs[1:]:
        if doc.suite.name != first.suite.name:
            raise AttnprofError(
                f"cannot merge {path} (suite {doc.suite.name!r}) with {first_path} (suite "
                f"{first.suite.name!r}): merge results of one suite"
            )
        other = _suite_shape(doc.suite)
        if other != shape:
            differs = sorted(k for k in shape.keys() | other.keys() if shape.get(k) != other.get(k))
            raise AttnprofError(
                f"cannot merge {path} with {first_path}: suite {first.suite.name!r} differs in "
                f"{', '.join(differs)}; merge runs of the same suite file and options"
            )
        devices += [d for d in doc.suite.latency.devices if d not in devices]
    return replace(first.suite, latency=replace(first.suite.latency, devices=tuple(devices)))


# -- the cells ----------------------------------------------------------------------------------


def _add_cell(cells: dict[str, _Merged], cell: Cell, path: str, doc: ResultsDocument,
              sharded: bool) -> None:
    merged = cells.get(cell.id)
    if merged is None:
        merged = cells[cell.id] = _Merged(replace(cell, latency=()), path)
    else:
        _check_same_counts(merged, cell, path)
        if not merged.cell.ok and cell.ok:
            merged.cell, merged.source = replace(cell, latency=()), path
    for entry in cell.latency:
        key = (_entry_machine(doc, entry), entry.condition, entry.threads)
        held = merged.entries.get(key)
        if held is None or (not held[0].ok and entry.ok):
            merged.entries[key] = (entry, path, sharded)
        elif entry.ok and held[0].ok and not (cell.is_baseline and sharded and held[2]):
            raise AttnprofError(
                f"cannot merge: {cell.id!r} is timed on the same machine ({entry.device}, batch "
                f"{entry.batch}, {entry.pass_name}, {entry.mode}) in {held[1]} and in {path}; "
                "merge the shards of one run or results of different machines (compare repeated "
                "runs with 'attnprof compare A.json,B.json C.json,D.json')"
            )


def _check_same_counts(merged: _Merged, cell: Cell, path: str) -> None:
    held = merged.cell
    if held.fingerprint and cell.fingerprint and held.fingerprint != cell.fingerprint:
        raise AttnprofError(
            f"cannot merge: {cell.id!r} was measured from different code or options in "
            f"{merged.source} (fingerprint {held.fingerprint}) and {path} (fingerprint "
            f"{cell.fingerprint}); merge results of the same code"
        )
    if held.ok and cell.ok and held.profile.to_dict() != cell.profile.to_dict():
        raise AttnprofError(
            f"cannot merge: {cell.id!r} was counted differently in {merged.source} and {path}; "
            "merge results of the same code and attnprof version"
        )


def _finished(merged: _Merged, labels: dict[str, str | None]) -> Cell:
    entries = tuple(replace(entry, machine=labels[key[0]])
                    for key, (entry, _, _) in merged.entries.items())
    return replace(merged.cell, latency=entries)
