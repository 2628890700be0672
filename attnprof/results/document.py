"""The typed records of a results document: cells, their timings and failures, provenance.

Caveat first: these records are what a *validated* document turns into; build them from JSON
only through :func:`attnprof.results.parse` (which migrates old versions and validates against
the JSON Schema first), never with ``from_dict`` on raw input.

Every record has ``to_dict`` (the JSON of ``results.json``) and ``from_dict``. Keys a record does
not type are kept verbatim (``details``, ``extra``) and written back, so reading and rewriting a
file loses nothing, including fields a newer attnprof added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from attnprof.attribution.records import GroupAttribution
from attnprof.runtimes.base import Built
from attnprof.latency.records import LatencyRecord, PairedRatio
from attnprof.machine import MachineLimits
from attnprof.records_json import JsonRecord, decode, encode
from attnprof.results.counts import ProfileRecord
from attnprof.suite.config import BASELINE, Suite

SCHEMA_VERSION = 7
SCHEMA = f"attnprof-results/{SCHEMA_VERSION}"
"""The ``schema`` tag of the documents this attnprof writes."""


@dataclass(frozen=True)
class Failure:
    """Why something could not be measured: one line for tables, the full traceback for a
    person debugging it (``None`` where it was not recorded)."""

    error: str
    traceback: str | None = None


@dataclass(frozen=True)
class LatencyEntry:
    """One timing of a cell: where and how it was timed (device, batch size, pass, mode,
    threads, and in a merged document the machine), and what came of it: the
    :class:`~attnprof.latency.records.LatencyRecord` of the variant's samples (ms) and its
    :class:`~attnprof.latency.records.PairedRatio` to the baseline timed in the same rounds,
    with the notes of its comparison and what building it took (``build``: compile or export
    time and the output check, for modes that build); or the failure.

    The record and the ratio are the very objects the timing produced, stored as they are:
    ``results.json`` writes the record's fields at the entry's top level (as every version
    did) and the ratio under ``ratio``. ``extra`` keeps keys neither type knows (a newer
    attnprof's), written back unchanged.
    """

    device: str
    batch: int
    pass_name: str = "inference"
    mode: str = "eager"
    threads: int | None = None
    record: LatencyRecord | None = None
    ratio: PairedRatio | None = None
    notes: tuple[str, ...] = ()
    failure: Failure | None = None
    build: Built | None = None
    machine: str | None = None
    """The label of the machine it was timed on, in a document merged from several machines
    (:attr:`ResultsDocument.machines`); ``None``: the document's own provenance."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None and self.record is not None

    @property
    def condition(self) -> tuple[str, int, str, str]:
        """What the timing is of: ``(device, batch, pass_name, mode)``."""
        return self.device, self.batch, self.pass_name, self.mode

    @property
    def median_ms(self) -> float | None:
        return None if self.record is None else self.record.median_ms

    @property
    def times_ms(self) -> tuple[float, ...]:
        return () if self.record is None else self.record.times_ms

    @classmethod
    def measured(cls, record: LatencyRecord, ratio: PairedRatio, notes: Iterable[str] = (),
                 build: Built | None = None) -> LatencyEntry:
        return cls(record.device, record.batch, record.pass_name, record.mode, record.threads,
                   record, ratio, tuple(notes), build=build)

    @classmethod
    def failed(cls, condition: tuple[str, int, str, str], failure: Failure,
               threads: int | None = None, build: Built | None = None) -> LatencyEntry:
        device, batch, pass_name, mode = condition
        return cls(device, batch, pass_name, mode, threads, failure=failure, build=build)

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"device": self.device, "batch": self.batch,
                                "pass_name": self.pass_name, "mode": self.mode,
                                **({"machine": self.machine} if self.machine else {})}
        built = {"build": self.build.to_dict()} if self.build is not None else {}
        if self.failure is not None or self.record is None:
            failure = self.failure or Failure("no timing recorded")
            return {
                **head,
                **({"threads": self.threads} if self.threads is not None else {}),
                "error": failure.error,
                "traceback": failure.traceback,
                **built,
                **self.extra,
            }
        record = {k: v for k, v in self.record.to_dict().items() if k not in head}
        return {
            **head,
            **record,
            **self.extra,
            "ratio": None if self.ratio is None else self.ratio.to_dict(),
            "notes": list(self.notes),
            **built,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyEntry:
        head = {"device": data["device"], "batch": data["batch"],
                "pass_name": data.get("pass_name", "inference"),
                "mode": data.get("mode", "eager"), "machine": data.get("machine"),
                "threads": data.get("threads")}
        build = Built.from_dict(data["build"]) if data.get("build") else None
        known = {*head, "build", "ratio", "notes", "error", "traceback"}
        if data.get("error") is not None:
            return cls(**head, failure=Failure(str(data["error"]), data.get("traceback")),
                       build=build, extra={k: v for k, v in data.items() if k not in known})
        record = LatencyRecord.from_dict(data)
        ratio = data.get("ratio")
        own = {f.name for f in fields(LatencyRecord)} | _DERIVED_RECORD_KEYS
        return cls(**head, record=record,
                   ratio=None if ratio is None else PairedRatio.from_dict(ratio),
                   notes=tuple(data.get("notes") or ()), build=build,
                   extra={k: v for k, v in data.items() if k not in known | own})


_DERIVED_RECORD_KEYS = {"high_variance", "contended"}
"""Keys :meth:`LatencyRecord.to_dict` derives (and ``from_dict`` ignores)."""


@dataclass(frozen=True)
class Cell:
    """One backbone x setting x variant: its counts (``profile``), its timings, or its failure.

    ``input`` is the counted input's shape ``(N, C, H, W)``. A cell with a ``failure`` has no
    profile; a timing can fail on its own (its :class:`LatencyEntry` then holds the failure).
    """

    id: str
    backbone: str
    variant: str
    setting: str
    attention: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    head: str | None = None
    input: tuple[int, ...] | None = None
    profile: ProfileRecord | None = None
    latency: tuple[LatencyEntry, ...] = ()
    failure: Failure | None = None
    fingerprint: str | None = None
    """What the cell was measured with (:mod:`attnprof.fingerprint`); ``None`` in files written
    before fingerprints, which ``--resume`` therefore measures again."""

    @property
    def status(self) -> str:
        return "ok" if self.failure is None else "error"

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def is_baseline(self) -> bool:
        """The plain backbone every other variant's Δ is taken against."""
        return self.variant == BASELINE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "backbone": self.backbone,
            "variant": self.variant,
            "attention": self.attention,
            "options": dict(self.options),
            "setting": self.setting,
            "head": self.head,
            "input": None if self.input is None else list(self.input),
            "status": self.status,
            "error": None if self.failure is None else self.failure.error,
            "traceback": None if self.failure is None else self.failure.traceback,
            "profile": None if self.profile is None else self.profile.to_dict(),
            "latency": [entry.to_dict() for entry in self.latency],
            **({"fingerprint": self.fingerprint} if self.fingerprint is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        identity = {
            "backbone": data["backbone"],
            "attention": data.get("attention") or data["variant"],
            "options": data.get("options") or {},
            "head": data.get("head"),
            "input": data.get("input"),
        }
        if data.get("status") != "error":
            profile = data.get("profile")
            profile = None if profile is None else ProfileRecord.from_dict(profile, identity)
            return decode(cls, {**data, "profile": profile, "failure": None})
        failure = Failure(str(data.get("error")), data.get("traceback"))
        return decode(cls, {**data, "profile": None, "failure": failure})


_WRITTEN_WHEN_KNOWN = ("machine", "suite_source", "variant_sources", "shard")
"""Provenance fields that files written before them lack: absent, not null, while unknown."""


@dataclass(frozen=True)
class Provenance:
    """Where and with what results were measured. ``None`` means unknown; ``extra`` keeps the
    fields this version does not type (a newer attnprof's), written back unchanged."""

    attnprof: str | None = None
    torch: str | None = None
    fvcore: str | None = None
    thop: str | None = None
    python: str | None = None
    platform: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    gpu: dict[str, Any] | None = None
    threads: int | None = None
    git_commit: str | None = None
    utc: str | None = None
    machine_limits: tuple[MachineLimits, ...] = ()
    """The probed memory bandwidth and peak FLOP/s of each timed device (written when
    probed: a run that timed nothing has none)."""
    machine: dict[str, Any] | None = None
    """The machine in detail (:func:`attnprof.machine.describe_machine`): the CPU's model,
    family, ISA extensions and caches, torch's build, the GPU; what ``compare`` and ``merge``
    tell machines apart by."""
    suite_source: dict[str, Any] | None = None
    """The repository and commit of the suite file (a user's suite), ``None`` for a shipped one."""
    variant_sources: dict[str, str] | None = None
    """Each variant's source fingerprint: the file of its attention module, hashed."""
    shard: str | None = None
    """``"K/N"`` when the run measured the K-th of N shares of the suite (``run --shard``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        typed = {f.name: getattr(self, f.name) for f in fields(self)
                 if f.name not in ("extra", "machine_limits", *_WRITTEN_WHEN_KNOWN)}
        known = {name: getattr(self, name) for name in _WRITTEN_WHEN_KNOWN
                 if getattr(self, name) is not None}
        limits = [m.to_dict() for m in self.machine_limits]
        return {**typed, **({"machine_limits": limits} if limits else {}), **known, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        names = {f.name for f in fields(cls)} - {"extra", "machine_limits"}
        return cls(
            **{k: v for k, v in data.items() if k in names},
            machine_limits=tuple(MachineLimits.from_dict(m)
                                 for m in data.get("machine_limits") or ()),
            extra={k: v for k, v in data.items() if k not in names | {"machine_limits"}},
        )


@dataclass(frozen=True)
class MachineRun(JsonRecord):
    """One machine of a document merged from several (``attnprof merge``): the label its
    timings carry (``A``, ``B``, ...), its provenance, and the files it came from."""

    label: str
    provenance: Provenance
    sources: tuple[str, ...] = ()

    def describe(self) -> str:
        """``AMD EPYC 7B13 (2 CPUs), NVIDIA H100, torch 2.13.0+cpu, 2 threads``."""
        prov = self.provenance
        parts = [f"{prov.cpu or 'unknown CPU'}"
                 + (f" ({prov.cpu_count} CPUs)" if prov.cpu_count else "")]
        gpu = prov.gpu.get("name") if isinstance(prov.gpu, dict) else None
        parts += [gpu] if gpu else []
        parts += [f"torch {prov.torch}"] if prov.torch else []
        parts += [f"{prov.threads} threads"] if prov.threads else []
        return ", ".join(parts)


@dataclass(frozen=True)
class AttributionEntry(JsonRecord):
    """Where the time of one group's forwards went (:mod:`attnprof.attribution`): the network,
    setting, device and batch it was profiled at, the mode whose runtime ran it, and the
    :class:`~attnprof.attribution.records.GroupAttribution`, or the error that stopped it."""

    network: str
    setting: str
    device: str
    batch: int
    mode: str = "eager"
    attribution: GroupAttribution | None = None
    error: str | None = None
    traceback: str | None = None
    machine: str | None = None

    @property
    def ok(self) -> bool:
        return self.attribution is not None


@dataclass(frozen=True)
class ResultsDocument:
    """A whole ``results.json``: the suite as run, where it ran, and one :class:`Cell` each.

    A document merged from several machines (``attnprof merge``) lists them in ``machines``,
    and each timing names its machine's label; ``provenance`` is then the first machine's.
    Shards of one machine merge into a document like an unsharded run's, ``machines`` empty.
    """

    suite: Suite
    cells: tuple[Cell, ...]
    provenance: Provenance | None = None
    resumed_from: Provenance | None = None
    """The provenance of the earlier run a resumed run kept cells from."""
    machines: tuple[MachineRun, ...] = ()
    merged_from: tuple[str, ...] = ()
    """The files ``attnprof merge`` joined into this one (with their shards), in order."""
    attributions: tuple[AttributionEntry, ...] = ()
    """Where each profiled group's forward time went, operator by operator."""

    def attribution(self, network: str, setting: str, mode: str = "eager", *,
                    device: str = "cpu", batch: int = 1) -> AttributionEntry | None:
        """The attribution of a network at a setting in a mode (on a device, at a batch size),
        if one was profiled successfully."""
        where = (network, setting, mode, device, batch)
        return next((a for a in self.attributions if a.ok and
                     (a.network, a.setting, a.mode, a.device, a.batch) == where), None)

    def machine(self, label: str | None) -> Provenance | None:
        """The provenance of the machine a timing names (``None``: the document's own)."""
        if label is None:
            return self.provenance
        return next((m.provenance for m in self.machines if m.label == label), None)

    def to_dict(self) -> dict[str, Any]:
        data = encode(self, ("suite", "provenance", "cells", "attributions", "resumed_from",
                             "machines", "merged_from"))
        return {"schema": SCHEMA, **{key: data[key] for key in data
                                     if data[key] is not None and data[key] != []}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultsDocument:
        return decode(cls, data)
