"""Import a user's object named ``package.module:attribute``, looking in the current folder too.

Caveat first: a module imported here stays in ``sys.modules``, so editing its file and calling
again in the same process sees the old code (a new ``attnprof`` command sees the new one).

The ``attnprof`` console script does not put the current folder on ``sys.path`` (``python -m
attnprof`` and an interactive session do), so ``--attention mymods.x:Cls`` run from the folder
holding ``mymods`` would fail. The folder is put first on ``sys.path`` for one import attempt and
taken off again, so attnprof leaves the process's path as it found it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Any

from attnprof.blame import cut
from attnprof.errors import AttnprofError


def is_import_path(name: Any) -> bool:
    """Whether ``name`` has the ``package.module:attribute`` form (not whether it imports)."""
    return isinstance(name, str) and ":" in name


def import_object(path: str, what: str) -> Any:
    """The object ``path`` names; ``what`` says what it is for, in messages ("attention")."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise AttnprofError(f"import path {path!r} must look like 'package.module:Name'")
    try:
        module = _import_module(module_name)
    except ImportError as exc:
        raise AttnprofError(
            f"cannot import {module_name!r} for {what} {path!r}: {cut(str(exc))}"
        ) from exc
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise AttnprofError(f"module {module_name!r} has no attribute {attr!r} (from {path!r})")
        target = getattr(target, part)
    if not callable(target):
        raise AttnprofError(f"{path!r} is not a class or factory")
    return target


def _import_module(module_name: str):
    cwd = os.getcwd()
    if any(os.path.abspath(entry or os.curdir) == cwd for entry in sys.path):
        return importlib.import_module(module_name)
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    finally:
        with contextlib.suppress(ValueError):  # the module itself took it off
            sys.path.remove(cwd)
