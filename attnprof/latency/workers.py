"""Run a :class:`~attnprof.latency.rounds.RoundsJob` in a fresh Python interpreter.

Caveats first: the job travels by ``pickle``, so every variant must be an ``nn.Module`` or a
factory importable by name (a module-level function, a class, ``functools.partial`` of one).
A lambda or a class defined in ``__main__`` cannot cross; :func:`check_picklable` says which
variant and why before any process starts. The worker is ``python -m attnprof.latency.workers``
rather than ``multiprocessing``: a new interpreter inherits nothing (no allocator state, no
imported ``__main__`` to re-run), which is the point of the exercise.

Protocol: the parent writes ``sys.path`` and the job, pickled, to a file; the worker prints
``attnprof-round K/N`` after each measured round (the parent's progress display) and pickles
``("ok", ProcessRun)`` or ``("error", line, traceback)`` to the result file. A worker that dies
without a result (a crash, the OOM killer) is reported with its exit status and the end of its
stderr.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from attnprof.errors import AttnprofError
from attnprof.latency.records import ProcessRun
from attnprof.latency.rounds import RoundsJob, run_rounds

_PROGRESS = "attnprof-round "
_STDERR_TAIL = 2000


class WorkerTraceback(Exception):
    """The traceback text of an exception raised in a worker, chained as the cause."""


class WorkerFailed(AttnprofError):
    """A worker process raised or died; ``run`` is its record (``error``, ``traceback``)."""

    def __init__(self, run: ProcessRun):
        super().__init__(run.error or "worker failed")
        self.run = run


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
    job: RoundsJob, progress: Callable[[int, int], None] | None = None
) -> ProcessRun:
    """Run ``job`` in a new interpreter; its :class:`ProcessRun`, or :class:`WorkerFailed`."""
    with tempfile.TemporaryDirectory(prefix="attnprof-worker-") as folder:
        job_file, result_file = Path(folder, "job.pkl"), Path(folder, "result.pkl")
        err_file = Path(folder, "stderr.txt")
        with job_file.open("wb") as stream:
            pickle.dump(list(sys.path), stream)
            pickle.dump(job, stream)
        with err_file.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "attnprof.latency.workers", str(job_file),
                 str(result_file)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    if line.startswith(_PROGRESS) and progress is not None:
                        done, total = line[len(_PROGRESS):].strip().split("/")
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
            raise WorkerFailed(ProcessRun(job.index, job.seed, error=outcome[1],
                                          traceback=outcome[2]))
        tail = err_file.read_text(errors="replace")[-_STDERR_TAIL:].strip()
        raise WorkerFailed(ProcessRun(
            job.index, job.seed,
            error=f"worker process {job.index + 1} ended without a result ({_signal_name(code)})",
            traceback=tail or None,
        ))


def _main(job_path: str, result_path: str) -> int:
    with open(job_path, "rb") as stream:
        sys.path[:] = pickle.load(stream)
        job = pickle.load(stream)

    def report(done: int, total: int) -> None:
        print(f"{_PROGRESS}{done}/{total}", flush=True)

    try:
        outcome = ("ok", run_rounds(job, report))
    except Exception as exc:
        from attnprof.blame import one_line

        line = str(exc) if isinstance(exc, AttnprofError) else one_line(exc)
        outcome = ("error", line, "".join(traceback.format_exception(exc)).rstrip())
    tmp = result_path + ".tmp"
    with open(tmp, "wb") as stream:
        pickle.dump(outcome, stream)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2]))
