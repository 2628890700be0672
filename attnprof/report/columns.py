"""The column contract: every column the reports show, with its name, unit and format, once.

Caveat first: a column's ``key`` is its name in the cell frame and in results.csv, where the
figure is stored in its base unit (a count, MACs, FLOPs, bytes, ms, seconds, a percentage);
its ``header`` is what the Markdown and terminal tables print, with the unit the text shows
(``M``, ``GMAC``, ``MB``, ...), and ``text`` turns the stored figure into that. So the CSV says
``paper_MAC = 4122000000`` where report.md says ``paper (GMAC) = 4.122``: one figure, two
scales, both named here. A renderer never spells a header or picks a precision itself.

The frame's columns come in families (per convention, per timing condition); the functions
below make the columns of one member, so that :func:`attnprof.report.tables.cell_frame`, the
CSV writer and the text tables all take a family's names from the same place. Columns of the
Markdown's own tables (verdicts, runtimes, builds, the breakdown) are here too: their values
are the typed rows of the computing modules, which their ``text`` formats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from attnprof.report.formats import (
    DASH,
    fmt_error,
    fmt_giga,
    fmt_interval,
    fmt_mb,
    fmt_millions,
    fmt_ms,
    fmt_pct,
    fmt_plain,
    fmt_share,
    fmt_signed_ms,
    is_missing,
)


def _text(value: Any) -> str:
    return DASH if is_missing(value) or value == "" else str(value)


@dataclass(frozen=True)
class Column:
    """One column: ``key`` (frame and CSV name, ending in the unit it stores), ``label`` (the
    words of its header), ``unit`` (as the text tables show it; empty for text), ``text``
    (stored value -> shown text), ``description`` (what it holds), and for the CSV
    ``integer`` (a count written as a whole number when it is one) or ``digits`` (rounding
    of a measurement; ``None``: as stored). ``interval``: the shown value carries its 95%
    interval, and the header says so."""

    key: str
    label: str
    unit: str = ""
    text: Callable[[Any], str] = _text
    description: str = ""
    integer: bool = False
    digits: int | None = None
    interval: bool = False
    left: bool = False
    """Left-aligned although it has a unit (a list of figures, read as text)."""

    @property
    def header(self) -> str:
        """``Δ params (%)``, ``cpu b1 Δ latency (%) [95% CI]``, ``variant``."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{unit}" + (" [95% CI]" if self.interval else "")

    def show(self, value: Any) -> str:
        """The value as the text tables show it; a word in a numeric column (``failed``)
        stays as it is."""
        if isinstance(value, str) and self.numeric:
            return value
        return self.text(value)

    @property
    def numeric(self) -> bool:
        return bool(self.unit)

    @property
    def align(self) -> str:
        """``r`` for numbers, ``l`` for names and words."""
        return "l" if self.left or not self.numeric else "r"


class Condition(Protocol):
    """What a timing column is of (:class:`attnprof.report.tables.LatencyKey`)."""

    @property
    def column(self) -> str: ...

    @property
    def label(self) -> str: ...


def text(key: str, label: str | None = None, description: str = "") -> Column:
    """A column of names or words."""
    return Column(key, label or key, description=description)


def _pct(digits: int) -> Callable[[Any], str]:
    return lambda value: fmt_pct(value, digits)


def _plain(digits: int) -> Callable[[Any], str]:
    return lambda value: fmt_plain(value, digits)


def _interval(value: Any) -> str:
    """``(delta, (lo, hi))`` or ``(delta, None)``: ``+20.0 [+15.0, +25.0]``."""
    if value is None:
        return DASH
    delta, ci = value
    lo, hi = ci if ci else (None, None)
    return fmt_interval(delta, lo, hi)


def _median_iqr(value: Any) -> str:
    """``(median, iqr)``: ``19.95 ± 2.86`` (a word, such as ``failed``, as it is)."""
    if isinstance(value, str):
        return value
    if value is None or is_missing(value[0]):
        return DASH
    median, iqr = value
    return fmt_ms(median) + ("" if is_missing(iqr) else f" ± {fmt_ms(iqr, like=median)}")


# -- the cell frame: identity ---------------------------------------------------------------------

ID = text("id", description="backbone|variant|setting")
BACKBONE = text("backbone")
SETTING = text("setting", description="head@HxW")
VARIANT = text("variant")
ATTENTION = text("attention", description="the attention module's name or import path")
STATUS = text("status", description="ok or error")
NONFINITE = text("nonfinite_output", "non-finite output",
                 "where the output first held NaN or inf on the profiling input")
ERROR = text("error", description="why the cell (or one of its timings) failed")

# -- the cell frame: parameters and counts -------------------------------------------------------

PARAMS = Column("params_count", "params", "M", fmt_millions, "parameters", integer=True)
PARAMS_DELTA = Column("params_delta_pct", "Δ params", "%", _pct(2),
                      "parameters against the baseline's", digits=4)
ATTENTION_PARAMS = Column("attention_params_count", "attention params", "M", fmt_millions,
                          "parameters inside the attention modules", integer=True)


def count(name: str, unit: str) -> Column:
    """One forward's MACs or FLOPs under convention ``name``."""
    return Column(f"{name}_{unit}", name, f"G{unit}", fmt_giga,
                  f"{unit}s of one forward under {name}", integer=True)


def reported_params(name: str) -> Column:
    """The parameter count a convention's tool reports of its own (thop's skips parameters a
    module owns directly), shown for every convention whose counts carry one."""
    return Column(f"{name}_reported_params_count", f"{name}'s params", "M", fmt_millions,
                  f"the parameters {name}'s counting tool reports itself (it may miss some)",
                  integer=True)


def count_delta(name: str) -> Column:
    return Column(f"{name}_delta_pct", f"Δ {name}", "%", _pct(2),
                  f"{name}'s count against the baseline's", digits=4)


def attention_count(name: str, unit: str) -> Column:
    return Column(f"{name}_attention_{unit}", f"{name} attention", f"M{unit}", fmt_millions,
                  f"the attention modules' {unit}s under {name}", integer=True)


def bytes_moved(name: str, said: bool = True) -> Column:
    """Bytes one forward moves under ``name`` (``said``: the header names the convention)."""
    return Column(f"{name}_bytes", f"{name} bytes moved" if said else "bytes moved", "MB",
                  fmt_mb, f"bytes read and written by one forward under {name}",
                  integer=True)


def bytes_delta(name: str, said: bool = True) -> Column:
    return Column(f"{name}_bytes_delta_pct", f"Δ {name} bytes" if said else "Δ bytes", "%",
                  _pct(2), f"{name}'s bytes moved against the baseline's", digits=4)


def attention_bytes(name: str) -> Column:
    return Column(f"{name}_attention_bytes", f"{name} attention bytes", "MB", fmt_mb,
                  f"bytes the attention modules move under {name}", integer=True)


def intensity(name: str, unit: str, said: bool = True) -> Column:
    return Column(f"{name}_{unit}_per_byte", f"{name} intensity" if said else "intensity",
                  f"{unit}/byte", _plain(1), f"{unit}s per byte moved under {name}",
                  digits=4)


def attention_intensity(name: str, unit: str, said: bool = True) -> Column:
    return Column(f"{name}_attention_{unit}_per_byte",
                  f"{name} attention intensity" if said else "attention intensity",
                  f"{unit}/byte", _plain(2),
                  f"the attention modules' {unit}s per byte they move under {name}", digits=4)


# -- the cell frame: the training step (full) -----------------------------------------------------

TRAIN_FLOP = Column("train_FLOP", "train step", "GFLOP", fmt_giga,
                    "FLOPs of one training step under full", integer=True)
TRAIN_DELTA = Column("train_delta_pct", "Δ train step", "%", _pct(2), digits=4)
TRAIN_FORWARD = Column("train_forward_FLOP", "train forward", "GFLOP", fmt_giga, integer=True)
TRAIN_FORWARD_DELTA = Column("train_forward_delta_pct", "Δ train forward", "%", _pct(2),
                             digits=4)
TRAIN_BACKWARD = Column("train_backward_FLOP", "train backward", "GFLOP", fmt_giga,
                        integer=True)
TRAIN_BACKWARD_DELTA = Column("train_backward_delta_pct", "Δ train backward", "%", _pct(2),
                              digits=4)
TRAIN_BYTES = Column("train_bytes", "bytes moved", "MB", fmt_mb,
                     "bytes one training step moves under full", integer=True)
TRAIN_BYTES_DELTA = Column("train_bytes_delta_pct", "Δ bytes", "%", _pct(1), digits=4)
TRAIN_ACTIVATIONS = Column("train_activation_bytes", "activations saved", "MB", fmt_mb,
                           "bytes of the tensors autograd saves for the backward",
                           integer=True)
TRAIN_ACTIVATIONS_DELTA = Column("train_activation_bytes_delta_pct", "Δ activations", "%",
                                 _pct(1), digits=4)
TRAIN_ATTENTION_ACTIVATIONS = Column("train_attention_activation_bytes",
                                     "attention's activations", "MB", fmt_mb, integer=True)
TRAIN_RATIO = Column("train_backward_per_forward_ratio", "backward / forward", "ratio",
                     _plain(2), "the backward's FLOPs over the forward's")

TRAINING = {  # the training step's frame columns, each with what it reads of the count
    TRAIN_FLOP: lambda t: t.value,
    TRAIN_FORWARD: lambda t: t.forward,
    TRAIN_BACKWARD: lambda t: t.backward,
    TRAIN_BYTES: lambda t: t.bytes,
    TRAIN_ACTIVATIONS: lambda t: t.activation_bytes,
    TRAIN_ATTENTION_ACTIVATIONS: lambda t: t.attention_activation_bytes,
}
TRAINING_DELTAS = {TRAIN_FLOP: TRAIN_DELTA, TRAIN_FORWARD: TRAIN_FORWARD_DELTA,
                   TRAIN_BACKWARD: TRAIN_BACKWARD_DELTA, TRAIN_BYTES: TRAIN_BYTES_DELTA,
                   TRAIN_ACTIVATIONS: TRAIN_ACTIVATIONS_DELTA}


# -- the cell frame: one timing condition ---------------------------------------------------------


@dataclass(frozen=True)
class TimingColumns:
    """The frame's columns of one timing condition (``cpu_b1_...``)."""

    median: Column
    iqr: Column
    ci_lo: Column
    ci_hi: Column
    delta: Column
    delta_lo: Column
    delta_hi: Column
    throughput: Column
    peak_memory: Column
    ci_over: Column
    processes: Column
    rounds: Column
    disagreement: Column
    stopped: Column
    build: Column
    check: Column


def timing(key: Condition) -> TimingColumns:
    """Every frame column of ``key``'s timing (see :class:`TimingColumns`)."""
    p, label = key.column, key.label
    return TimingColumns(
        median=Column(f"{p}_median_ms", f"{label} median", "ms", fmt_ms,
                      "median time per call (a forward, or a training step)", digits=4),
        iqr=Column(f"{p}_iqr_ms", f"{label} IQR", "ms", fmt_ms,
                   "interquartile range of the samples", digits=4),
        ci_lo=Column(f"{p}_ci95_lo_ms", f"{label} median, 95% low", "ms", fmt_ms, digits=4),
        ci_hi=Column(f"{p}_ci95_hi_ms", f"{label} median, 95% high", "ms", fmt_ms, digits=4),
        delta=Column(f"{p}_delta_pct", f"{label} Δ latency", "%", _pct(1),
                     "paired Δ latency against the baseline timed in the same rounds",
                     digits=4),
        delta_lo=Column(f"{p}_delta_ci95_lo_pct", f"{label} Δ latency, 95% low", "%",
                        _pct(1), digits=4),
        delta_hi=Column(f"{p}_delta_ci95_hi_pct", f"{label} Δ latency, 95% high", "%",
                        _pct(1), digits=4),
        throughput=Column(f"{p}_images_per_s", f"{label} throughput", "img/s", _plain(1),
                          "images per second at the median", digits=3),
        peak_memory=Column(f"{p}_peak_mem_bytes", f"{label} peak memory", "MB", fmt_mb,
                           "peak memory of one call", integer=True),
        ci_over=text(f"{p}_ci_over", f"{label} interval over",
                     "processes (holds for a new run) or rounds (this process only)"),
        processes=Column(f"{p}_processes_count", f"{label} processes", "count", _plain(0),
                         "fresh processes behind the interval", integer=True),
        rounds=Column(f"{p}_rounds_count", f"{label} rounds", "count", _plain(0),
                      "paired rounds in all", integer=True),
        disagreement=Column(f"{p}_disagreement_pvalue", f"{label} disagreement", "p",
                            fmt_error, "Kruskal-Wallis p-value across processes"),
        stopped=text(f"{p}_stopped", f"{label} stopped",
                     "why no more processes were taken (attnprof.latency.records.STOP_REASONS)"),
        build=Column(f"{p}_build_s", f"{label} build", "s", _plain(1),
                     "compiling or exporting once per run, timed apart", digits=3),
        check=text(f"{p}_output_check", f"{label} output check",
                   "ok: the built model's outputs match eager's within the mode's tolerance"),
    )


# -- the verdict ---------------------------------------------------------------------------------

MARKS = {"holds": "✓", "refuted": "✗", "inconclusive": "?", "not measured": ""}
"""The mark beside a judged figure, by outcome."""


def _judged(digits: int) -> Callable[[Any], str]:
    """A :class:`~attnprof.report.claims.ClaimCheck`: its Δ and its outcome's mark."""

    def shown(check: Any) -> str:
        if check is None or check.delta_pct is None:
            return DASH
        lo, hi = check.ci95_pct or (None, None)
        number = (fmt_interval(check.delta_pct, lo, hi) if check.ci95_pct is not None
                  or digits == 1 else fmt_pct(check.delta_pct, digits))
        mark = MARKS.get(check.outcome.value, "")
        return f"{number} {mark}".rstrip()

    return shown


def _latency_cell(cell: Any) -> str:
    """A :class:`~attnprof.report.verdict.LatencyCell`: the judged interval, or why none."""
    if cell is None:
        return DASH
    return cell.failed_text or _judged(1)(cell.check)


VERDICT_PARAMS = Column("params_delta_pct", "Δ params", "%", _judged(2),
                        "parameters against the baseline's, judged against the claim")


def verdict_count(convention: str, unit: str) -> Column:
    return Column(f"{convention}_delta_pct", f"Δ {convention} {unit}s", "%", _judged(2),
                  f"{unit}s under {convention} against the baseline's, judged")


def verdict_latency(key: Condition) -> Column:
    return Column(f"{key.column}_delta_pct", f"{key.label} Δ latency", "%", _latency_cell,
                  "paired Δ latency with its interval, judged", interval=True)


def _replication(cell: Any) -> str:
    """A :class:`~attnprof.report.verdict.LatencyCell`: what stands behind its interval."""
    return DASH if cell is None else cell.behind


def behind(key: Condition) -> Column:
    return Column(f"{key.column}_behind", f"{key.label}: processes · stop",
                  text=_replication,
                  description="fresh processes (x rounds each) and why no more were taken")


VERDICT = text("verdict", description="the claim of almost no extra cost, over this row")
GROUP = text("group", "backbone · setting")

# -- runtimes (passes and modes) -----------------------------------------------------------------

def runtime_delta(mode: str) -> Column:
    return Column(f"{mode}_delta_pct", f"Δ {mode}", "%", _interval,
                  f"paired Δ latency in {mode}", interval=True)


def runtime_delta_ms(mode: str) -> Column:
    return Column(f"{mode}_delta_ms", f"Δ {mode}", "ms", fmt_signed_ms,
                  f"the same Δ in ms: the baseline's median in {mode} times the Δ%")


RECOVERED = Column("recovered_pct", "recovered", "%", _plain(0),
                   "1 − Δ ms in the mode / Δ ms eager, where eager's overhead is established")

# -- builds --------------------------------------------------------------------------------------

MODE = text("mode")
PASS = text("pass")
BUILD_S = Column("build_s", "build", "s", _plain(1),
                 "compiling or exporting the model once per run (or, in older files, the "
                 "median first call)")
MAX_ABS_ERR = Column("max_abs_err", "max abs error", "output units", fmt_error,
                     "largest |built − eager| over the output nearest to failing")
MAX_REL_ERR = Column("max_rel_err", "max rel error", "ratio", fmt_error,
                     "max abs error over the largest |eager| of that output")
TOLERANCE = text("tolerance", "allowed (atol, rtol)")
CHECK = text("check", "outputs match", "within atol + rtol × max |eager| for every output")

# -- where the time goes -------------------------------------------------------------------------

OPS_PER_BLOCK = Column("ops_per_module", "attention ops per module", "calls", _text,
                       "operator calls of one attention module per forward (fewest–most)")
ATTENTION_OPS = Column("attention_ops_count", "attention ops in all", "calls", _plain(0),
                       "operator calls of every attention module per forward")
EXTRA_OPS = Column("extra_ops_count", "extra ops", "calls", lambda v: fmt_pct(v, 0),
                   "operator calls per forward beyond the baseline's")
ATTENTION_MS = Column("attention_ms", "attention time", "ms", fmt_ms,
                      "measured time inside the attention modules per forward, profiled")
PROFILED_DELTA_MS = Column("profiled_delta_ms", "profiled Δ", "ms", fmt_signed_ms,
                           "mean profiled forward minus the baseline's")
SHARE = Column("share_pct", "share of Δ", "%", fmt_share,
               "attention time over the profiled Δ")
ATTENTION_MFLOP = Column("attention_FLOP", "attention", "MFLOP", fmt_millions,
                         "full count of the attention operators' FLOPs")
ATTENTION_MB = Column("attention_bytes", "attention", "MB", fmt_mb,
                      "full count of the bytes the attention operators move")
HEAVIEST = text("heaviest", "longest operators (ms)",
                "the attention operators that took longest, summed over modules")

DELTA_MS = Column("delta_ms", "Δ latency", "ms", fmt_signed_ms,
                  "the Δ explained: the paired timing's where there is one")
DELTA_SOURCE = text("delta_source", "Δ from")
DELTA_MB = Column("delta_bytes", "Δ bytes", "MB", fmt_mb, "extra bytes moved (full)")
BYTES_PART = Column("bytes_ms", "bytes explain", "ms", fmt_signed_ms,
                    "Δ bytes at the probed bandwidth")
CALLS_PART = Column("calls_ms", "extra ops explain", "ms", fmt_signed_ms,
                    "extra operator calls at the probed fixed cost per operator")
LEFT_PART = Column("left_ms", "left", "ms", fmt_signed_ms, "what neither explains")
BYTES_SHARE = Column("bytes_share_pct", "bytes", "% of Δ", fmt_share)
CALLS_SHARE = Column("calls_share_pct", "extra ops", "% of Δ", fmt_share)
LEFT_SHARE = Column("left_share_pct", "left", "% of Δ", fmt_share)

# -- the machine's limits ------------------------------------------------------------------------

MEASURED_MS = Column("measured_ms", "measured", "ms", fmt_ms)
BOUND_MS = Column("bound_ms", "roofline bound", "ms", fmt_ms)
BOUND_BY = text("bound_by", "bound by")
OF_BOUND = Column("of_bound_pct", "of bound", "%", _plain(0))
ACHIEVED_FLOPS = Column("achieved_GFLOP_per_s", "achieved", "GFLOP/s",
                        lambda v: fmt_plain(None if is_missing(v) else v / 1e9, 1))
ACHIEVED_BYTES = Column("achieved_GB_per_s", "achieved", "GB/s",
                        lambda v: fmt_plain(None if is_missing(v) else v / 1e9, 1))
LIMIT_DELTA_MB = Column("delta_bytes", "Δ bytes", "MB", fmt_mb)
BYTES_ALONE_MS = Column("bytes_alone_ms", "Δ bytes alone", "ms", fmt_ms)
DELTA_MEASURED_MS = Column("delta_ms", "Δ measured", "ms", fmt_ms)
OVER_BYTES_ALONE = Column("over_bytes_alone", "measured / bytes alone", "×",
                          lambda v: fmt_plain(v, 1))

# -- timings -------------------------------------------------------------------------------------


def median_iqr(key: Condition) -> Column:
    return Column(f"{key.column}_median_ms", f"{key.label} median ± IQR", "ms", _median_iqr)


def throughput(key: Condition) -> Column:
    return Column(f"{key.column}_images_per_s", f"{key.label} throughput", "img/s", _plain(1))


# -- where the attention cost sits ---------------------------------------------------------------


def attention_total(unit: str) -> Column:
    return Column("attention_total", "attention", f"M{unit}", fmt_millions)


def per_stage(unit: str) -> Column:
    return Column("per_stage", "per stage", f"M{unit}", _text, left=True)


ATTENTION_PLACE_MB = Column("attention_bytes", "attention", "MB", fmt_mb)
PER_STAGE_MB = Column("per_stage_bytes", "per stage", "MB", _text, left=True)
HEAVIEST_BYTES = text("heaviest_bytes", "heaviest operators")
