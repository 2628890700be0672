"""Results in, tables out: the computing half of the reports (no formatting here).

Caveat first: every Δ% is taken against the ``none`` baseline *of the same backbone and setting*;
a cell whose baseline failed or is missing gets no Δ, never a Δ against something else. Latency
Δ% comes from the paired per-round ratios the timer recorded (the baseline was timed in the same
rounds), with their 95% confidence interval; only when a record has no ratio is it derived from
the two medians, and then it has no interval.

:func:`check_results` validates a whole results document before anything is rendered or
written, so a corrupt file yields one clear :class:`~attnprof.errors.AttnprofError` and no half
report. :func:`cell_frame` is the one-row-per-cell table behind both the CSV and the Markdown.
Column names carry their unit as a suffix (``_count``, ``_MAC``, ``_FLOP``, ``_bytes``,
``_FLOP_per_byte``, ``_ms``, ``_pct``, ``_images_per_s``), never a bare "FLOPs".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from attnprof.errors import AttnprofError, choices
from attnprof.suite.config import BASELINE, CONVENTIONS, Claims
from attnprof.suite.store import SCHEMA

UNITS = ("MAC", "FLOP")
"""Units a convention's count may be in: multiply-accumulates or floating-point operations."""

DEFAULT_UNITS = {"paper": "MAC", "fvcore": "MAC", "thop": "MAC", "full": "FLOP"}

STATUSES = ("ok", "error")

UNIT_SUFFIXES = (
    "_count",
    "_pct",
    "_MAC",
    "_FLOP",
    "_bytes",
    "_FLOP_per_byte",
    "_ms",
    "_images_per_s",
)
"""Every numeric column of :func:`cell_frame` ends with one of these."""

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


# -- validation ---------------------------------------------------------------------------------


class _Checker:
    """Turns the first problem found into one line naming the file, the place and the value."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise AttnprofError(
            f"results file {self.source!r} is corrupt: {where}: {problem}; "
            "re-run the suite or restore the file"
        )

    def mapping(self, where: str, value: Any, optional: bool = False) -> dict:
        if value is None and optional:
            return {}
        if not isinstance(value, dict):
            self.fail(where, f"expected a record, found {_kind(value)}")
        return value

    def sequence(self, where: str, value: Any, optional: bool = False) -> list:
        if value is None and optional:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list, found {_kind(value)}")
        return value

    def string(self, where: str, value: Any, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            self.fail(where, f"expected a string, found {_kind(value)}")
        return value

    def number(self, where: str, value: Any, optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if not _is_number(value):
            self.fail(where, f"expected a number, found {_kind(value)}")
        return float(value)

    def count(self, where: str, value: Any, optional: bool = False) -> int | None:
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(where, f"expected a non-negative integer, found {_kind(value)}")
        return value

    def interval(self, where: str, value: Any) -> None:
        if value is None:
            return
        if not (isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))):
            self.fail(where, f"expected [low, high], found {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_results(results: Any, source: str = "<results>") -> None:
    """Validate a whole results document; raise :class:`AttnprofError` at the first problem.

    Checks what the reports read: the schema tag, the suite's name, claims and published rows,
    and every cell (identity, status; for an ``ok`` cell its profile with parameters and each
    convention's count and unit; every latency record). Unknown extra keys are ignored.
    """
    c = _Checker(source)
    if not isinstance(results, dict):
        c.fail("top level", f"expected a JSON object, found {_kind(results)}")
    if results.get("schema") != SCHEMA:
        c.fail("schema", f"found {results.get('schema')!r}, expected {SCHEMA!r}")
    suite = c.mapping("suite", results.get("suite"))
    c.string("suite.name", suite.get("name"))
    c.string("suite.description", suite.get("description"), optional=True)
    for i, name in enumerate(c.sequence("suite.backbones", suite.get("backbones"), True)):
        c.string(f"suite.backbones[{i}]", name)
    for i, variant in enumerate(c.sequence("suite.variants", suite.get("variants"), True)):
        c.string(
            f"suite.variants[{i}].name", c.mapping(f"suite.variants[{i}]", variant).get("name")
        )
    for i, setting in enumerate(c.sequence("suite.settings", suite.get("settings"), True)):
        c.string(
            f"suite.settings[{i}].label", c.mapping(f"suite.settings[{i}]", setting).get("label")
        )
    for i, name in enumerate(c.sequence("suite.conventions", suite.get("conventions"), True)):
        c.string(f"suite.conventions[{i}]", name)
    claims = c.mapping("suite.claims", suite.get("claims"), optional=True)
    for key in ("params_pct", "macs_pct", "latency_pct"):
        c.number(f"suite.claims.{key}", claims.get(key), optional=True)
    c.string("suite.claims.convention", claims.get("convention"), optional=True)
    for i, row in enumerate(c.sequence("suite.published", suite.get("published"), True)):
        where = f"suite.published[{i}]"
        row = c.mapping(where, row)
        c.string(f"{where}.backbone", row.get("backbone"))
        c.string(f"{where}.variant", row.get("variant"))
        c.number(f"{where}.params_m", row.get("params_m"))
        c.number(f"{where}.gmac", row.get("gmac"))
        c.string(f"{where}.source", row.get("source"), optional=True)
    provenance = c.mapping("provenance", results.get("provenance"), optional=True)
    c.mapping("provenance.gpu", provenance.get("gpu"), optional=True)

    cells = c.sequence("cells", results.get("cells"))
    seen: dict[tuple[str, str, str], str] = {}
    units: dict[str, tuple[str, str]] = {}
    for i, cell in enumerate(cells):
        cell = c.mapping(f"cells[{i}]", cell)
        cid = cell.get("id")
        where = f"cells[{i}] ({cid!r})" if isinstance(cid, str) else f"cells[{i}]"
        c.string(f"{where}.id", cid)
        key = tuple(
            c.string(f"{where}.{k}", cell.get(k)) for k in ("backbone", "setting", "variant")
        )
        if key in seen:
            c.fail(where, f"a second cell for {'/'.join(key)} (the first is {seen[key]!r})")
        seen[key] = cid
        status = cell.get("status")
        if status not in STATUSES:
            c.fail(f"{where}.status", f"found {status!r}, expected one of {choices(STATUSES)}")
        c.string(f"{where}.error", cell.get("error"), optional=True)
        if status == "error":
            continue
        if cell.get("profile") is None:
            c.fail(where, "status is 'ok' but the cell has no 'profile' record")
        _check_profile(c, f"{where}.profile", cell["profile"], units)
        for j, entry in enumerate(c.sequence(f"{where}.latency", cell.get("latency"), True)):
            _check_latency(c, f"{where}.latency[{j}]", entry)


def _check_profile(c: _Checker, where: str, profile: Any, units: dict) -> None:
    profile = c.mapping(where, profile)
    c.count(f"{where}.params", profile.get("params"))
    c.count(f"{where}.attention_params", profile.get("attention_params"), optional=True)
    flops = c.mapping(f"{where}.flops", profile.get("flops"), optional=True)
    for convention, record in flops.items():
        at = f"{where}.flops.{convention}"
        if not _NAME.match(convention):
            c.fail(at, "a convention name must be letters, digits, '_', '.' or '-'")
        record = c.mapping(at, record)
        value = c.number(f"{at}.value", record.get("value"))
        if value < 0:
            c.fail(f"{at}.value", f"a count cannot be negative ({value})")
        unit = record.get("unit")
        if unit not in UNITS:
            c.fail(f"{at}.unit", f"found {unit!r}, expected one of {choices(UNITS)}")
        first = units.setdefault(convention, (unit, at))
        if first[0] != unit:
            c.fail(f"{at}.unit", f"{unit!r} here but {first[0]!r} in {first[1]}")
        for key in ("attention", "bytes", "attention_bytes"):
            c.number(f"{at}.{key}", record.get(key), optional=True)
        for op, n in c.mapping(f"{at}.uncounted", record.get("uncounted"), True).items():
            c.number(f"{at}.uncounted[{op!r}]", n)


def _check_latency(c: _Checker, where: str, entry: Any) -> None:
    entry = c.mapping(where, entry)
    c.string(f"{where}.device", entry.get("device"))
    batch = c.count(f"{where}.batch", entry.get("batch"))
    if batch == 0:
        c.fail(f"{where}.batch", "a batch size must be at least 1")
    c.count(f"{where}.threads", entry.get("threads"), optional=True)
    if entry.get("error") is not None:  # a failed timing: the error is all there is
        c.string(f"{where}.error", entry.get("error"))
        return
    c.number(f"{where}.median_ms", entry.get("median_ms"))
    for key in ("iqr_ms", "images_per_s", "peak_mem_bytes"):
        c.number(f"{where}.{key}", entry.get(key), optional=True)
    c.interval(f"{where}.ci95_ms", entry.get("ci95_ms"))
    ratio = c.mapping(f"{where}.ratio", entry.get("ratio"), optional=True)
    if ratio:
        c.number(f"{where}.ratio.delta_pct", ratio.get("delta_pct"))
        c.interval(f"{where}.ratio.delta_ci95_pct", ratio.get("delta_ci95_pct"))


# -- the shape of a results document ------------------------------------------------------------


@dataclass(frozen=True)
class LatencyKey:
    """One timing condition: device and batch size (and threads, where a suite mixes them)."""

    device: str
    batch: int
    threads: int | None = None

    @property
    def column(self) -> str:
        """Column prefix in the CSV: ``cpu_b1`` (or ``cpu_t4_b1`` when threads differ)."""
        threads = "" if self.threads is None else f"_t{self.threads}"
        return f"{self.device}{threads}_b{self.batch}"

    @property
    def label(self) -> str:
        """Human label: ``cpu b1`` (or ``cpu 4 threads b1``)."""
        threads = "" if self.threads is None else f" {self.threads} threads"
        return f"{self.device}{threads} b{self.batch}"

    @property
    def phrase(self) -> str:
        """In a sentence: ``cpu at batch 1``."""
        threads = "" if self.threads is None else f" with {self.threads} threads"
        return f"{self.device}{threads} at batch {self.batch}"


def suite_of(results: dict) -> dict:
    return results.get("suite") or {}


def claims_of(results: dict) -> Claims:
    """The suite's claim thresholds, with the defaults for anything the file leaves out."""
    raw = {k: v for k, v in (suite_of(results).get("claims") or {}).items() if v is not None}
    d = Claims()
    return Claims(
        params_pct=float(raw.get("params_pct", d.params_pct)),
        macs_pct=float(raw.get("macs_pct", d.macs_pct)),
        latency_pct=float(raw.get("latency_pct", d.latency_pct)),
        convention=str(raw.get("convention", d.convention)),
    )


def ok_cells(results: dict) -> list[dict]:
    return [cell for cell in ordered_cells(results) if cell.get("status") == "ok"]


def _order(preferred: Iterable[str], found: Iterable[str]) -> dict[str, int]:
    names = list(dict.fromkeys([*preferred, *found]))
    return {name: i for i, name in enumerate(names)}


def ordered_cells(results: dict) -> list[dict]:
    """Cells in suite order: backbone, then setting, then variant (the baseline first)."""
    suite = suite_of(results)
    cells = list(results.get("cells") or [])
    backbones = _order(suite.get("backbones") or [], (c["backbone"] for c in cells))
    settings = _order(
        (s.get("label") for s in suite.get("settings") or []), (c["setting"] for c in cells)
    )
    variants = _order(
        [BASELINE, *(v.get("name") for v in suite.get("variants") or [])],
        (c["variant"] for c in cells),
    )
    return sorted(
        cells,
        key=lambda c: (backbones[c["backbone"]], settings[c["setting"]], variants[c["variant"]]),
    )


def groups(results: dict) -> list[tuple[str, str]]:
    """The (backbone, setting) pairs, in suite order: one results table each."""
    return list(dict.fromkeys((c["backbone"], c["setting"]) for c in ordered_cells(results)))


def conventions(results: dict) -> list[str]:
    """Conventions to show: the suite's, then any other a cell holds, in the usual order."""
    found = [
        name
        for cell in ok_cells(results)
        for name in ((cell.get("profile") or {}).get("flops") or {})
    ]
    declared = suite_of(results).get("conventions") or []
    names = list(dict.fromkeys([*declared, *found]))
    rank = {name: i for i, name in enumerate(CONVENTIONS)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), names.index(n)))


def convention_unit(results: dict, convention: str) -> str:
    """``MAC`` or ``FLOP``: what the cells recorded (validated to agree), else the default."""
    for cell in ok_cells(results):
        record = ((cell.get("profile") or {}).get("flops") or {}).get(convention)
        if record:
            return record["unit"]
    return DEFAULT_UNITS.get(convention, "MAC")


def latency_keys(results: dict) -> list[LatencyKey]:
    """Every timing condition found in the cells, ordered by device then batch size.

    Threads become part of the key only when one device and batch size were timed with more
    than one thread count in this file.
    """
    pairs: dict[tuple[str, int], set] = {}
    for cell in ok_cells(results):
        for e in cell.get("latency") or []:
            threads = pairs.setdefault((e["device"], e["batch"]), set())
            if e.get("error") is None and e.get("threads") is not None:
                threads.add(e["threads"])  # a failed timing may not record its threads
    keys = []
    for (device, batch), thread_set in pairs.items():
        if len(thread_set) > 1:
            keys += [LatencyKey(device, batch, t) for t in thread_set]
        else:
            keys.append(LatencyKey(device, batch))
    return sorted(keys, key=lambda k: (k.device != "cpu", k.device, k.batch, k.threads or 0))


def latency_entry(cell: dict, key: LatencyKey) -> dict | None:
    for entry in cell.get("latency") or []:
        if (entry["device"], entry["batch"]) == (key.device, key.batch) and (
            key.threads is None or entry.get("threads") in (key.threads, None)
        ):
            return entry
    return None


def failed_latency(results: dict) -> list[tuple[dict, dict]]:
    """(cell, entry) for every timing that failed in a cell whose counting succeeded."""
    return [
        (cell, entry)
        for cell in ok_cells(results)
        for entry in cell.get("latency") or []
        if entry.get("error") is not None
    ]


# -- the one-row-per-cell table -----------------------------------------------------------------


def delta_pct(value: float | None, base: float | None) -> float | None:
    """``(value - base) / base`` in percent; ``None`` when either is missing or base is 0."""
    if value is None or base is None or not _finite(value) or not _finite(base) or base == 0:
        return None
    return (value - base) / base * 100.0


def _finite(x: Any) -> bool:
    return _is_number(x) and math.isfinite(x)


def _num(x: Any) -> float | None:
    return float(x) if _finite(x) else None


def baseline_cell(results: dict, cell: dict) -> dict | None:
    """The ok ``none`` cell of the same backbone and setting, if there is one."""
    for other in ok_cells(results):
        if (other["backbone"], other["setting"], other["variant"]) == (
            cell["backbone"],
            cell["setting"],
            BASELINE,
        ):
            return other
    return None


def latency_delta(
    cell: dict, base: dict | None, key: LatencyKey
) -> tuple[float | None, tuple[float, float] | None]:
    """Δ latency % and its 95% CI: the recorded paired ratio, else from the medians (no CI)."""
    entry = latency_entry(cell, key)
    if entry is None or entry.get("error") is not None:
        return None, None
    if cell["variant"] == BASELINE:
        return 0.0, None
    ratio = entry.get("ratio")
    if ratio and _finite(ratio.get("delta_pct")):
        ci = ratio.get("delta_ci95_pct")
        interval = (float(ci[0]), float(ci[1])) if ci and all(map(_finite, ci)) else None
        return float(ratio["delta_pct"]), interval
    base_entry = latency_entry(base, key) if base else None
    if base_entry is None or base_entry.get("error") is not None:
        return None, None
    return delta_pct(_num(entry.get("median_ms")), _num(base_entry.get("median_ms"))), None


def cell_frame(results: dict) -> pd.DataFrame:
    """One row per cell, numbers only (no formatting), with the unit in every numeric column.

    Columns: ``id, backbone, setting, variant, attention, status``; ``params_count``,
    ``params_delta_pct``, ``attention_params_count``; per convention ``<conv>_<unit>``,
    ``<conv>_delta_pct``, ``<conv>_attention_<unit>`` (and for ``full`` the bytes moved, their Δ
    and the arithmetic intensity of the whole model and of the attention alone); per timing
    condition ``<device>_b<batch>_median_ms``, ``_iqr_ms``, ``_ci95_lo_ms``, ``_ci95_hi_ms``,
    ``_delta_pct``, ``_delta_ci95_lo_pct``, ``_delta_ci95_hi_pct``, ``_images_per_s``,
    ``_peak_mem_bytes``; finally ``error``. Failed cells carry only their identity and error.
    """
    names = conventions(results)
    units = {name: convention_unit(results, name) for name in names}
    keys = latency_keys(results)
    rows = []
    for cell in ordered_cells(results):
        row: dict[str, Any] = {
            "id": cell["id"],
            "backbone": cell["backbone"],
            "setting": cell["setting"],
            "variant": cell["variant"],
            "attention": cell.get("attention") or cell["variant"],
            "status": cell["status"],
        }
        ok = cell["status"] == "ok"
        base = baseline_cell(results, cell) if ok else None
        profile = (cell.get("profile") or {}) if ok else {}
        base_profile = (base or {}).get("profile") or {}
        row["params_count"] = _num(profile.get("params"))
        row["params_delta_pct"] = delta_pct(row["params_count"], _num(base_profile.get("params")))
        row["attention_params_count"] = _num(profile.get("attention_params"))
        flops = profile.get("flops") or {}
        base_flops = base_profile.get("flops") or {}
        for name in names:
            unit = units[name]
            record = flops.get(name) or {}
            base_record = base_flops.get(name) or {}
            value = _num(record.get("value"))
            row[f"{name}_{unit}"] = value
            row[f"{name}_delta_pct"] = delta_pct(value, _num(base_record.get("value")))
            row[f"{name}_attention_{unit}"] = _num(record.get("attention"))
            if name == "thop":  # thop's own parameter count skips directly-owned parameters
                row["thop_reported_params_count"] = _num(record.get("reported_params"))
            if name == "full":
                moved = _num(record.get("bytes"))
                attention_moved = _num(record.get("attention_bytes"))
                attention = _num(record.get("attention"))
                row["full_bytes"] = moved
                row["full_bytes_delta_pct"] = delta_pct(moved, _num(base_record.get("bytes")))
                row["full_attention_bytes"] = attention_moved
                row[f"full_{unit}_per_byte"] = _ratio(value, moved)
                row[f"full_attention_{unit}_per_byte"] = _ratio(attention, attention_moved)
        for key in keys:
            entry = latency_entry(cell, key) if ok else None
            if entry is not None and entry.get("error") is not None:
                entry = None
            entry = entry or {}
            ci = entry.get("ci95_ms") or (None, None)
            delta, delta_ci = latency_delta(cell, base, key) if ok else (None, None)
            p = key.column
            row[f"{p}_median_ms"] = _num(entry.get("median_ms"))
            row[f"{p}_iqr_ms"] = _num(entry.get("iqr_ms"))
            row[f"{p}_ci95_lo_ms"] = _num(ci[0])
            row[f"{p}_ci95_hi_ms"] = _num(ci[1])
            row[f"{p}_delta_pct"] = delta
            row[f"{p}_delta_ci95_lo_pct"] = delta_ci[0] if delta_ci else None
            row[f"{p}_delta_ci95_hi_pct"] = delta_ci[1] if delta_ci else None
            row[f"{p}_images_per_s"] = _num(entry.get("images_per_s"))
            row[f"{p}_peak_mem_bytes"] = _num(entry.get("peak_mem_bytes"))
        row["error"] = cell.get("error") or _latency_errors(cell) or None
        rows.append(row)
    columns = list(rows[0]) if rows else ["id", "backbone", "setting", "variant", "status"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in frame.columns:
        if column.endswith(UNIT_SUFFIXES):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _latency_errors(cell: dict) -> str:
    return "; ".join(
        f"latency {e['device']} b{e['batch']}: {e['error']}"
        for e in cell.get("latency") or []
        if e.get("error") is not None
    )


def group_frame(frame: pd.DataFrame, backbone: str, setting: str) -> pd.DataFrame:
    """The rows of one backbone and setting, in suite order."""
    return frame[(frame["backbone"] == backbone) & (frame["setting"] == setting)]
