"""`attnprof compare BASE.json NEW.json`: did anything regress? Exit 1 when something did.

Reads attnprof results (``attnprof run``) or pytest-benchmark JSON, whichever each file is.
"""

from __future__ import annotations

from attnprof.cli.console import console
from attnprof.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from attnprof.compare import (
    DEFAULT_ALPHA,
    METRICS,
    compare,
    load_pooled,
    parse_metrics,
    parse_threshold,
    render,
    to_json,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare two result files; exit 1 on a confirmed regression",
        description=(
            "Compare NEW against BASE cell by cell. Parameter and MAC counts must match exactly. "
            "Latency is judged on per-round ratios to the reference measured in the same run "
            "and flagged only when the slowdown exceeds the threshold AND a one-sided "
            "Mann-Whitney U test on the raw samples finds it significant, against BASE and "
            "against BASE x (1 + threshold)."
        ),
    )
    parser.add_argument(
        "base", metavar="BASE.json",
        help="the reference results; several runs of the same code as A.json,B.json are pooled",
    )
    parser.add_argument("new", metavar="NEW.json",
                        help="the results to judge (comma-separated runs are pooled too)")
    parser.add_argument(
        "--threshold", default="10%", metavar="PCT",
        help="smallest slowdown that can be flagged, as '10%%' or '0.1' (default: 10%%)",
    )
    parser.add_argument(
        "--metric", action="append", metavar="|".join(METRICS),
        help="what to compare (repeatable, or comma-separated; default: all three)",
    )
    parser.add_argument(
        "--alpha", type=float, default=DEFAULT_ALPHA, metavar="P",
        help=f"significance level of the one-sided rank test (default: {DEFAULT_ALPHA:g})",
    )
    parser.add_argument(
        "--fail-unpaired", action="store_true",
        help="also fail on slowdowns of benchmarks without a reference timed in the same run "
        "(absolute times; by default they only warn)",
    )
    parser.add_argument("--json", action="store_true",
                        help="print the comparison as JSON instead of tables")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    threshold = parse_threshold(args.threshold)
    metrics = parse_metrics(args.metric)
    base = load_pooled(args.base)
    new = load_pooled(args.new)
    comparison = compare(base, new, threshold=threshold, alpha=args.alpha, metrics=metrics,
                         fail_unpaired=args.fail_unpaired)
    if args.json:
        print(to_json(comparison))
    else:
        render(comparison, console())
    return EXIT_FAILURE if comparison.failed else EXIT_OK
