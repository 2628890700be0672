"""`attnprof profile`: parameters and MACs/FLOPs of one model under several conventions.

    attnprof profile --backbone resnet50 --attention se --input 224
    attnprof profile --backbone resnet50 --attention sge --input 800x1333 --head pool --json
    attnprof profile --attention sge --option groups=32 --conventions paper,full

Every argument is taken as text and checked by the library, so a bad value is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys

from attnprof.counting import DEFAULT_CONVENTIONS
from attnprof.profiling import parse_batch, parse_options, profile


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="count params and MACs/FLOPs of one model under several conventions",
        description="Count the parameters and operations of a ResNet with an attention module, "
        "under several counting conventions side by side (paper, fvcore, thop: MACs; full: "
        "FLOPs and bytes moved).",
    )
    parser.add_argument("--backbone", default="resnet50", help="resnet18 ... resnet152 "
                        "(default: %(default)s)")
    parser.add_argument("--attention", default="none",
                        help="registered attention name or package.module:Class "
                        "(default: %(default)s)")
    parser.add_argument("--input", default="224", metavar="N|HxW",
                        help="input size, N for N x N or H x W (default: %(default)s)")
    parser.add_argument("--batch", default="1", help="batch size (default: %(default)s)")
    parser.add_argument("--head", default="fc",
                        help="fc (logits), pool (fc removed, the published detection "
                        "setting) or none (default: %(default)s)")
    parser.add_argument("--conventions", default=",".join(DEFAULT_CONVENTIONS),
                        help="comma-separated counting conventions (default: %(default)s)")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="attention option, repeatable; values parse as int, float, "
                        "true/false or text (e.g. groups=32)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of tables")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    record = profile(
        args.backbone,
        args.attention,
        input=args.input,
        head=args.head,
        batch=parse_batch(args.batch),
        conventions=args.conventions,
        **parse_options(args.option),
    )
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
        return 0
    from rich.console import Console

    from attnprof.counting.render import render_profile

    Console(file=sys.stdout).print(render_profile(record))
    return 0
