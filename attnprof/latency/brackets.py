"""Bracketed rounds: every variant's sample sits between two samples of its baseline.

Caveats first: the baseline is sampled once more than every variant of its condition, so a
round of ``k`` variants takes ``2k + 1`` samples where one sample per arm would take ``k + 1``;
and every sample starts right after another arm's, in the cache state that arm left (the same
for both sides of every ratio, but not the state of a loop that calls one model only).

Why: on a shared CPU the machine's speed drifts over seconds (on the 2-core VM this was
measured on, the time of one ResNet-50 forward correlates 0.81 with the next call's, and a
baseline forward took a median 54 ms in one 10-second stretch and 71 ms thirty seconds later).
A ratio of two samples taken a round apart carries that drift; a variant compared with the
geometric mean of the baseline samples right before and right after it cancels drift that is
linear over those three samples. Measured there (ResNet-50 none/SE/SGE/SA, batch 1, ten fresh
processes of each design, one of each in turn): the per-process Δ scattered with a standard
deviation of 1.6 / 1.5 / 4.5 points with 8 bracketed rounds of one-forward samples, against
4.3 / 6.5 / 7.6 with 6 rounds of one 0.125-second sample per arm, in less time (7.8 s
a process against 11.0 s). What bracketing cannot remove is a Δ that itself moves with the
machine's state (SA's memory-bound operators cost +10% in a stretch where the plain forward
took 54 ms and +23% where it took 71 ms): that part only more processes average out.

A round is the sequence :func:`bracketed_sequence` makes: for each condition (in shuffled
order) its baseline, then each variant (shuffled) followed by the baseline again.
:class:`BracketedRound` turns the samples of one round into each arm's sample (the baseline's
is the geometric mean of its samples) and each variant's *reference*: the baseline bracket
its ratio is taken against.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import geometric_mean

from attnprof.errors import AttnprofError


@dataclass(frozen=True)
class BracketPlan:
    """Which baseline brackets which variants: ``conditions`` lists, per condition, its
    baseline arm key and its variants' arm keys; ``reference`` maps each variant to its
    baseline."""

    conditions: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def reference(self) -> dict[str, str]:
        return {variant: baseline for baseline, variants in self.conditions
                for variant in variants}


def bracket_plan(groups: Sequence[tuple[str, Sequence[str]]]) -> BracketPlan:
    """The plan for ``(baseline key, variant keys)`` per condition; a condition without
    variants is timed alone (its baseline once a round), a key named twice is refused."""
    seen: set[str] = set()
    for baseline, variants in groups:
        for key in (baseline, *variants):
            if key in seen:
                raise AttnprofError(f"arm {key!r} appears twice in one process's rounds")
            seen.add(key)
    return BracketPlan(tuple((baseline, tuple(variants)) for baseline, variants in groups))


def bracketed_sequence(plan: BracketPlan, rng: random.Random | None) -> tuple[str, ...]:
    """One round's order: per condition, ``B V1 B V2 B ... Vk B``; conditions and variants
    shuffled by ``rng`` (kept in the given order without one)."""
    conditions = list(plan.conditions)
    if rng is not None:
        rng.shuffle(conditions)
    sequence: list[str] = []
    for baseline, variants in conditions:
        order = list(variants)
        if rng is not None:
            rng.shuffle(order)
        sequence.append(baseline)
        for variant in order:
            sequence += [variant, baseline]
    return tuple(sequence)


@dataclass(frozen=True)
class BracketedRound:
    """One round: its ``sequence``, each arm's sample in ms (``times``) and calls behind it
    (``calls``; a baseline's: over all its samples in the round), each variant's baseline
    bracket in ms (``references``), and the other CPUs' load over the round."""

    sequence: tuple[str, ...]
    times: dict[str, float]
    calls: dict[str, int]
    references: dict[str, float]
    other_cpus: float | None

    @classmethod
    def of(cls, sequence: Sequence[str], taken: Sequence[tuple[float, int]],
           reference: Mapping[str, str], other_cpus: float | None) -> BracketedRound:
        """From the samples ``taken`` in ``sequence`` (one ``(ms per call, calls)`` each);
        ``reference`` maps each variant to its baseline (:attr:`BracketPlan.reference`)."""
        if len(sequence) != len(taken):
            raise AttnprofError(f"a round of {len(sequence)} arms has {len(taken)} samples")
        per_arm: dict[str, list[float]] = {}
        calls: dict[str, int] = {}
        references: dict[str, float] = {}
        for position, (key, (ms, count)) in enumerate(zip(sequence, taken, strict=True)):
            per_arm.setdefault(key, []).append(ms)
            calls[key] = calls.get(key, 0) + count
            if key in reference:
                inside = 0 < position < len(sequence) - 1
                if not inside or not (sequence[position - 1] == sequence[position + 1]
                                      == reference[key]):
                    raise AttnprofError(f"variant {key!r} is not bracketed by its baseline "
                                        f"{reference[key]!r} in this round")
                references[key] = geometric_mean((taken[position - 1][0],
                                                  taken[position + 1][0]))
        times = {key: geometric_mean(values) for key, values in per_arm.items()}
        return cls(tuple(sequence), times, calls, references, other_cpus)
