"""Evidence, with real timings on this machine, that a latency interval holds for a new run.

Several independent runs of the imagenet suite's comparison (ResNet-50 none/SE/SGE/SA at 224,
batch 1, the suite's default of 6 fresh processes of 3 rounds each), one after the other, as
``attnprof run`` would take them. For each variant and run: does the run's 95% interval contain
the median of the *other* runs' Δ? Across processes it should, about 95% of the time; the
one-process design this replaces did not (SA: run 1's interval and run 2's were 16 points
apart). The largest spread of Δ between runs is printed too (the aim is 3 points; on a 2-core
machine the between-process component makes it larger, which the intervals then show).

Slow (several minutes): excluded from the default run; run it with ``-m slow`` on a quiet
machine. ``ATTNPROF_EVIDENCE_OUT=path.json`` writes the runs' numbers there.
"""

from __future__ import annotations

import json
import os
import statistics
from functools import partial

import pytest

from attnprof.backbones import build_model
from attnprof.latency import paired_latency

RUNS = 6
VARIANTS = ("none", "se", "sge", "sa")


@pytest.mark.slow
def test_each_runs_interval_contains_the_median_of_the_other_runs():
    runs = []
    for run in range(RUNS):
        comparison = paired_latency(
            {name: partial(build_model, "resnet50", name) for name in VARIANTS}, 224,
            seed=100 * run, memory=False,
        )
        runs.append({r.name: (r.delta_pct, r.delta_ci95_pct, r.disagreement_p)
                     for r in comparison.results})
    hits, checks, lines, summary = 0, 0, [], {}
    for name in VARIANTS[1:]:
        deltas = [run[name][0] for run in runs]
        inside = []
        for i, run in enumerate(runs):
            others = statistics.median(d for j, d in enumerate(deltas) if j != i)
            lo, hi = run[name][1]
            inside.append(lo <= others <= hi)
        hits += sum(inside)
        checks += len(inside)
        spread = max(deltas) - min(deltas)
        summary[name] = {"delta_pct": deltas, "ci95_pct": [run[name][1] for run in runs],
                         "contains_others_median": inside, "spread_pct_points": spread}
        lines.append(
            f"{name}: Δ {', '.join(f'{d:+.1f}' for d in deltas)} %; intervals "
            f"{', '.join(f'[{run[name][1][0]:+.1f}, {run[name][1][1]:+.1f}]' for run in runs)}; "
            f"contain the others' median {sum(inside)}/{len(inside)}; spread {spread:.1f} points"
        )
    print("\n" + "\n".join(lines) + f"\nin all: {hits}/{checks}")
    if os.environ.get("ATTNPROF_EVIDENCE_OUT"):
        with open(os.environ["ATTNPROF_EVIDENCE_OUT"], "w", encoding="utf-8") as stream:
            json.dump({"runs": RUNS, "variants": summary, "contained": [hits, checks]}, stream,
                      indent=1)
    # ~95% expected. The misses are not independent: a run whose six processes all caught the
    # machine in a slow minute misses for every variant at once (seen once in 12 runs: 33/36
    # in all). So: at least 80%, and for each variant at least half the runs (the one-process
    # design this replaces scored 0 of 3 for SA).
    assert hits >= 0.8 * checks, "\n".join(lines)
    assert all(sum(v["contains_others_median"]) >= RUNS / 2 for v in summary.values()), \
        "\n".join(lines)
