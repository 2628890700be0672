"""Compare two result files and say, with an exit code a CI can use, whether anything regressed.

Latency is judged on per-round ratios to a reference measured in the same run (a shared CI
runner's 5-50% run-to-run swings hit both and cancel), and flagged only when the slowdown is
larger than the threshold *and* a one-sided Mann-Whitney U test on the raw samples finds it
significant, as asv does. Parameter and MAC counts are exact and must match exactly.

    >>> from attnprof.compare import load_results, compare
    >>> result = compare(load_results("base.json"), load_results("new.json"))  # doctest: +SKIP
    >>> result.failed  # doctest: +SKIP
    False
"""

from attnprof.compare.judge import METRICS, Change, Comparison, Source, compare, parse_metrics
from attnprof.compare.loaders import (
    Cell,
    Count,
    Machine,
    ResultSet,
    Timing,
    load_pooled,
    load_results,
    merge_results,
)
from attnprof.compare.render import render, summary, to_json
from attnprof.compare.stats import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    RankTest,
    ShiftJudgement,
    Verdict,
    judge_shift,
    parse_threshold,
    rank_test,
    relative_change,
    smallest_pvalue,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_THRESHOLD",
    "METRICS",
    "Cell",
    "Change",
    "Comparison",
    "Count",
    "Machine",
    "RankTest",
    "ResultSet",
    "ShiftJudgement",
    "Source",
    "Timing",
    "Verdict",
    "compare",
    "judge_shift",
    "load_pooled",
    "load_results",
    "merge_results",
    "parse_metrics",
    "parse_threshold",
    "rank_test",
    "relative_change",
    "render",
    "smallest_pvalue",
    "summary",
    "to_json",
]
