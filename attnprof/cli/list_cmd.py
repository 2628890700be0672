"""``attnprof list``: the suites, backbones, attention modules and counting conventions."""

from __future__ import annotations

from rich.table import Table

from attnprof.attention.registry import attention_names, get_attention_spec
from attnprof.backbones import BACKBONES, HEADS
from attnprof.cli.console import console as make_console
from attnprof.cli.exit_codes import EXIT_OK
from attnprof.counting.conventions import CONVENTIONS
from attnprof.suite.config import available_suites, load_suite


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "list", help="list suites, backbones, attention modules and counting conventions"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    console = make_console()
    suites = Table(title="Suites (attnprof run --suite NAME)")
    suites.add_column("suite")
    suites.add_column("backbones")
    suites.add_column("variants")
    suites.add_column("description")
    for name in available_suites():
        suite = load_suite(name)
        suites.add_row(
            name,
            ", ".join(suite.backbones),
            ", ".join(v.name for v in suite.variants),
            suite.description,
        )
    console.print(suites)

    modules = Table(title="Attention modules (--attention NAME, or package.module:Class)")
    modules.add_column("name")
    modules.add_column("placement")
    modules.add_column("paper")
    for name in attention_names():
        spec = get_attention_spec(name)
        modules.add_row(name, spec.placement, spec.paper)
    console.print(modules)

    console.print(f"Backbones: {', '.join(BACKBONES)}; heads: {', '.join(HEADS)}")
    conventions = Table(title="Counting conventions (--conventions)")
    conventions.add_column("convention")
    conventions.add_column("unit")
    conventions.add_column("what it counts")
    for convention in CONVENTIONS.values():
        conventions.add_row(convention.name, convention.unit, convention.summary)
    console.print(conventions)
    return EXIT_OK
