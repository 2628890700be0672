"""The ``attnprof`` command line: parses, calls the library, prints.

Each sub-command lives in its own module with ``register(subparsers)``; library code raises
:class:`~attnprof.errors.AttnprofError`, and only :func:`main` turns it into one line on stderr
and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from attnprof import __version__
from attnprof.blame import cut, one_line
from attnprof.cli.exit_codes import EPILOG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from attnprof.errors import AttnprofError

_COMMANDS = ("profile", "run", "report", "compare", "merge", "list")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (and the usage below it)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(f"{self.prog}: {message}"))


LINE_LIMIT = 1000
"""No line attnprof writes to stderr is longer (without ``--debug``), whatever a user's module
raised: a tracer's message can embed a whole weight tensor."""


def _fail(message: str) -> int:
    print(fit(f"attnprof: error: {message}"), file=sys.stderr)
    return EXIT_USAGE


def fit(text: str) -> str:
    """``text`` with every line longer than :data:`LINE_LIMIT` cut (:func:`~attnprof.blame.cut`)."""
    return "\n".join(
        line if len(line) <= LINE_LIMIT else cut(line, LINE_LIMIT - 100)
        for line in text.splitlines() or [""]
    )


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given ``argv`` naming one command, only that command's module is
    imported (each pulls in what it needs: pandas for reports, scipy for comparisons), so
    ``attnprof profile`` starts without them."""
    parser = _Parser(
        prog="attnprof",
        description="Profile the real cost of CNN attention modules: params, MACs/FLOPs under "
        "declared conventions, latency, and comparison reports.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"attnprof {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    import importlib

    first = next((arg for arg in (argv or ()) if not arg.startswith("-")), None)
    for name in (first,) if first in _COMMANDS else _COMMANDS:
        module = importlib.import_module(f"attnprof.cli.{name}_cmd")
        module.register(subparsers)
    for command in subparsers.choices.values():
        command.epilog = EPILOG
        command.add_argument(
            "--debug",
            action="store_true",
            help="on an error, print the full traceback (with the original exception) too",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``attnprof`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = None
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or EXIT_OK)
    except SystemExit as exc:  # argparse's --help / errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except AttnprofError as exc:
        _traceback(args, exc)
        return _fail(exc.rendered(exc.syntax or "cli"))
    except KeyboardInterrupt:
        print("attnprof: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, or a user's code failing where attnprof did not expect it
        _traceback(args, exc)
        print(
            f"attnprof: error: unexpected {one_line(exc)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _traceback(args, exc: BaseException) -> None:
    """With ``--debug``: the whole chain, the original exception of a user's code included."""
    if getattr(args, "debug", False):
        traceback.print_exception(exc, file=sys.stderr)


def entry() -> None:
    sys.exit(main())
