"""Compare two result sets cell by cell: records in, records out (rendering is elsewhere).

- **Counts** (``params``: parameters and attention parameters; ``macs``: every counting
  convention's value) are deterministic, so they must match exactly. Any difference, up or
  down, is a :attr:`~attnprof.compare.stats.Verdict.CHANGED` row and fails the comparison: the
  model or the counting changed, and a person should say whether that was intended.
- **Latency** is judged on ratios to the reference measured in the same rounds (see
  :mod:`attnprof.compare.stats` for the rule), with the unit of replication each file has:
  one value per fresh worker process (the process's median ratio) for attnprof's
  multi-process timings, since rounds of one process share its conditions and are not
  independent; per round for one-process files and pytest-benchmark. When the two sides
  differ, both are judged on rounds. The reference itself (the plain backbone cell, a
  reference benchmark) is shown with its absolute time for context and never judged: its own
  time says more about the machine than about the code.
- A cell that ran in BASE and fails in NEW is a regression; cells present on one side only are
  listed in the notes.
- Every difference between the two files' machines and software (CPU model, ISA extensions,
  caches, torch's build, GPU, Python, OS) is listed in ``machine_differences``, with one note;
  they never fail the comparison. Identical machines give neither.

Cells match by id; latency entries by their key (device and batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from attnprof.compare.loaders import (
    ABSOLUTE,
    PYTEST_BENCHMARK,
    ROLE_CELL,
    Cell,
    Count,
    ResultSet,
    Timing,
)
from attnprof.compare.stats import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    Verdict,
    judge_shift,
    validate_alpha,
    validate_threshold,
)
from attnprof.errors import AttnprofError, choices

METRICS = ("latency", "macs", "params")


@dataclass(frozen=True)
class Source:
    """Where one side of the comparison came from."""

    path: str
    kind: str
    label: str
    machine: str
    commit: str | None
    utc: str | None

    @classmethod
    def of(cls, results: ResultSet) -> Source:
        return cls(results.path, results.kind, results.label, results.machine.describe(),
                   results.commit, results.utc)


@dataclass(frozen=True)
class Change:
    """The comparison of one quantity of one cell."""

    cell: str
    metric: str  # "latency", "params", "macs" or "status"
    quantity: str  # "params", "paper", "cpu/b1", ...
    unit: str  # "params", "MAC", "FLOP", "x" (a ratio) or "ms"
    base: float | None
    new: float | None
    change: float | None
    """Relative change, ``new / base - 1`` (latency: of the medians)."""
    verdict: Verdict
    detail: str
    pvalue: float | None = None
    """Latency: one-sided Mann-Whitney U p-value of new against base."""
    pvalue_margin: float | None = None
    """Latency: the same test against base scaled by ``1 + threshold``."""
    n_base: int | None = None
    n_new: int | None = None
    sample_unit: str | None = None
    """Latency: what ``n_base`` / ``n_new`` count, ``"round"`` or ``"process"``."""
    base_ms: float | None = None
    """Latency: the absolute median times, for context."""
    new_ms: float | None = None
    basis: str | None = None

    @property
    def flagged(self) -> bool:
        return self.verdict.flagged


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``attnprof compare``: one :class:`Change` per judged quantity."""

    base: Source
    new: Source
    threshold: float
    alpha: float
    metrics: tuple[str, ...]
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = field(default=())
    machine_differences: tuple[str, ...] = field(default=())
    """Every difference between the two files' machines and software, one line each
    (``cpu.model: AMD EPYC vs Intel Xeon``, ``torch_build.onednn: 3.5.3 vs 3.12.0``); empty
    when they describe the same machine. See :meth:`attnprof.compare.loaders.Machine.
    differences`."""

    @property
    def flagged(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.flagged)

    @property
    def failed(self) -> bool:
        return bool(self.flagged)

    def by_metric(self, metric: str) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.metric == metric)

    def to_dict(self) -> dict:
        data = asdict(self)
        for change in data["changes"]:
            change["verdict"] = change["verdict"].value
        data["metrics"] = list(self.metrics)
        data["flagged"] = len(self.flagged)
        return data


def parse_metrics(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """``None`` means all; accepts repeated values and comma-separated lists."""
    if values is None:
        return METRICS
    if isinstance(values, str):
        values = [values]
    picked: list[str] = []
    for value in values:
        for part in str(value).split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in METRICS:
                raise AttnprofError(f"unknown metric {part.strip()!r}; valid metrics: "
                                    f"{choices(METRICS)}")
            if name not in picked:
                picked.append(name)
    if not picked:
        raise AttnprofError(f"no metric given; valid metrics: {choices(METRICS)}")
    return tuple(m for m in METRICS if m in picked)


def compare(
    base: ResultSet,
    new: ResultSet,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    metrics: Sequence[str] | str | None = None,
    fail_unpaired: bool = False,
) -> Comparison:
    """Compare ``new`` against ``base``; see the module docstring for the rules.

    ``fail_unpaired``: also fail on a slowdown of a benchmark that has no reference measured in
    the same run (judged on absolute times, which machine noise moves as much as code). By
    default such a slowdown is reported as ``slower, unpaired`` and does not fail.
    """
    threshold = validate_threshold(threshold)
    alpha = validate_alpha(alpha)
    metrics = parse_metrics(metrics)
    if base.kind != new.kind:
        raise AttnprofError(
            f"cannot compare {base.path} ({base.kind}) with {new.path} ({new.kind}): "
            "give two files of the same kind"
        )
    if "latency" in metrics:
        for results in (base, new):
            if results.kind == PYTEST_BENCHMARK and not results.has_raw_samples:
                raise AttnprofError(
                    f"{results.path}: pytest-benchmark JSON without raw timings (stats.data), so "
                    "the significance of a latency change cannot be tested; rerun pytest with "
                    "--benchmark-save-data (needed with --benchmark-save/--benchmark-autosave; "
                    "--benchmark-json always includes them), or pass --metric params,macs"
                )

    machines = tuple(base.machine.differences(new.machine, ("BASE", "NEW")))
    notes = [*base.notes, *(n for n in new.notes if n not in base.notes),
             *_machine_notes(base, new, machines)]
    base_cells, new_cells = base.by_id(), new.by_id()
    only_base = [cid for cid in base_cells if cid not in new_cells]
    only_new = [cid for cid in new_cells if cid not in base_cells]
    if only_base:
        notes.append(f"{len(only_base)} cell(s) only in BASE (removed or renamed): "
                     f"{_short_list(only_base)}")
    if only_new:
        notes.append(f"{len(only_new)} cell(s) only in NEW (not compared): {_short_list(only_new)}")

    changes: list[Change] = []
    for cell_id, before in base_cells.items():
        after = new_cells.get(cell_id)
        if after is None:
            continue
        status = _status_change(before, after)
        if status is not None:
            changes.append(status)
            continue
        for metric in metrics:
            if metric == "latency":
                changes.extend(_latency_changes(before, after, threshold, alpha, fail_unpaired))
            else:
                changes.extend(_count_changes(metric, before, after))
    if not base_cells.keys() & new_cells.keys():
        notes.append("BASE and NEW have no cell in common: nothing was compared")

    absolute = [c for c in changes if c.metric == "latency" and c.basis == ABSOLUTE
                and c.verdict is not Verdict.INFO]
    if absolute:
        consequence = ("and can fail the comparison (--fail-unpaired)" if fail_unpaired else
                       "and only warn: their slowdowns do not fail the comparison")
        notes.append(
            f"{len(absolute)} latency row(s) have no reference measured in the same run: they "
            f"are judged on absolute times, which machine noise moves as much as code does, "
            f"{consequence}"
        )
    return Comparison(Source.of(base), Source.of(new), threshold, alpha, metrics,
                      tuple(changes), tuple(notes), machines)


def _machine_notes(base: ResultSet, new: ResultSet, differences: Sequence[str]
                   ) -> Iterable[str]:
    """One note when the machines differ (the differences themselves are listed apart, in
    :attr:`Comparison.machine_differences`), one when the timings used different thread
    counts (a setting of the run, which a machine's description does not hold)."""
    if differences:
        yield (
            f"BASE and NEW were measured on different machines or software "
            f"({len(differences)} difference{'s' if len(differences) > 1 else ''}, listed under "
            "machine differences): ratios to the reference carry over better than times, but "
            "latency changes may reflect the machines as much as the code"
        )
    a, b = base.machine.threads, new.machine.threads
    if a and b and a != b:
        yield f"different thread counts: {a} (BASE) vs {b} (NEW)"


def _status_change(before: Cell, after: Cell) -> Change | None:
    if before.status == "ok" and after.status == "ok":
        return None
    if before.status == "ok":
        verdict, detail = Verdict.REGRESSION, f"fails in NEW: {after.error}"
    elif after.status == "ok":
        verdict, detail = Verdict.INFO, f"fixed (failed in BASE: {before.error})"
    else:
        verdict, detail = Verdict.INFO, f"fails in both: {after.error}"
    return Change(before.id, "status", "status", "", None, None, None, verdict, detail)


def _count_changes(metric: str, before: Cell, after: Cell) -> list[Change]:
    base = {c.name: c for c in before.counts if c.metric == metric}
    new = {c.name: c for c in after.counts if c.metric == metric}
    rows = []
    for name in [*base, *(n for n in new if n not in base)]:
        a, b = base.get(name), new.get(name)
        unit = (a or b).unit
        if a is None or b is None:
            side = "BASE" if a is None else "NEW"
            rows.append(Change(before.id, metric, name, unit, _value(a), _value(b), None,
                               Verdict.UNTESTABLE, f"not recorded in {side}"))
            continue
        if a.unit != b.unit:
            rows.append(Change(before.id, metric, name, f"{a.unit}->{b.unit}", a.value, b.value,
                               None, Verdict.CHANGED, f"unit changed from {a.unit} to {b.unit}"))
            continue
        if a.value == b.value:
            rows.append(Change(before.id, metric, name, unit, a.value, b.value, 0.0,
                               Verdict.UNCHANGED, "identical"))
            continue
        change = b.value / a.value - 1.0 if a.value else None
        rows.append(Change(before.id, metric, name, unit, a.value, b.value, change,
                           Verdict.CHANGED,
                           f"{b.value - a.value:+,} {unit}: counts must match exactly"))
    return rows


def _value(count: Count | None) -> int | None:
    return None if count is None else count.value


def _latency_changes(before: Cell, after: Cell, threshold: float, alpha: float,
                     fail_unpaired: bool) -> list[Change]:
    base = {t.key: t for t in before.timings}
    new = {t.key: t for t in after.timings}
    rows = []
    for key in [*base, *(k for k in new if k not in base)]:
        a, b = base.get(key), new.get(key)
        if a is None or b is None:
            present = a or b
            side = "BASE" if a is None else "NEW"
            rows.append(Change(before.id, "latency", key, _unit(present), None, None, None,
                               Verdict.UNTESTABLE, f"not measured in {side}",
                               base_ms=a.median_ms if a else None,
                               new_ms=b.median_ms if b else None, basis=present.basis))
            continue
        rows.append(_latency_change(before, after, a, b, threshold, alpha, fail_unpaired))
    return rows


def _latency_change(before: Cell, after: Cell, a: Timing, b: Timing, threshold: float,
                    alpha: float, fail_unpaired: bool) -> Change:
    context = {"base_ms": a.median_ms, "new_ms": b.median_ms, "basis": a.basis}
    if before.role != ROLE_CELL or after.role != ROLE_CELL:
        change = (b.median_ms / a.median_ms - 1.0
                  if a.median_ms and b.median_ms is not None else None)
        return Change(before.id, "latency", a.key, "ms", a.median_ms, b.median_ms, change,
                      Verdict.INFO, "reference, not judged", **context)
    if a.basis != b.basis:
        return Change(before.id, "latency", a.key, _unit(a), None, None, None, Verdict.UNTESTABLE,
                      f"measured differently: BASE {a.basis}, NEW {b.basis}", **context)
    if a.unit != b.unit:  # one file ran one process: judge both on rounds
        a, b = a.per_round(), b.per_round()
    if not a.values or not b.values:
        missing = a if not a.values else b
        side = "BASE" if missing is a else "NEW"
        return Change(before.id, "latency", a.key, _unit(a), None, None, None, Verdict.UNTESTABLE,
                      f"{side}: {missing.note or 'no samples'}", **context)
    judged = judge_shift(a.values, b.values, threshold, alpha)
    verdict, reason = judged.verdict, judged.reason
    if verdict is Verdict.REGRESSION and not a.is_ratio and not fail_unpaired:
        verdict = Verdict.UNPAIRED
        reason += ("; on absolute times (no reference timed in the same run), so it does not "
                   "fail the comparison (--fail-unpaired to make it)")
    return Change(before.id, "latency", a.key, _unit(a), judged.base_median, judged.new_median,
                  judged.change, verdict, reason, pvalue=judged.pvalue,
                  pvalue_margin=judged.pvalue_margin,
                  n_base=judged.n_base, n_new=judged.n_new, sample_unit=a.unit, **context)


def _unit(timing: Timing) -> str:
    return "ms" if timing.basis == ABSOLUTE else "x"


def _short_list(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
