"""The results file: every raw record of a suite run, written atomically after each cell.

``results.json`` is rewritten whole after every finished cell through a temporary file in the
same folder and :func:`os.replace`, so an interrupted run (Ctrl-C, a crash, out of memory)
leaves either the previous complete file or the new complete file, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from attnprof.errors import AttnprofError

SCHEMA = "attnprof-results/1"

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the process's umask, restored at once


def ensure_writable_dir(folder: Path) -> Path:
    """Create ``folder`` if needed and prove it can take a file, before any work is done."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".attnprof-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise AttnprofError(
            f"output folder {str(folder)!r} is not writable ({reason}); choose another with --out"
        ) from None
    return folder


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` to ``path`` so that readers only ever see a complete file."""
    path = Path(path)
    mode = "wb" if isinstance(text, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and check an attnprof results file; a clear error for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AttnprofError(f"results file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AttnprofError(f"cannot read results file {str(path)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AttnprofError(
            f"results file {str(path)!r} is not valid JSON (line {exc.lineno}: {exc.msg}); "
            "expected an attnprof results.json"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise AttnprofError(
            f"results file {str(path)!r} is not an attnprof results file "
            f"(schema {found!r}; expected {SCHEMA!r})"
        )
    cells = data.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(c, dict) and isinstance(c.get("id"), str) for c in cells
    ):
        raise AttnprofError(
            f"results file {str(path)!r} is corrupt: 'cells' must be a list of records with an id"
        )
    return data
