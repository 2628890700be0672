"""`attnprof profile`: parameters and MACs/FLOPs of one model under several conventions.

    attnprof profile --backbone resnet50 --attention se --input 224
    attnprof profile --backbone resnet50 --attention sge --input 800x1333 --head pool --json
    attnprof profile --attention sge --option groups=32 --conventions paper,full
    attnprof profile --model mypkg.nets:MyNet --attention eca --option width=2
    attnprof profile --backbone resnet50 --attention mymods:BAM -o place=stages:0,1,2

Every argument is taken as text and checked by the library, so a bad value is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from attnprof.backbones import HEADS
from attnprof.cli import fit
from attnprof.cli.exit_codes import EXIT_OK
from attnprof.counting import DEFAULT_CONVENTIONS
from attnprof.errors import AttnprofError
from attnprof.latency.settings import DTYPES
from attnprof.networks import USER_HEAD, Network, route_options
from attnprof.profiling import LatencyRequest, parse_batches, parse_options, profile


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="count params and MACs/FLOPs of one model under several conventions",
        description="Count the parameters and operations of a ResNet with an attention module, "
        "under several counting conventions side by side (paper, fvcore, thop: MACs; full: "
        "FLOPs and bytes moved).",
    )
    network = parser.add_mutually_exclusive_group()
    network.add_argument(
        "--backbone",
        default="resnet50",
        help="a built-in backbone, see `attnprof list` (default: %(default)s)",
    )
    network.add_argument(
        "--model",
        metavar="PKG.MOD:FACTORY",
        help="your own network: a class or function returning an nn.Module, imported from the "
        "current folder too; attention fills its attnprof.AttentionSlot placeholders",
    )
    parser.add_argument(
        "--insert-after",
        metavar="PATTERN",
        help="with --model: put attention after every module whose name matches PATTERN "
        "(fnmatch, e.g. 'layer*.*.bn2'), for a network whose code cannot be edited",
    )
    parser.add_argument(
        "--attention",
        default="none",
        help="registered attention name or package.module:Class (default: %(default)s)",
    )
    parser.add_argument(
        "--input",
        default="224",
        metavar="N|HxW",
        help="input size, N for N x N or H x W (default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        default="1",
        metavar="N[,N...]",
        help="batch sizes, comma-separated: each one is counted (and timed with --latency) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--head",
        help="; ".join(f"{name}: {meaning}" for name, meaning in HEADS.items())
        + f" (default: fc; {USER_HEAD} with --model)",
    )
    parser.add_argument(
        "--conventions",
        default=",".join(DEFAULT_CONVENTIONS),
        help="comma-separated counting conventions (default: %(default)s)",
    )
    parser.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="option, repeatable; VALUE reads as a Python literal, else as text: groups=32, "
        "gamma=0.5, flag=true, channels_arg=none, kernels=[3,5], same_channels=oup,mid. "
        "place=blocks|stages|stages:0,1,2|after:PATTERN puts the module in every block, "
        "between stages, after the listed stages (0-based) or after the modules matching "
        "PATTERN. With --model an option goes to the network's factory when it names it, "
        "else to the attention module; model.KEY=... or attention.KEY=... say which",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    where = parser.add_argument_group("where the count sits")
    where.add_argument(
        "--by-module", action="store_true",
        help="per module, for every convention: a tree of subtree totals with the attention "
        "modules marked and summed per stage (rows sum to the total)",
    )
    where.add_argument(
        "--depth", type=int, metavar="N",
        help="with --by-module: module tree down to depth N (default: 2)",
    )
    where.add_argument(
        "--by-op", action="store_true",
        help="per operator, for every convention (the split sums to the total)",
    )
    where.add_argument(
        "--csv", action="store_true",
        help="with --by-module/--by-op: print the breakdown as CSV instead of tables",
    )
    timing = parser.add_argument_group("latency")
    timing.add_argument(
        "--latency",
        action="store_true",
        help="also time the forward pass (and each attention module alone)",
    )
    timing.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    timing.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    timing.add_argument(
        "--dtype",
        default="float32",
        help="; ".join(f"{name}: {how}" for name, how in DTYPES.items())
        + " (default: %(default)s)",
    )
    timing.add_argument("--channels-last", action="store_true", help="channels_last layout")
    timing.add_argument("--compile", action="store_true", help="time torch.compile's model")
    timing.add_argument(
        "--no-modules", action="store_true", help="skip timing the attention modules alone"
    )
    parser.set_defaults(func=_run)


def _run(args) -> int:
    breakdown = args.by_module or args.by_op
    if args.depth is not None and (args.depth < 0 or not args.by_module):
        raise AttnprofError("--depth N needs --by-module and N >= 0 (0: the whole model)")
    if args.csv and not breakdown:
        raise AttnprofError("--csv prints a breakdown: add --by-module or --by-op")
    if args.csv and args.json:
        raise AttnprofError("--csv and --json each print the whole output: choose one")
    batches = parse_batches(args.batch)
    latency = None
    if args.latency:
        latency = LatencyRequest(
            device=args.device,
            batch_sizes=batches,
            threads=args.threads,
            dtype=args.dtype,
            channels_last=args.channels_last,
            compile=args.compile,
            modules=not args.no_modules,
        )
    options = parse_options(args.option)
    model, model_options = args.backbone, {}
    if args.model is not None:
        model = Network(args.model, insert_after=args.insert_after)
        model_options, options = route_options(model, args.attention, options)
        model = replace(model, options=model_options)
    elif args.insert_after is not None:
        raise AttnprofError("--insert-after places attention in a network given with --model")
    else:
        if any(key.startswith("model.") for key in options):
            raise AttnprofError("model.KEY options reach a network given with --model")
        options = {key.removeprefix("attention."): value for key, value in options.items()}
    record = profile(
        model,
        args.attention,
        input=args.input,
        head=args.head,
        batch=batches,
        conventions=args.conventions,
        latency=latency,
        breakdown=breakdown,
        **options,
    )
    said = [*record.notes]
    if record.nonfinite is not None:
        said.append(record.nonfinite.warning(f"{record.backbone} + {record.attention}"))
    for note in said:  # one line each, on stderr (stdout stays the output alone)
        print(fit(f"attnprof: warning: {note}"), file=sys.stderr)
    if args.debug:
        for text in record.warnings:
            print(f"attnprof: debug: {text}", file=sys.stderr)
    if args.csv:
        from attnprof.counting.render import breakdown_csv

        sys.stdout.write(breakdown_csv(record))
        return EXIT_OK
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
        return EXIT_OK
    from attnprof.cli.console import console as make_console
    from attnprof.counting.render import render_profile

    console = make_console()
    console.print(render_profile(record))
    if breakdown:
        from attnprof.counting.render import breakdown_tables

        console.print(breakdown_tables(record, args.depth, by_op=args.by_op,
                                       by_module=args.by_module))
    if record.latency:
        from attnprof.latency.render import latency_table, module_table

        console.print(latency_table(record.latency))
        if record.module_latency:
            console.print(module_table(record.module_latency))
    return EXIT_OK
