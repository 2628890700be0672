"""``attnprof run --suite NAME|PATH``: the main job, suites in, comparison tables out."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from attnprof.cli.console import console as make_console
from attnprof.cli.exit_codes import EXIT_FAILURE, EXIT_OK
from attnprof.report.model import Report
from attnprof.suite.config import DEVICES, load_suite
from attnprof.suite.runner import (
    RunSummary,
    Step,
    SuiteRunner,
    select_networks,
    select_variants,
    with_replication,
)
from attnprof.suite.shard import Shard


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a suite: count, time and report every backbone x attention variant",
        description="Build each backbone with each attention variant of a suite, count params "
        "and MACs/FLOPs, time latency, and write results.json, results.csv and report.md.",
    )
    parser.add_argument("--suite", required=True, help="a shipped suite's name or a TOML path")
    parser.add_argument("--device", choices=DEVICES, help="time on this device only")
    parser.add_argument(
        "--only", help="comma-separated variants to run (the 'none' baseline is always kept)"
    )
    parser.add_argument(
        "--networks", help="comma-separated backbones or networks of the suite to run "
        "(default: all)"
    )
    parser.add_argument("--skip-latency", action="store_true", help="count only, no timing")
    parser.add_argument(
        "--skip-attribution", action="store_true",
        help="time, but do not profile where each group's time goes (the suite's "
        "[latency] attribution)",
    )
    parser.add_argument(
        "--processes", type=int, metavar="N",
        help="a fixed number of fresh worker processes per latency group: 1 (this process "
        "only) or >= 6 (default: the suite's; unless it fixes one, processes are added until "
        "every interval is narrow)",
    )
    parser.add_argument(
        "--target-width", type=float, metavar="POINTS",
        help="stop a comparison once its 95%% interval is at most this many points of Δ%% "
        "wide (default: the suite's; 3 where it declares none)",
    )
    parser.add_argument(
        "--budget", metavar="DURATION",
        help="timing time for the whole run, e.g. '8 min' or 480 (seconds); what is still "
        "open then stops, each comparison with the interval it has (default: the suite's)",
    )
    parser.add_argument(
        "--rounds", type=int, metavar="N",
        help="measured rounds per process (default: the suite's; >= 6 with --processes 1)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: results/<suite>)")
    parser.add_argument(
        "--resume", action="store_true", help="keep finished cells of --out and do the rest"
    )
    parser.add_argument(
        "--shard", metavar="K/N",
        help="run the K-th of N deterministic shares of the suite's cells (each variant with "
        "its group's baseline), for one job of a CI matrix; join them with 'attnprof merge'",
    )
    parser.add_argument("--quiet", action="store_true", help="plain log lines, no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    suite = load_suite(args.suite)
    suite = select_variants(suite, args.only.split(",") if args.only else None)
    suite = select_networks(suite, args.networks.split(",") if args.networks else None)
    if args.skip_attribution:
        suite = replace(suite, latency=replace(suite.latency, attribution=False))
    suite = with_replication(suite, args.processes, args.rounds, args.target_width,
                             args.budget)
    shard = Shard.parse(args.shard) if args.shard is not None else None
    out_dir = args.out or Path("results") / suite.name
    console = make_console(stderr=True)
    with _ProgressDisplay(console, quiet=args.quiet) as display:
        runner = SuiteRunner(
            suite,
            out_dir,
            device=args.device,
            skip_latency=args.skip_latency,
            resume=args.resume,
            progress=display.update,
            shard=shard,
        )
        display.start(runner)
        try:
            summary = runner.run()
        except KeyboardInterrupt:
            console.print(
                f"interrupted: every finished cell is in {runner.results_path}; "
                f"continue with: attnprof run --suite {args.suite} --out {out_dir} --resume"
            )
            raise
    from attnprof.report import build_report, plot_skip_reason, write_reports

    report = build_report(runner.document())
    summary.reports = write_reports(report, out_dir)
    _print_summary(make_console(), report, summary)
    reason = plot_skip_reason(report)
    if reason:
        print(f"attnprof: note: {reason}", file=sys.stderr)
    return EXIT_FAILURE if summary.failed else EXIT_OK


class _ProgressDisplay:
    """A rich progress bar with the current cell and an ETA, or log lines with ``--quiet``."""

    def __init__(self, console: Console, quiet: bool):
        self.console = console
        self.quiet = quiet or not console.is_terminal
        self.progress: Progress | None = None
        self.task = None
        self.budget_task = None

    def __enter__(self):
        if not self.quiet:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False

    def start(self, runner: SuiteRunner) -> None:
        cells = len(runner.plan_cells())
        groups = len(runner.plan_latency()) * len(runner.suite.variants)
        total = cells + groups
        if self.progress is not None:
            self.task = self.progress.add_task(f"suite {runner.suite.name}", total=total)
        else:
            share = f" (shard {runner.shard})" if runner.shard is not None else ""
            print(
                f"attnprof: suite {runner.suite.name}{share}: {cells} cells to count, "
                f"{len(runner.plan_latency())} latency groups -> {runner.results_path}",
                file=sys.stderr,
            )

    def update(self, step: Step) -> None:
        if step.kind == "process":
            self._process(step.detail)
            return
        if self.progress is not None:
            if step.done:
                self.progress.advance(self.task, step.weight)
            else:
                self.progress.update(self.task, description=step.label)
        elif step.done:
            status = "FAILED" if step.failed else "done"
            print(f"attnprof: {step.label}: {status} in {step.seconds:.1f} s", file=sys.stderr)

    def _process(self, event) -> None:
        """One line per finished process (a log); on a terminal, the line under the bar and a
        second bar of the timing against its budget."""
        if event.kind == "done":
            return
        line = process_line(event)
        if self.progress is None:
            print(f"attnprof: {line}", file=sys.stderr)
            return
        self.progress.console.print(line, highlight=False)
        if event.budget_s:
            if self.budget_task is None:
                self.budget_task = self.progress.add_task("timing budget", total=event.budget_s)
            self.progress.update(self.budget_task,
                                 completed=min(event.elapsed_s, event.budget_s))


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def process_line(event) -> str:
    """``resnet50 fc@224x224 cpu batch 1: process 7 (14.2 s): 6 of 8 done; open: sa +29.1%
    [+20.3, +36.0]; 3:12 of 8:00``: what one process changed, and what is left."""
    budget = f" of {_clock(event.budget_s)} budget" if event.budget_s else ""
    clock = f"{_clock(event.elapsed_s)}{budget}"
    if event.kind == "build":
        return f"{event.group}: built once for the run; {clock}"
    if event.error:
        return f"{event.group}: process {event.process} FAILED: {event.error}; {clock}"
    total = len(event.ratios)
    open_ = [(c, v, r) for c, v, r in event.ratios if r.stopped is None]
    several = len({c for c, _, _ in event.ratios}) > 1

    def said(condition, variant, ratio) -> str:
        name = f"{variant} {condition.label}" if several else variant
        ci = ratio.delta_ci95_pct
        interval = f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else " (no interval yet)"
        return f"{name} {ratio.delta_pct:+.1f}%{interval}"

    shown = "; open: " + ", ".join(said(*item) for item in open_[:4]) if open_ else ""
    more = f" and {len(open_) - 4} more" if len(open_) > 4 else ""
    return (f"{event.group}: process {event.process} ({event.wall_s:.1f} s): "
            f"{total - len(open_)} of {total} done{shown}{more}; {clock}")


def _print_summary(console: Console, report: Report, summary: RunSummary) -> None:
    from attnprof.report import summary_table

    console.print(summary_table(report))
    console.print(
        f"{summary.counted} cells counted, {summary.timed_groups} latency groups timed, "
        f"{summary.skipped} kept from before, {len(summary.failed)} failed, "
        f"in {summary.seconds:.0f} s"
    )
    if summary.redone:
        console.print(
            f"measured again {len(summary.redone)} cells whose code or options changed since "
            f"the earlier run: {', '.join(summary.redone)}"
        )
    for label in summary.failed:
        console.print(f"[red]failed[/red]: {label} (see {summary.results_path})")
    for path in summary.reports:
        console.print(f"wrote {path}")
