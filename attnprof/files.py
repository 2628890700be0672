"""Files that are whole or absent: atomic writes, and output folders proven writable first.

Every file attnprof writes (``results.json`` after each finished cell, the reports) goes through
a temporary file in the same folder and :func:`os.replace`, so an interrupted run (Ctrl-C, a
crash, out of memory) leaves either the previous complete file or the new one, never half.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from attnprof.errors import AttnprofError

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
