"""``attnprof merge A.json B.json ... -o merged.json``: shards and machines into one document.

Every input is read and checked (same suite, same counts, no timing twice on one machine)
before anything is written, and the output is written atomically: a refused merge leaves no
file behind. See :mod:`attnprof.results.merge` for what is kept apart and why.
"""

from __future__ import annotations

from pathlib import Path

from attnprof.cli.exit_codes import EXIT_OK
from attnprof.errors import AttnprofError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="join the shards of a run and results of several machines into one results.json",
        description="Join results files of one suite (the shards of 'attnprof run --shard K/N', "
        "or runs on different machines and devices) into one results file. Timings of "
        "different machines are kept apart, never averaged; 'attnprof report' on the merged "
        "file writes one report with a column group per machine and device.",
    )
    parser.add_argument("inputs", nargs="+", metavar="RESULTS.json",
                        help="results files of 'attnprof run' (or earlier merges)")
    parser.add_argument("-o", "--out", required=True, type=Path, metavar="MERGED.json",
                        help="the merged results file to write")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from attnprof import results
    from attnprof.files import ensure_writable_dir
    from attnprof.results.merge import merge_documents

    out = Path(args.out)
    if out.is_dir():
        raise AttnprofError(f"-o {str(out)!r} is a folder; name the merged file, e.g. "
                            f"{str(out / 'results.json')!r}")
    paths = [str(p) for p in args.inputs]
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise AttnprofError(f"-o {str(out)!r} is one of the inputs; write the merge elsewhere")
    documents = [(path, results.load(path)) for path in paths]
    merged = merge_documents(documents)
    results.parse(merged.to_dict(), str(out))  # what is written must read back
    ensure_writable_dir(out.parent)
    results.write(out, merged)
    machines = len(merged.machines) or 1
    print(f"merged {len(paths)} file{'s' if len(paths) > 1 else ''} ({len(merged.cells)} cells, "
          f"{machines} machine{'s' if machines > 1 else ''}) into {out}")
    return EXIT_OK
