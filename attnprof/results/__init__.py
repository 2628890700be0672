"""The results document: the one contract between ``run``, ``report`` and ``compare``.

Caveat first: ``results.json`` outlives the attnprof that wrote it, so every reader goes
through :func:`parse` (or :func:`load` for a path): migrate to the current version
(:mod:`.migrate`), validate against the JSON Schema and the cross-record rules
(:mod:`.validate`), then build the typed records (:mod:`.document`, :mod:`.counts`). Writers
build the records and call :func:`write`; nobody assembles the JSON by hand.

    >>> from attnprof import results
    >>> doc = results.load("results/imagenet/results.json")            # doctest: +SKIP
    >>> cell = doc.cells[1]; cell.profile.counts["paper"].value        # doctest: +SKIP
    4129959344

The schema is ``results.schema.json`` in this package (:func:`json_schema`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attnprof.errors import AttnprofError
from attnprof.files import write_atomic
from attnprof.results.counts import UNITS, ConventionCount, ProfileRecord
from attnprof.results.document import (
    SCHEMA,
    SCHEMA_VERSION,
    AttributionEntry,
    Cell,
    Failure,
    LatencyEntry,
    PairedRatio,
    Provenance,
    ResultsDocument,
)
from attnprof.results.migrate import migrate, version_of
from attnprof.results.validate import check, json_schema


def parse(data: Any, source: str = "<results>") -> ResultsDocument:
    """A parsed JSON value as a validated, current :class:`ResultsDocument`."""
    current = migrate(data, source)
    check(current, source)
    try:
        return ResultsDocument.from_dict(current)
    except (AttnprofError, KeyError, TypeError, ValueError) as exc:  # beyond what the schema says
        raise AttnprofError(
            f"results file {source!r} is corrupt: {exc}; re-run the suite or restore the file"
        ) from None


def read_json(path: str | Path) -> Any:
    """The JSON value of ``path``, or one clear error naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AttnprofError(f"results file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise AttnprofError(f"results file {str(path)!r} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AttnprofError(f"cannot read results file {str(path)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AttnprofError(
            f"results file {str(path)!r} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); expected an attnprof results.json"
        ) from None


def load(path: str | Path) -> ResultsDocument:
    """Read, migrate and validate the results file at ``path``."""
    return parse(read_json(path), str(path))


def dumps(document: ResultsDocument) -> str:
    """The text of ``results.json`` for ``document``."""
    return json.dumps(document.to_dict(), indent=1) + "\n"


def write(path: str | Path, document: ResultsDocument) -> None:
    """Write ``document`` to ``path`` atomically (readers see the old file or the new one)."""
    write_atomic(Path(path), dumps(document))


__all__ = [
    "AttributionEntry",
    "SCHEMA",
    "SCHEMA_VERSION",
    "UNITS",
    "Cell",
    "ConventionCount",
    "Failure",
    "LatencyEntry",
    "PairedRatio",
    "ProfileRecord",
    "Provenance",
    "ResultsDocument",
    "dumps",
    "json_schema",
    "load",
    "migrate",
    "parse",
    "read_json",
    "version_of",
    "write",
]
