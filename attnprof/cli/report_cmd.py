"""`attnprof report`: regenerate report.md, results.csv and the plot from a results.json.

Nothing is measured again. The whole file is validated before anything is written, so a corrupt
file gives one line on stderr, exit code 2, and no report file. The same holds for a format named
with ``--format`` that cannot be produced (``--format png`` for results without latency, or
without matplotlib): exit code 2, as for any request the input cannot satisfy (1 is kept for
problems found in the measurements), and nothing written, not even the other named formats.
Without ``--format`` every format that can be produced is written and a missing plot is a note.
"""

from __future__ import annotations

import sys
from pathlib import Path

from attnprof.cli.exit_codes import EXIT_OK
from attnprof.errors import AttnprofError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="regenerate report.md / results.csv / plot from a results.json",
        description="Regenerate the reports of a suite run from its results.json, without "
        "measuring again. By default report.md, results.csv and macs_vs_latency.png are written "
        "next to the results file.",
    )
    parser.add_argument("results", metavar="RESULTS.json", help="a results file of 'attnprof run'")
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("md", "csv", "png"),
        help="write only this format (repeat for several; default: md, csv and png)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="folder for the reports (default: the results file's folder)",
    )
    parser.add_argument(
        "--stdout",
        action="store_true",
        help="print the report (md, or csv with --format csv) instead of writing files",
    )
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from attnprof import results
    from attnprof.report import (
        FORMATS,
        build_report,
        plot_skip_reason,
        render_csv,
        render_markdown,
        write_reports,
    )

    path = Path(args.results)
    report = build_report(results.load(path))
    formats = tuple(dict.fromkeys(args.formats or ()))
    if args.stdout:
        if args.out is not None:
            raise AttnprofError("--stdout prints the report; it cannot be combined with --out")
        if len(formats) > 1 or "png" in formats:
            raise AttnprofError(
                f"--stdout prints one text format; got --format {', '.join(formats)} "
                "(choose md or csv)"
            )
        text = render_csv(report) if formats == ("csv",) else render_markdown(report)
        sys.stdout.write(text)
        return EXIT_OK
    # formats named with --format must all be written, or nothing is: a plot that cannot be
    # drawn is refused then (exit 2); with no --format it is skipped with a note, as in a run
    written = write_reports(report, args.out or path.parent, formats or FORMATS,
                            required=formats)
    for item in written:
        print(item)
    reason = plot_skip_reason(report)
    if reason and not formats:
        print(f"attnprof: note: {reason}", file=sys.stderr)
    return EXIT_OK
