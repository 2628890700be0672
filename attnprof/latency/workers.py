"""Run a job in a fresh Python interpreter: a timing process, or a run's one-time build.

Caveats first: the job travels by ``pickle``, so every variant must be an ``nn.Module`` or a
factory importable by name (a module-level function, a class, ``functools.partial`` of one).
A lambda or a class defined in ``__main__`` cannot cross; :func:`check_picklable` says which
variant and why before any process starts. The worker is ``python -m attnprof.latency.workers``
rather than ``multiprocessing``: a new interpreter inherits nothing (no allocator state, no
address-space layout, no imported ``__main__`` to re-run), which is the point of the exercise.

Protocol: the parent writes ``sys.path``, the job's function (``module:name``) and the job,
pickled, to a file; the worker prints ``attnprof-round K/N`` after each measured round (the
parent's progress display) and pickles ``("ok", result)`` or ``("error", line, traceback)`` to
the result file. A worker that dies without a result (a crash, the OOM killer) is reported with
its exit status and the end of its stderr.

Before the job runs, the worker puts the allocator in the state the timing measures
(:data:`attnprof.latency.spec.ALLOCATORS`; ``steady``: glibc's thresholds fixed, as a
long-running server's would settle).
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from attnprof.errors import AttnprofError

_PROGRESS = "attnprof-round "
_STDERR_TAIL = 2000


class WorkerTraceback(Exception):
    """The traceback text of an exception raised in a worker, chained as the cause."""


class WorkerFailed(AttnprofError):
    """A worker process raised or died: ``line`` says why in one line, ``traceback`` is the
    worker's full traceback (or the end of its stderr)."""

    def __init__(self, line: str, traceback_text: str | None):
        super().__init__(line)
        self.line = line
        self.traceback = traceback_text


def check_picklable(variants: Mapping[str, object]) -> None:
    """Refuse, naming it, a variant that cannot be sent to a fresh process."""
    for name, item in variants.items():
        try:
            pickle.dumps(item)
        except Exception as exc:
            raise AttnprofError(
                f"variant {name!r} cannot be sent to a fresh worker process ({exc}); give a "
                "model or a factory importable by name (a module-level function or class, or "
                "functools.partial of one), or measure in this process with processes=1"
            ) from None


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def run_in_fresh_process(
    function: str, job: Any, *, allocator: str = "steady", what: str = "worker process",
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """``function(job, report)`` (``module:name``) in a new interpreter; its result, or
    :class:`WorkerFailed` naming ``what`` failed."""
    with tempfile.TemporaryDirectory(prefix="attnprof-worker-") as folder:
        job_file, result_file = Path(folder, "job.pkl"), Path(folder, "result.pkl")
        err_file = Path(folder, "stderr.txt")
        with job_file.open("wb") as stream:
            pickle.dump((list(sys.path), function, allocator), stream)
            pickle.dump(job, stream)
        with err_file.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "attnprof.latency.workers", str(job_file),
                 str(result_file)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True,
                errors="replace",  # a model may print anything
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    if line.startswith(_PROGRESS) and progress is not None:
                        done, _, total = line[len(_PROGRESS):].strip().partition("/")
                        if done.isdigit() and total.isdigit():  # else a model's own print
                            progress(int(done), int(total))
                code = process.wait()
            except BaseException:  # interrupted: leave no worker behind
                process.kill()
                process.wait()
                raise
        if result_file.exists():
            outcome = pickle.loads(result_file.read_bytes())
            if outcome[0] == "ok":
                return outcome[1]
            raise WorkerFailed(outcome[1], outcome[2])
        tail = err_file.read_text(errors="replace")[-_STDERR_TAIL:].strip()
        raise WorkerFailed(f"{what} ended without a result ({_signal_name(code)})",
                           tail or None)


PREPARED: str | None = None
"""What :func:`prepare_worker` set in this process (``None``: nothing; in a caller's own
process, which a one-process timing never changes)."""


def prepare_worker(allocator: str) -> str | None:
    """Put this fresh process in the state the timing measures; say what was set."""
    global PREPARED
    if allocator == "steady":
        from attnprof.latency.allocator import steady_allocator

        PREPARED = steady_allocator()
    return PREPARED


def _failure(exc: BaseException) -> tuple[str, str]:
    """One line and the full traceback of what a job raised."""
    from attnprof.blame import one_line

    line = str(exc) if isinstance(exc, AttnprofError) else one_line(exc)
    return line, "".join(traceback.format_exception(exc)).rstrip()


def run_here(function: Callable[..., Any], job: Any,
             progress: Callable[[int, int], None] | None = None) -> Any:
    """``function(job, progress)`` in this process (a one-process timing), failing as a fresh
    process fails: :class:`WorkerFailed` with one line and the traceback, so a model that
    raises fails its group, never the whole run."""
    try:
        return function(job, progress)
    except Exception as exc:
        raise WorkerFailed(*_failure(exc)) from None


def _main(job_path: str, result_path: str) -> int:
    with open(job_path, "rb") as stream:
        path, function, allocator = pickle.load(stream)
        sys.path[:] = path
        # this file runs as __main__: prepare the state through the module the job imports
        importlib.import_module("attnprof.latency.workers").prepare_worker(allocator)
        payload = stream.read()

    def job() -> Any:  # unpickled inside the try: a variant this process cannot import fails
        return pickle.loads(payload)  # with its own reason, not as a silent exit

    def report(done: int, total: int) -> None:
        print(f"{_PROGRESS}{done}/{total}", flush=True)

    try:
        module, _, name = function.partition(":")
        outcome = ("ok", getattr(importlib.import_module(module), name)(job(), report))
    except Exception as exc:
        outcome = ("error", *_failure(exc))
    tmp = result_path + ".tmp"
    with open(tmp, "wb") as stream:
        pickle.dump(outcome, stream)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
