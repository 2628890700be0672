"""Old results files in, current ones out: one step per schema version, applied in order.

Caveat first: a migration only renames and reshapes; it never invents a measurement. A field
an old version did not record stays absent (readers show it as unknown), so a migrated file
says exactly what its run measured.

- ``attnprof-results/1`` -> ``2``: each cell's ``profile.flops`` (which held MAC counts as
  often as FLOP counts) is renamed ``profile.counts``.
- ``2`` -> ``3``: version 2 timed every comparison in one process without warm-up rounds, so
  its suite's latency table gets ``processes = 1`` and ``max_warmup_rounds = 0``, and each
  paired ratio ``ci_over = "rounds"``, ``processes = 1`` and its rounds: facts of how it was
  measured, which version 3 records explicitly.
- ``3`` -> ``4``: published rows held ``params_m`` and ``gmac`` as numbers, compared to 2 and
  3 decimals under the ``paper`` convention; version 4 keeps each figure as printed, with its
  convention, so they become ``params = "25.56 M"``, ``cost = "4.122 GMAC"``,
  ``convention = "paper"``: the same digits and the same comparison.

- ``4`` -> ``5``: version 5 times passes (``inference``, ``train``) and modes (``eager``,
  ``compile``) side by side, so every timing says which: version 4 timed forwards only, so
  each entry gets ``pass_name = "inference"`` and ``mode`` from its recorded ``compile``
  flag, and the suite's latency table ``passes = ["inference"]`` and ``modes`` from its
  ``compile`` setting.

- ``5`` -> ``6``: version 6 can hold the timings of several machines (``attnprof merge``),
  each naming its machine; a version-5 file is one machine's, which version 6 writes the same
  way, so nothing changes but the tag.

- ``6`` -> ``7``: version 7 adds processes until each interval is narrow (sequential) and
  fixes the allocator's thresholds in every worker; a version-6 file took a fixed number of
  processes with the allocator as the system left it and profiled no group, so its suite's
  latency table gets ``allocator = "system"`` and ``attribution = false`` (its ``processes``
  stays), and each paired ratio
  ``design = "fixed"`` (or ``"rounds"`` for one process) and ``stopped = "fixed"``.

A file of a newer version than this attnprof knows is refused with a message saying so: a
reader must not guess at fields it has never seen renamed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from attnprof.errors import AttnprofError
from attnprof.results.document import SCHEMA, SCHEMA_VERSION

PREFIX = "attnprof-results/"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    for cell in data.get("cells") or ():
        profile = cell.get("profile") if isinstance(cell, dict) else None
        if isinstance(profile, dict) and "flops" in profile and "counts" not in profile:
            profile["counts"] = profile.pop("flops")
    return data


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    suite = data.get("suite")
    latency = suite.get("latency") if isinstance(suite, dict) else None
    if isinstance(latency, dict):
        latency.setdefault("processes", 1)
        latency.setdefault("max_warmup_rounds", 0)  # it ran no warm-up rounds
    for cell in data.get("cells") or ():
        for entry in (cell.get("latency") or ()) if isinstance(cell, dict) else ():
            ratio = entry.get("ratio") if isinstance(entry, dict) else None
            if isinstance(ratio, dict):
                ratio.setdefault("ci_over", "rounds")
                ratio.setdefault("processes", 1)
                values = ratio.get("values")
                if isinstance(values, list) and values:
                    ratio.setdefault("rounds_per_process", [len(values)])
    return data


def _v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    suite = data.get("suite")
    for row in (suite.get("published") or ()) if isinstance(suite, dict) else ():
        if not isinstance(row, dict):
            continue
        if isinstance(row.get("params_m"), (int, float)):
            row["params"] = f"{row.pop('params_m'):.2f} M"
        if isinstance(row.get("gmac"), (int, float)):
            row["cost"] = f"{row.pop('gmac'):.3f} GMAC"
            row.setdefault("convention", "paper")
    return data


def _v4_to_v5(data: dict[str, Any]) -> dict[str, Any]:
    suite = data.get("suite")
    latency = suite.get("latency") if isinstance(suite, dict) else None
    if isinstance(latency, dict):
        compiled = bool(latency.pop("compile", False))
        latency.setdefault("passes", ["inference"])
        latency.setdefault("modes", ["compile" if compiled else "eager"])
    for cell in data.get("cells") or ():
        for entry in (cell.get("latency") or ()) if isinstance(cell, dict) else ():
            if isinstance(entry, dict):
                entry.setdefault("pass_name", "inference")
                entry.setdefault("mode", "compile" if entry.get("compile") else "eager")
    return data


def _v5_to_v6(data: dict[str, Any]) -> dict[str, Any]:
    return data  # one machine's file: written the same way in version 6


def _v6_to_v7(data: dict[str, Any]) -> dict[str, Any]:
    suite = data.get("suite")
    latency = suite.get("latency") if isinstance(suite, dict) else None
    if isinstance(latency, dict):
        latency.setdefault("allocator", "system")
        latency.setdefault("attribution", False)
    for cell in data.get("cells") or ():
        for entry in (cell.get("latency") or ()) if isinstance(cell, dict) else ():
            ratio = entry.get("ratio") if isinstance(entry, dict) else None
            if isinstance(ratio, dict):
                several = ratio.get("ci_over") == "processes"
                ratio.setdefault("design", "fixed" if several else "rounds")
                ratio.setdefault("stopped", "fixed")
    return data


STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7,
}
"""``STEPS[n]`` turns a version-``n`` document into version ``n + 1``."""


def version_of(data: Any) -> int | None:
    """The schema version a document declares, or ``None`` when it is no attnprof results."""
    tag = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(tag, str) or not tag.startswith(PREFIX):
        return None
    number = tag.removeprefix(PREFIX)
    return int(number) if number.isdigit() else None


def migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` brought to the current version (a copy when anything changes)."""
    version = version_of(data)
    if version is None or version < min(STEPS) or version > SCHEMA_VERSION:
        known = ", ".join(repr(f"{PREFIX}{v}") for v in range(min(STEPS), SCHEMA_VERSION + 1))
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        newer = version is not None and version > SCHEMA_VERSION
        hint = "; it was written by a newer attnprof: upgrade to read it" if newer else ""
        raise AttnprofError(
            f"results file {source!r} is not an attnprof results file this version reads "
            f"(schema {found!r}; expected one of {known}){hint}"
        )
    if version == SCHEMA_VERSION:
        return data
    data = copy.deepcopy(data)
    for step in range(version, SCHEMA_VERSION):
        data = STEPS[step](data)
    data["schema"] = SCHEMA
    return data
