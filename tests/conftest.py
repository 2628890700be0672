"""Tests run two at a time (pytest-xdist), and those that time something run alone.

Caveat first: a test that asserts on measured time (a ratio, a slowdown flagged, a thread
seen working) is only as steady as the machine around it, and the machine is the other
worker's too. Such a test is marked ``alone``: while it runs, no other test runs; every other
test runs beside one other. A readers-writer lock on two files in the temporary folder, named
by the run's id, does it (``flock``): an ordinary test holds the main lock shared, an ``alone``
test holds it exclusive, and a turnstile that the exclusive test holds while it waits stops
new ordinary tests from starving it. Without xdist (one process) nothing is locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
"""Set in every worker of one xdist run (the same value in all): whom to share the lock with."""


def _lock_file(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"attnprof-tests-{_RUN}-{name}.lock"


@contextlib.contextmanager
def _held(name: str, mode: int) -> Iterator[None]:
    with _lock_file(name).open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _alone() -> Iterator[None]:
    with _lock_file("turnstile").open("a") as turnstile, _lock_file("main").open("a") as main:
        fcntl.flock(turnstile, fcntl.LOCK_EX)  # no new ordinary test starts from now
        try:
            fcntl.flock(main, fcntl.LOCK_EX)  # wait for those running to finish
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(main, fcntl.LOCK_UN)


@contextlib.contextmanager
def _beside_others() -> Iterator[None]:
    with _held("turnstile", fcntl.LOCK_SH):
        pass  # waits while an alone test is waiting or running
    with _held("main", fcntl.LOCK_SH):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if _RUN is None:
        yield
        return
    with _alone() if item.get_closest_marker("alone") else _beside_others():
        yield


@pytest.fixture(autouse=True)
def _no_inherited_columns(monkeypatch):
    """An xdist worker inherits the terminal's width as ``COLUMNS``, which attnprof's log
    consoles honour (attnprof.cli.console); the tests read output as a log writes it."""
    monkeypatch.delenv("COLUMNS", raising=False)
