"""How it was measured: what each convention counts, and how every latency was taken.

Caveat first: the latency paragraphs describe what the timings *recorded* (their designs,
rounds and processes, their modes), not the suite's current defaults: an older file was
measured differently, and says so through its records. The allocator state is the suite's as
stored in the file (``system`` for files written before it could be fixed).
"""

from __future__ import annotations

from attnprof.latency.records import DESIGNS, PAIRINGS, STOP_REASONS, Pairing
from attnprof.latency.rounds import CUDA_CACHE_STATE
from attnprof.latency.spec import ALLOCATORS
from attnprof.passes import PASSES
from attnprof.report.model import Report
from attnprof.report.runtimes import mode_description
from attnprof.report.tables import convention_summary
from attnprof.report.verdict import DISAGREE_MARK
from attnprof.results import Cell
from attnprof.suite.config import BASELINE, LatencySettings


def method_section(report: Report) -> str:
    suite = report.suite
    lines = ["## How it was measured", ""]
    for name in report.conventions:
        note = convention_summary(report.document, name)
        lines.append(f"- **{name}** ({report.units[name]}): {note}.")
    moved = report.byte_conventions
    intensity = "; ".join(f"{name} {report.units[name]}s" for name in moved)
    lines += [
        "",
        f"Counts are for one forward pass of a batch of {suite.count_batch}"
        + (" (one image)" if suite.count_batch == 1 else "") + ". "
        f"Δ% is against the `{BASELINE}` baseline of the same backbone and setting. "
        "MB are 10^6 bytes"
        + (f"; arithmetic intensity is {intensity} per byte moved." if moved else "."),
    ]
    if any(c.latency for c in report.cells if c.ok):
        lines += ["", *_latency_paragraphs(report)]
    elif not suite.latency.enabled:
        lines += ["", "Latency: not measured (disabled in the suite)."]
    else:
        lines += ["", "Latency: not measured in these results."]
    claims = report.thresholds
    lines += [
        "",
        f"Claim thresholds: Δ params ≤ {claims.params_pct:g}%, Δ "
        f"{report.claims_unit}s ({claims.convention}) ≤ "
        f"{claims.macs_pct:g}%, Δ latency ≤ {claims.latency_pct:g}%.",
    ]
    return "\n".join(lines)


def _measured_threads(cells: tuple[Cell, ...]) -> str:
    """The thread counts the latency entries recorded, e.g. ``2``; empty when none did."""
    found = sorted({e.threads for c in cells for e in c.latency if e.threads is not None})
    return ", ".join(str(t) for t in found)


def _what(report: Report) -> str:
    """``eager (PyTorch eager ...) and compile (...)``, from the modes the timings recorded."""
    keys = report.latency_keys
    modes = list(dict.fromkeys(k.mode for k in keys))
    said = [f"{mode} ({mode_description(mode) or 'a mode this attnprof does not describe'})"
            for mode in modes]
    what = "; ".join(said)
    passes = list(dict.fromkeys(k.pass_name for k in keys))
    if passes != ["inference"]:
        latency = report.suite.latency
        step = "forward, loss, backward" + (
            f", {latency.optimizer} step" if latency.optimizer != "none" else "")
        what += "; passes: " + "; ".join(
            f"train: a training step, {step}" if p == "train"
            else f"{p}: {PASSES.get(p, 'a pass this attnprof does not describe')}"
            for p in passes)
    return what


def _latency_paragraphs(report: Report) -> list[str]:
    """What was timed, how the intervals were taken, the allocator and cache state."""
    latency, cells = report.suite.latency, report.cells
    threads = latency.threads or "torch default"
    measured_threads = _measured_threads(cells)
    if measured_threads and str(threads) != measured_threads:
        threads = f"{measured_threads} ({threads})" if threads == "torch default" else threads
    layout = "channels_last" if latency.channels_last else "contiguous"
    rounds = "; others in ".join(f"{pairing.rounds}, one sample of ≥ {latency.sample_time} s "
                                 f"of calls {pairing.samples}" for pairing in _pairings(cells))
    head = (f"Latency: {_what(report)}; {latency.dtype}, {layout}; threads: {threads}. Each "
            f"backbone's variants are timed together in {rounds}")
    out = [head + _design(latency, cells)]
    allocator = ALLOCATORS.get(latency.allocator)
    if allocator is not None:
        state = ("the steady state of a long-running server" if latency.allocator == "steady"
                 else "the state a fresh process starts in")
        out += ["", f"Allocator: `{latency.allocator}`, {state}: {allocator}."]
    if any(k.device.startswith("cuda") for k in report.latency_keys):
        out += ["", f"CUDA timings: {CUDA_CACHE_STATE}."]
    return out


def _pairings(cells: tuple[Cell, ...]) -> list[Pairing]:
    """How the rounds paired, as the timings recorded it (files written before bracketed
    rounds paired by round; a merged file may hold both). A baseline's ratio to itself says
    nothing of it and is left out."""
    found = dict.fromkeys(e.ratio.pairing or "round" for c in cells for e in c.latency
                          if e.ok and e.ratio is not None and e.ratio.baseline != c.variant)
    return [PAIRINGS[name] for name in found] or [PAIRINGS["round"]]


def _design(latency: LatencySettings, cells: tuple[Cell, ...]) -> str:
    """The rest of the first paragraph: one sentence per interval design the timings used."""
    ratios = [e.ratio for c in cells for e in c.latency if e.ok and e.ratio is not None]
    designs = {r.design or ("fixed" if r.ci_over == "processes" else "rounds") for r in ratios}
    settle = (f"after warm-up rounds until settled (no model more than "
              f"{latency.settle_tolerance:.0%} faster than in its best earlier warm-up round; "
              f"at most {latency.max_warmup_rounds})")
    sentences = []
    across = [r for r in ratios if r.ci_over == "processes"]
    per = "/".join(map(str, sorted({n for r in across for n in r.rounds_per_process})))
    if "sequential" in designs:
        budget = (f", or once the run's budget of {latency.budget_s:g} s was spent"
                  if latency.budget_s else "")
        plan = latency.replication
        sentences.append(
            f", in fresh processes of {per} rounds each, {settle}, added one at a time: a "
            "comparison took more processes until its 95% interval was at most "
            f"{plan.target_width:g} points wide (decided: {STOP_REASONS['decided']}; near: "
            f"{STOP_REASONS['near']}), or until {plan.max_processes} processes{budget}. Its "
            f"interval is {DESIGNS['sequential']}: valid however many processes were taken, "
            "so stopping once it is narrow does not lower its coverage. Median ± IQR over all "
            "rounds; Δ latency is the median over processes of each process's median ratio to "
            "the baseline timed in the same rounds.")
    if "fixed" in designs:
        fixed = [r.processes for r in across if r.design in (None, "fixed")]
        count = latency.processes or (max(fixed) if fixed else "several")
        sentences.append(
            (" Other comparisons ran" if sentences else ",")
            + f" in {count} fresh processes of {per} rounds each, {settle}. Median ± IQR "
            "over all rounds. Δ latency is the median over processes of each process's "
            "median ratio to the baseline timed in the same rounds; its 95% CI is the "
            "order-statistic interval of those process medians, so it covers what a "
            "new run on this machine gives.")
    if across:
        sentences.append(f" {DISAGREE_MARK}: the processes disagree beyond their rounds' noise "
                         "(Kruskal-Wallis p < 0.01).")
    if "rounds" in designs or not designs:
        rounds = sorted({len(r.values) for r in ratios if r.ci_over != "processes"}) \
            or [latency.rounds]
        sentences.append(
            (" Some comparisons ran" if sentences else ",")
            + f" in one process of {'/'.join(map(str, rounds))} rounds. Median ± IQR over "
            "rounds; Δ latency is the median of per-round ratios to "
            "the baseline timed in the same rounds, with its 95% CI over those rounds: it "
            "describes this one process, not the variation between runs.")
    return "".join(sentences)
