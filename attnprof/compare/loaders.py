"""Read the two kinds of files ``attnprof compare`` accepts into one typed form.

- **attnprof results** (``results.json``, written by ``attnprof run``), read through
  :func:`attnprof.results.parse` (migrated, validated, typed): cells with a profile (parameter
  and MAC/FLOP counts per convention) and latency entries whose ratio values are per-round
  ratios to the plain backbone measured in the same round.
- **pytest-benchmark JSON** (``--benchmark-json`` always includes the raw per-round timings in
  ``stats.data``; ``--benchmark-save`` includes them only with ``--benchmark-save-data``). The
  samples judged are ratios too: to the reference timed in the same round when the benchmark
  recorded it (``extra_info["reference_s"]``, as attnprof's own benchmarks do), otherwise to the
  median of the reference benchmark named in ``extra_info["reference"]``; only a benchmark with
  no reference at all is judged on absolute times.

The kind is detected from the content, never from the file name. Anything else is refused with
one line naming the file and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attnprof import results
from attnprof.compare.stats import median
from attnprof.errors import AttnprofError
from attnprof.machine.identity import machine_differences
from attnprof.results.validate import first_problem

ATTNPROF_RESULTS = "attnprof results"
PYTEST_BENCHMARK = "pytest-benchmark"

ROLE_CELL = "cell"  # judged
ROLE_BASELINE = "baseline"  # the plain backbone the other cells are ratios to: shown, not judged
ROLE_REFERENCE = "reference"  # a pytest-benchmark reference block: shown, not judged

ABSOLUTE = "ms"
ROUND = "round"
PROCESS = "process"
"""The basis of samples that are absolute times (milliseconds), not ratios."""

_EXPECTED = (
    f"expected attnprof results (a top-level 'schema': '{results.SCHEMA}' or an earlier "
    "version) or pytest-benchmark JSON (a top-level 'benchmarks' list)"
)


@dataclass(frozen=True)
class Machine:
    """Where a result set was measured, as far as the file says.

    Three descriptions, each canonical JSON (so that a machine is hashable) under the names the
    file uses, so a difference says where to look:

    - ``details_json``: the detailed description (:func:`attnprof.machine.describe_machine`)
      where the file has one: results' ``provenance.machine``, or ``machine_info
      ["attnprof_machine"]``, which attnprof's pytest plugin writes;
    - ``summary_json``: what the file says of the same things in less detail, compared only
      when a side has no detailed description (older results, other tools' benchmark files):
      results' ``provenance`` CPU, CPU count, GPU and torch version; pytest-benchmark's
      ``machine_info`` (py-cpuinfo's record of the CPU, without its clock readings; the
      architecture, torch and GPU where attnprof's plugin wrote them);
    - ``software_json``: what no description covers, always compared: the Python version and
      the operating system.

    Fields a file leaves unknown (``None``) are not compared: not knowing is not a difference.
    """

    cpu: str | None = None
    gpu: str | None = None
    torch: str | None = None
    python: str | None = None
    threads: int | None = None
    details_json: str | None = None
    summary_json: str | None = None
    software_json: str | None = None

    @property
    def details(self) -> dict[str, Any] | None:
        return json.loads(self.details_json) if self.details_json else None

    def describe(self) -> str:
        parts = [self.cpu or "unknown CPU"]
        if self.gpu:
            parts.append(self.gpu)
        if self.torch:
            parts.append(f"torch {self.torch}")
        if self.threads:
            parts.append(f"{self.threads} thread{'s' if self.threads > 1 else ''}")
        return ", ".join(parts)

    def differences(self, other: Machine, names: tuple[str, str] = ("BASE", "NEW")) -> list[str]:
        """Every difference between this machine and ``other``, one line each
        (:func:`attnprof.machine.machine_differences`): the detailed descriptions when both
        have one, else the summaries; then the software."""
        if self.details_json and other.details_json:
            lines = machine_differences(self.details, other.details, names)
        else:
            lines = machine_differences(*_known(self.summary_json, other.summary_json), names)
        return lines + machine_differences(*_known(self.software_json, other.software_json),
                                           names)


def _known(a_json: str | None, b_json: str | None) -> tuple[dict, dict]:
    """The two descriptions with every key either leaves unknown dropped from both."""
    a = json.loads(a_json) if a_json else {}
    b = json.loads(b_json) if b_json else {}

    def keep(x: dict, y: dict) -> tuple[dict, dict]:
        left, right = {}, {}
        for key in x.keys() & y.keys():
            u, v = x[key], y[key]
            if u is None or v is None:
                continue
            if isinstance(u, dict) and isinstance(v, dict):
                left[key], right[key] = keep(u, v)
            else:
                left[key], right[key] = u, v
        return left, right

    return keep(a, b)


@dataclass(frozen=True)
class Count:
    """One exact count: ``params``/``attention_params``, or the MACs/FLOPs of one convention."""

    metric: str  # "params" or "macs"
    name: str  # "params", "attention_params", or a convention: "paper", "fvcore", ...
    value: int
    unit: str  # "params", "MAC" or "FLOP"


@dataclass(frozen=True)
class Timing:
    """The latency samples of one cell on one (device, batch), in the form to be judged."""

    key: str
    """``"cpu/b1"`` for attnprof results; pytest-benchmark: from extra_info, else ``"time"``."""
    values: tuple[float, ...]
    """Per-round samples, larger is slower: ratios, or milliseconds when ``basis`` is ``ms``."""
    basis: str
    """``ms`` for absolute times, else what the ratios are to (``"ratio to none"``)."""
    median_ms: float | None = None
    """The absolute median time, for context only (machine noise moves it)."""
    threads: int | None = None
    note: str = ""
    """Why ``values`` is empty, when it is."""
    unit: str = ROUND
    """What one value is: a round (``"round"``), or one fresh process's median (``"process"``,
    the unit of replication of attnprof's multi-process timings)."""
    rounds: tuple[float, ...] = ()
    """The per-round values behind process medians (empty when ``unit`` is already rounds)."""

    @property
    def is_ratio(self) -> bool:
        return self.basis != ABSOLUTE

    def per_round(self) -> Timing:
        """The same timing with its rounds as the unit (to judge it beside a one-process file)."""
        if self.unit == ROUND:
            return self
        return replace(self, values=self.rounds, unit=ROUND, rounds=())


@dataclass(frozen=True)
class Cell:
    """One measured thing: a suite cell, or one pytest-benchmark benchmark."""

    id: str
    status: str = "ok"
    error: str | None = None
    role: str = ROLE_CELL
    counts: tuple[Count, ...] = ()
    timings: tuple[Timing, ...] = ()


@dataclass(frozen=True)
class ResultSet:
    """Everything ``compare`` needs from one file."""

    path: str
    kind: str  # ATTNPROF_RESULTS or PYTEST_BENCHMARK
    label: str
    machine: Machine
    commit: str | None
    utc: str | None
    cells: tuple[Cell, ...]
    has_raw_samples: bool
    """pytest-benchmark: whether the file carries ``stats.data``. Always true for attnprof."""
    notes: tuple[str, ...] = field(default=())

    def by_id(self) -> dict[str, Cell]:
        return {cell.id: cell for cell in self.cells}


def load_results(path: str | Path) -> ResultSet:
    """Read ``path`` as attnprof results or pytest-benchmark JSON, whichever it is."""
    name, file = str(path), Path(path)
    if not file.exists():
        raise AttnprofError(f"{name}: no such file; {_EXPECTED}")
    if not file.is_file():
        raise AttnprofError(f"{name}: not a regular file; {_EXPECTED}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AttnprofError(f"{name}: cannot be read ({exc}); {_EXPECTED}") from None
    except json.JSONDecodeError as exc:
        raise AttnprofError(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"{_EXPECTED}"
        ) from None
    return parse_results(data, name)


def load_pooled(paths: str | Path | Sequence[str | Path]) -> ResultSet:
    """Read one file, or several runs of the same code whose rounds are pooled.

    ``paths`` is a path, a comma-separated string of paths, or a sequence of paths. Pooling
    several short runs, measured alternately with the other side's runs, is the strongest
    defence against run-level drift: a run whose conditions shifted its ratios then moves the
    pooled median only partly, and its shift shows up as spread on its own side.
    """
    if isinstance(paths, (str, Path)):
        paths = [p for p in str(paths).split(",") if p.strip()]
    paths = [str(p).strip() for p in paths]
    if not paths:
        raise AttnprofError(f"no result file given; {_EXPECTED}")
    sets = [load_results(p) for p in paths]
    return sets[0] if len(sets) == 1 else merge_results(sets)


def merge_results(sets: Sequence[ResultSet]) -> ResultSet:
    """Pool result sets of the same code: samples are concatenated, counts must agree."""
    first = sets[0]
    label = ",".join(s.path for s in sets)
    for other in sets[1:]:
        if other.kind != first.kind:
            raise AttnprofError(
                f"cannot pool {first.path} ({first.kind}) with {other.path} ({other.kind}): "
                "pool files of the same kind"
            )
        if first.commit and other.commit and first.commit != other.commit:
            raise AttnprofError(
                f"cannot pool {first.path} (commit {first.commit[:12]}) with {other.path} "
                f"(commit {other.commit[:12]}): pooled runs must measure the same code"
            )
    cells: dict[str, list[Cell]] = {}  # by id, in the order first seen
    for result_set in sets:
        for cell in result_set.cells:
            cells.setdefault(cell.id, []).append(cell)
    merged = tuple(_merge_cell(same, sets) for same in cells.values())
    notes = []
    for other in sets[1:]:
        differs = first.machine.differences(other.machine, (first.path, other.path))
        if differs:
            notes.append(f"the pooled files {first.path} and {other.path} come from different "
                         f"machines: {'; '.join(differs)}")
    return ResultSet(
        path=label,
        kind=first.kind,
        label=f"{first.label}, {len(sets)} runs pooled",
        machine=first.machine,
        commit=next((s.commit for s in sets if s.commit), None),
        utc=first.utc,
        cells=merged,
        has_raw_samples=all(s.has_raw_samples for s in sets),
        notes=tuple(notes),
    )


def _merge_cell(cells: list[Cell], sets: Sequence[ResultSet]) -> Cell:
    first = cells[0]
    failed = [c for c in cells if c.status != "ok"]
    if failed:
        return failed[0]
    counts = {(c.metric, c.name): c for c in first.counts}
    for cell in cells[1:]:
        for c in cell.counts:
            seen = counts.setdefault((c.metric, c.name), c)
            if seen.value != c.value:
                raise AttnprofError(
                    f"cannot pool: cell {first.id!r} counts {c.name} = {seen.value:,} in one file "
                    f"and {c.value:,} in another; pooled runs must measure the same code "
                    f"({', '.join(s.path for s in sets)})"
                )
    by_key: dict[str, list[Timing]] = {}
    for cell in cells:
        for t in cell.timings:
            by_key.setdefault(t.key, []).append(t)
    timings = {}
    for key, parts in by_key.items():
        bases = {t.basis for t in parts}
        if len(bases) > 1:
            raise AttnprofError(
                f"cannot pool: cell {first.id!r} on {key} is measured as "
                f"{' and as '.join(sorted(bases))} in different files"
            )
        medians = [t.median_ms for t in parts if t.median_ms is not None]
        if len({t.unit for t in parts}) > 1:  # pool what all of them have: rounds
            parts = [t.per_round() for t in parts]
        timings[key] = Timing(
            key, tuple(v for t in parts for v in t.values), parts[0].basis,
            median(medians) if medians else None, parts[0].threads,
            next((t.note for t in parts if t.note), ""), parts[0].unit,
            tuple(v for t in parts for v in t.rounds),
        )
    return Cell(first.id, "ok", None, first.role, tuple(counts.values()), tuple(timings.values()))


def parse_results(data: Any, name: str = "<data>") -> ResultSet:
    """Detect the kind of an already-parsed JSON document and read it."""
    if isinstance(data, dict) and str(data.get("schema", "")).startswith("attnprof-results/"):
        return _read_attnprof(results.parse(data, name), name)
    if isinstance(data, dict) and "benchmarks" in data:
        return _read_pytest_benchmark(data, name)
    found = type(data).__name__ if not isinstance(data, dict) else (
        f"an object with keys {sorted(data)[:6]}" if data else "an empty object"
    )
    raise AttnprofError(f"{name}: unknown format ({found}); {_EXPECTED}")


_BENCHMARK_SCHEMA = {
    "type": "object",
    "required": ["benchmarks"],
    "properties": {"benchmarks": {"type": "array", "items": {
        "type": "object",
        "required": ["name", "stats"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "stats": {"type": "object", "required": ["median"], "properties": {
                "median": {"type": "number"},
                "data": {"type": ["array", "null"], "items": {"type": "number"}},
            }},
            "extra_info": {"type": ["object", "null"], "properties": {
                "id": {"type": "string", "minLength": 1},
                **{key: {"type": "integer"} for key in ("params", "attention_params", "macs")},
                "reference_s": {
                    "type": "array", "items": {"type": "number", "exclusiveMinimum": 0}
                },
            }},
        },
    }}},
}
"""What attnprof reads of pytest-benchmark's JSON; everything else in the file is ignored."""


def _fail(name: str, where: str, problem: str) -> AttnprofError:
    return AttnprofError(f"{name}: {where}: {problem} (pytest-benchmark JSON)")


# --- attnprof results --------------------------------------------------------------------------


def _read_attnprof(doc: results.ResultsDocument, name: str) -> ResultSet:
    """A validated results document in the form ``compare`` judges."""
    prov = doc.provenance or results.Provenance()
    gpu = prov.gpu.get("name") if isinstance(prov.gpu, dict) else prov.gpu
    machine = Machine(
        cpu=prov.cpu or None, gpu=gpu or None, torch=prov.torch or None,
        python=prov.python or None, threads=prov.threads,
        details_json=_canonical(prov.machine),
        summary_json=_canonical({"provenance": {
            "cpu": prov.cpu or None, "cpu_count": prov.cpu_count,
            "gpu": gpu or "none",  # results record no GPU as null: there was none
            "torch": prov.torch or None}}),
        software_json=_canonical({"provenance": {"python": prov.python or None,
                                                 "platform": prov.platform or None}}),
    )
    return ResultSet(
        path=name,
        kind=ATTNPROF_RESULTS,
        label=f"suite {doc.suite.name!r}",
        machine=machine,
        commit=prov.git_commit or None,
        utc=prov.utc or None,
        cells=tuple(_attnprof_cell(cell) for cell in doc.cells),
        has_raw_samples=True,
    )


def _attnprof_cell(cell: results.Cell) -> Cell:
    if not cell.ok:
        return Cell(cell.id, "error", cell.failure.error)
    profile = cell.profile
    counts = [Count("params", "params", profile.params, "params")]
    if profile.attention_params is not None:
        counts.append(Count("params", "attention_params", profile.attention_params, "params"))
    counts += [Count("macs", name, c.value, c.unit) for name, c in profile.counts.items()]
    timings = tuple(_attnprof_timing(entry) for entry in cell.latency if entry.ok)
    role = ROLE_BASELINE if cell.is_baseline else ROLE_CELL
    return Cell(cell.id, "ok", None, role, tuple(counts), timings)


def _attnprof_timing(entry: results.LatencyEntry) -> Timing:
    key = f"{entry.device}/b{entry.batch}"
    ratio = entry.ratio
    if ratio is not None and ratio.ci_over == "processes" and ratio.process_medians:
        return Timing(key, ratio.process_medians, f"ratio to {ratio.baseline}", entry.median_ms,
                      entry.threads, unit=PROCESS, rounds=ratio.values)
    if ratio is not None and ratio.values:
        return Timing(key, ratio.values, f"ratio to {ratio.baseline}", entry.median_ms,
                      entry.threads)
    if entry.times_ms:
        return Timing(key, entry.times_ms, ABSOLUTE, entry.median_ms, entry.threads)
    return Timing(key, (), ABSOLUTE, entry.median_ms, entry.threads,
                  note="no per-round samples (times_ms / ratio values) recorded")


# --- pytest-benchmark --------------------------------------------------------------------------


def _read_pytest_benchmark(data: dict, name: str) -> ResultSet:
    from jsonschema import Draft202012Validator

    problem = first_problem(Draft202012Validator(_BENCHMARK_SCHEMA), data)
    if problem is not None:
        raise _fail(name, *problem)
    machine_info = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    commit_info = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    entries = []
    for index, raw in enumerate(data["benchmarks"]):
        where = f"benchmarks[{index}] ({raw['name']})"
        extra = raw.get("extra_info") or {}
        entries.append((where, raw, raw["name"], raw["stats"]["median"],
                        raw["stats"].get("data"), extra))

    # Identify benchmarks by extra_info["id"] when given (stable across renames), else fullname.
    ids: dict[str, int] = {}
    aliases: dict[str, int] = {}
    for index, (where, raw, bench_name, _, _, extra) in enumerate(entries):
        cell_id = extra.get("id") or raw.get("fullname") or bench_name
        if cell_id in ids:
            raise _fail(name, where, f"a second benchmark with id {cell_id!r}")
        ids[cell_id] = index
        for alias in (cell_id, raw.get("fullname"), bench_name):
            if isinstance(alias, str):
                aliases.setdefault(alias, index)

    cells = []
    for cell_id, index in ids.items():
        extra = entries[index][5]
        timing = _benchmark_timing(name, entries, aliases, index)
        role = ROLE_REFERENCE if extra.get("role") == ROLE_REFERENCE else ROLE_CELL
        cells.append(Cell(cell_id, "ok", None, role, _benchmark_counts(extra), (timing,)))

    cpu_info = machine_info.get("cpu") if isinstance(machine_info.get("cpu"), dict) else {}
    threads = machine_info.get("torch_threads")
    machine = Machine(
        cpu=_str_or_none(cpu_info.get("brand_raw")) or _str_or_none(machine_info.get("processor")),
        gpu=_str_or_none(machine_info.get("gpu")),
        torch=_str_or_none(machine_info.get("torch")),
        python=_str_or_none(machine_info.get("python_version")),
        threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else None,
        details_json=_canonical(machine_info.get("attnprof_machine")),
        summary_json=_canonical({"machine_info": {
            **_picked(machine_info, _BENCHMARK_SUMMARY),
            # attnprof's plugin writes null for no GPU; other files leave the key out (unknown)
            **({"gpu": machine_info["gpu"] or "none"} if "gpu" in machine_info else {}),
            "cpu": _picked(cpu_info, _CPUINFO_KEYS)}}),
        software_json=_canonical({"machine_info": _picked(machine_info, _BENCHMARK_SOFTWARE)}),
    )
    version = data.get("version")
    return ResultSet(
        path=name,
        kind=PYTEST_BENCHMARK,
        label=f"pytest-benchmark {version}" if isinstance(version, str) else "pytest-benchmark",
        machine=machine,
        commit=_str_or_none(commit_info.get("id")),
        utc=_str_or_none(data.get("datetime")),
        cells=tuple(cells),
        has_raw_samples=any(entry[4] for entry in entries) or not entries,
    )


def _benchmark_counts(extra: dict) -> tuple[Count, ...]:
    counts = [Count("params", key, int(extra[key]), "params")
              for key in ("params", "attention_params") if extra.get(key) is not None]
    per_convention = extra.get("counts")
    if isinstance(per_convention, dict) and per_convention:
        # attnprof's plugin: {"paper": {"value": ..., "unit": "MAC"}, "full": {...}}
        counts += [Count("macs", str(name), int(c["value"]), str(c.get("unit") or "MAC"))
                   for name, c in per_convention.items()
                   if isinstance(c, dict) and isinstance(c.get("value"), (int, float))]
    elif extra.get("macs") is not None:
        convention = extra.get("macs_convention") or "macs"
        counts.append(Count("macs", str(convention), int(extra["macs"]), "MAC"))
    elif extra.get("convention") is not None and isinstance(extra.get("value"), (int, float)):
        # A counting benchmark: {"convention": "paper", "value": ..., "unit": "MAC"}.
        unit = extra.get("unit") if isinstance(extra.get("unit"), str) else "MAC"
        counts.append(Count("macs", str(extra["convention"]), int(extra["value"]), unit))
    return tuple(counts)


def _benchmark_timing(name: str, entries: list, aliases: dict[str, int], index: int) -> Timing:
    where, _, _, median_s, data_s, extra = entries[index]
    device, batch = extra.get("device"), extra.get("batch")
    key = f"{device}/b{batch}" if device is not None and batch is not None else "time"
    median_ms = median_s * 1e3
    threads = extra.get("threads") if isinstance(extra.get("threads"), int) else None
    if not data_s:
        return Timing(key, (), ABSOLUTE, median_ms, threads,
                      note="no raw timings (stats.data): rerun with --benchmark-save-data")
    reference = extra.get("reference")
    ref_s = extra.get("reference_s")
    if reference is not None and ref_s is not None:
        if len(ref_s) != len(data_s):
            raise _fail(name, f"{where}.extra_info.reference_s",
                        f"expected one reference time per round ({len(data_s)}), "
                        f"found {len(ref_s)} values")
        values = tuple(t / r for t, r in zip(data_s, ref_s, strict=True))
        return Timing(key, values, f"ratio to {reference} (same round)", median_ms, threads)
    if reference is not None:
        ref_index = aliases.get(str(reference))
        if ref_index is None:
            return Timing(key, tuple(t * 1e3 for t in data_s), ABSOLUTE, median_ms, threads,
                          note=f"reference {reference!r} is not in the file: absolute times")
        _, _, _, ref_median_s, ref_data, _ = entries[ref_index]
        ref_median = median(ref_data) if ref_data else ref_median_s
        if ref_median <= 0:
            raise _fail(name, f"{where}: reference {reference!r} median",
                        f"expected a positive time, found {ref_median}")
        values = tuple(t / ref_median for t in data_s)
        return Timing(key, values, f"ratio to {reference} (median)", median_ms, threads)
    return Timing(key, tuple(t * 1e3 for t in data_s), ABSOLUTE, median_ms, threads)


_CPUINFO_KEYS = (
    "brand_raw", "vendor_id_raw", "arch", "bits", "count", "family", "model", "stepping", "flags",
    "l1_data_cache_size", "l1_instruction_cache_size", "l2_cache_size", "l3_cache_size",
)
"""What pytest-benchmark's ``machine_info.cpu`` (py-cpuinfo's record) says of the CPU that does
not change while it runs; the clock readings (``hz_actual``...) do, and are not compared."""
_BENCHMARK_SUMMARY = ("machine", "processor", "torch")
_BENCHMARK_SOFTWARE = ("python_implementation", "python_version", "system", "release")


def _picked(data: dict, keys: Sequence[str]) -> dict[str, Any]:
    return {key: data[key] for key in keys if key in data}


def _canonical(details: Any) -> str | None:
    return json.dumps(details, sort_keys=True) if isinstance(details, dict) and details else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
