"""The latency part of a suite: one backbone x setting x device x batch, all variants paired.

Variants are timed in interleaved rounds with the ``none`` baseline (see
:func:`attnprof.latency.paired_latency`), and each variant's entry in ``results.json`` is its
latency record plus its ratio to the baseline measured in the same rounds. That ratio, not the
absolute time, is what reports quote and what ``attnprof compare`` judges: it cancels the drift
of a shared machine.
"""

from __future__ import annotations

from typing import Any

from attnprof.backbones.resnet import build_model
from attnprof.latency import paired_latency
from attnprof.suite.config import BASELINE, LatencySettings, Setting, Variant


def time_group(
    backbone: str,
    setting: Setting,
    variants: list[Variant],
    device: str,
    batch: int,
    latency: LatencySettings,
) -> dict[str, dict[str, Any]]:
    """Time ``variants`` (the baseline among them) and return one results entry per name."""
    factories = {
        v.name: (lambda v=v: build_model(backbone, v.attention, head=setting.head, **v.options))
        for v in variants
    }
    comparison = paired_latency(
        factories,
        (3, *setting.input_hw),
        baseline=BASELINE,
        rounds=latency.rounds,
        batch=batch,
        device=device,
        threads=latency.threads or None,
        dtype=latency.dtype,
        channels_last=latency.channels_last,
        compile=latency.compile,
        sample_time=latency.sample_time,
    )
    baseline = comparison.baseline_record
    entries = {
        BASELINE: _entry(
            baseline.to_dict(),
            {
                "baseline": BASELINE,
                "median": 1.0,
                "ci95": [1.0, 1.0],
                "delta_pct": 0.0,
                "delta_ci95_pct": [0.0, 0.0],
                "values": [1.0] * len(baseline.times_ms),
            },
            comparison.notes,
        )
    }
    for result in comparison.results:
        entries[result.name] = _entry(
            result.record.to_dict(),
            {
                "baseline": result.baseline,
                "median": result.ratio_median,
                "ci95": list(result.ratio_ci95),
                "delta_pct": result.delta_pct,
                "delta_ci95_pct": list(result.delta_ci95_pct),
                "values": list(result.ratios),
            },
            comparison.notes,
        )
    return entries


def _entry(record: dict[str, Any], ratio: dict[str, Any], notes) -> dict[str, Any]:
    record["ratio"] = ratio
    record["notes"] = list(notes)
    return record
