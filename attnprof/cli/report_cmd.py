"""`attnprof report`: placeholder until its issue lands."""

from attnprof.errors import AttnprofError


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="(not available yet)")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    raise AttnprofError("'attnprof report' is not available yet")
