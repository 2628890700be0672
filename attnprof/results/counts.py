"""Typed records of what was counted: one :class:`ConventionCount` per convention, gathered into
one :class:`ProfileRecord` per model (a results cell's ``profile``).

Records hold raw integers; derived figures (giga units, shares, arithmetic intensity) are
properties, so a record read back from JSON gives the same answers as the one that was written.
``to_dict`` produces the JSON object that ``attnprof profile --json`` prints and ``from_dict``
reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attnprof.counting.conventions import UNITS
from attnprof.errors import AttnprofError
from attnprof.latency.records import LatencyRecord, ModuleTiming
from attnprof.records_json import JsonRecord, encode

_OPTIONAL_COUNTS = ("bytes", "attention_bytes", "reported_params")
"""Written only where counted (``full`` counts bytes, ``thop`` its own parameters)."""


@dataclass(frozen=True)
class Breakdown(JsonRecord):
    """Where a count sits: per module and per operator, each summing exactly to the total.

    ``by_module`` maps a module's qualified name to the part of the count spent in that module
    itself, outside its children (``""``: in the model's own forward, outside every
    submodule), so the values sum to the convention's total; a module's whole subtree is the sum
    over its name and the names below it (:func:`attnprof.counting.breakdown.inclusive`).
    ``by_op`` splits the same total by operator: aten ops for ``full``, what the counter names
    for the others (module types for ``paper`` and ``thop``, fvcore's operator names).
    ``bytes_by_module`` / ``bytes_by_op`` split the bytes moved, where counted (``full``).
    ``attention`` maps each attention module's name to its stage (``None`` when unknown).
    """

    by_module: dict[str, int]
    by_op: dict[str, int]
    bytes_by_module: dict[str, int] | None = None
    bytes_by_op: dict[str, int] | None = None
    attention: dict[str, int | None] = field(default_factory=dict)
    attention_by_op: dict[str, int] | None = None
    """The part of ``by_op`` spent inside attention modules (rules conventions only)."""
    attention_bytes_by_op: dict[str, int] | None = None


@dataclass(frozen=True)
class AttentionSplit(JsonRecord):
    """Where the attention part of a count sits: summed per stage (``"1"`` .. ``"4"``, ``"?"``
    where a module has no stage) and, where the convention prices ops, per operator.

    The part of a :class:`Breakdown` a suite stores for every cell (a whole breakdown per cell
    would dwarf the results file); ``bytes_*`` where bytes were counted.
    """

    by_stage: dict[str, int]
    by_op: dict[str, int] | None = None
    bytes_by_stage: dict[str, int] | None = None
    bytes_by_op: dict[str, int] | None = None


@dataclass(frozen=True)
class ConventionCount:
    """The operation count of one model under one counting convention.

    ``value`` and ``attention`` are in ``unit``; ``attention`` is the part of ``value`` spent
    inside the model's attention modules. ``uncounted`` names what ran and counted 0 under the
    convention (an op or module type -> how many times), so nothing is hidden. ``bytes`` and
    ``attention_bytes`` (memory traffic, eager and unfused) only come with the ``full``
    convention; ``reported_params`` is the counting tool's own parameter count where it has one
    (thop), which need not equal the model's.
    """

    convention: str
    unit: str
    value: int
    attention: int | None
    uncounted: dict[str, int] = field(default_factory=dict)
    description: str = ""
    bytes: int | None = None
    attention_bytes: int | None = None
    reported_params: int | None = None
    breakdown: Breakdown | None = None
    """Per module and per operator, when asked for (``profile(..., breakdown=True)``)."""
    attention_split: AttentionSplit | None = None
    """The attention part per stage and operator (what a suite keeps of the breakdown)."""

    def __post_init__(self):
        if self.unit not in UNITS:
            raise AttnprofError(f"unit {self.unit!r} is invalid; valid units: {', '.join(UNITS)}")

    @property
    def giga(self) -> float:
        """``value`` in billions of ``unit`` (GMAC or GFLOP)."""
        return self.value / 1e9

    @property
    def attention_giga(self) -> float | None:
        return None if self.attention is None else self.attention / 1e9

    @property
    def attention_share(self) -> float | None:
        """The fraction of ``value`` spent inside attention modules (0 when ``value`` is 0)."""
        if self.attention is None:
            return None
        return self.attention / self.value if self.value else 0.0

    @property
    def intensity(self) -> float | None:
        """Arithmetic intensity in ``unit`` per byte moved, where bytes were counted."""
        return self.value / self.bytes if self.bytes else None

    @property
    def attention_intensity(self) -> float | None:
        if self.attention is None or not self.attention_bytes:
            return None
        return self.attention / self.attention_bytes

    def to_dict(self) -> dict[str, Any]:
        data = encode(self, ("convention", "description", "value", "unit", "attention"))
        counted = encode(self, ("uncounted", *_OPTIONAL_COUNTS, "breakdown", "attention_split"))
        return {**data, **{key: value for key, value in counted.items() if value is not None}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], convention: str | None = None) -> ConventionCount:
        """Read :meth:`to_dict`'s output; ``convention`` names it when the dict does not."""
        try:
            return cls(
                convention=data.get("convention", convention or ""),
                unit=data["unit"],
                value=int(data["value"]),
                attention=_optional_int(data.get("attention")),
                uncounted={str(k): int(v) for k, v in data.get("uncounted", {}).items()},
                description=data.get("description", ""),
                **{key: _optional_int(data.get(key)) for key in _OPTIONAL_COUNTS},
                breakdown=(Breakdown.from_dict(data["breakdown"])
                           if data.get("breakdown") is not None else None),
                attention_split=(AttentionSplit.from_dict(data["attention_split"])
                                 if data.get("attention_split") is not None else None),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AttnprofError(f"not a convention count ({convention or '?'}): {exc!r}") from None


@dataclass(frozen=True)
class TrainingCount(JsonRecord):
    """What one training step costs under ``full``: the forward and the backward apart, in
    FLOPs and bytes moved, and the activation memory autograd keeps between them.

    Sums over the aten ops that actually ran (forward in train mode, the stand-in loss of
    :func:`attnprof.passes.loss_of`, backward), never a fixed multiple of the forward; the
    first layer computes no input gradient, so its backward costs one forward, not two.
    ``activation_bytes`` are the bytes of the distinct storages autograd saves for backward
    (saved-tensor hooks), parameters and buffers excluded; ``attention_*`` the parts of them
    inside attention modules (the backward's part where the counter could attribute it).
    The optimizer step is not counted. ``uncounted`` names ops that ran without a rule.
    """

    forward: int
    backward: int
    forward_bytes: int
    backward_bytes: int
    activation_bytes: int
    unit: str = "FLOP"
    convention: str = "full"
    attention_forward: int | None = None
    attention_backward: int | None = None
    attention_activation_bytes: int | None = None
    uncounted: dict[str, int] = field(default_factory=dict)
    loss: str = ""

    @property
    def value(self) -> int:
        """Forward plus backward, in ``unit``."""
        return self.forward + self.backward

    @property
    def bytes(self) -> int:
        return self.forward_bytes + self.backward_bytes

    @property
    def backward_ratio(self) -> float | None:
        """Backward over forward: about 2 for a network of convolutions, never assumed."""
        return self.backward / self.forward if self.forward else None


@dataclass(frozen=True)
class NonFinite(JsonRecord):
    """Where a model's output stopped being finite on the profiling input.

    One real forward on the CPU (the counted batch, standard-normal values drawn with seed 0,
    as the latency timer draws them): ``module`` is the first module, in the order the forward
    finished them, whose output holds a NaN or an infinity (``""``: the model's own forward,
    outside every module), ``type`` its class, ``attention`` the attention module it is or
    lies inside (``None`` outside them). A latency measured on such data need not be the
    latency of real data, and the model is broken on this input.
    """

    module: str
    type: str
    attention: str | None
    nan: bool
    inf: bool
    input: tuple[int, ...]

    @property
    def values(self) -> str:
        return " and ".join(v for v, found in (("NaN", self.nan), ("inf", self.inf)) if found)

    def describe(self) -> str:
        """``NaN from layer4.0.attention (SGE, an attention module)`` in words."""
        where = self.module or "the model's own forward"
        if self.attention is None:
            inside = ""
        elif self.attention == self.module:
            inside = ", an attention module"
        else:
            inside = f", inside attention module {self.attention}"
        return f"{self.values} from {where} ({self.type}{inside})"

    def warning(self, what: str) -> str:
        """The one line that flags it: ``what`` names the model (``resnet18 + sge``)."""
        return (f"{what}: the output is not finite on the profiling input "
                f"({'x'.join(map(str, self.input))}, standard normal): {self.describe()} first; "
                "the counts stand, but a latency measured on it need not be that of real data")


@dataclass(frozen=True)
class ProfileRecord:
    """What one model costs: parameters and its operation counts under several conventions.

    ``input`` is the input tensor's shape ``(N, C, H, W)``; ``params`` counts every parameter
    of the model, ``attention_params`` those inside its attention modules (``None`` where a file
    did not record them); ``counts`` maps a convention name to its count, whose unit may be MAC
    or FLOP: read ``unit``.
    """

    backbone: str
    attention: str
    input: tuple[int, int, int, int]
    head: str
    params: int
    attention_params: int | None
    counts: dict[str, ConventionCount]
    options: dict[str, Any] = field(default_factory=dict)
    latency: tuple[LatencyRecord, ...] = ()
    """Forward latency per batch size, when asked for (``profile(..., latency=...)``)."""
    module_latency: tuple[ModuleTiming, ...] = ()
    """Each attention module timed alone on the feature map it sees, when asked for."""
    other_batches: dict[int, dict[str, ConventionCount]] = field(default_factory=dict)
    """The counts at every other requested batch size (``counts`` holds ``input``'s), so a
    batch size is never silently left uncounted."""
    training: TrainingCount | None = None
    """One training step under ``full``, when asked for (``profile(..., train=True)``)."""
    nonfinite: NonFinite | None = None
    """Set when the model's output is not finite on the profiling input (see
    :class:`NonFinite`); ``None`` when it is finite (or was not checked, in older files)."""
    notes: tuple[str, ...] = ()
    """One line each: what the reader of these counts must know (counted on CPU tensors and
    why, parameters that run unregistered, the module's warnings); a non-finite output is
    :attr:`nonfinite`'s to say."""
    warnings: tuple[str, ...] = ()
    """The whole text of each distinct warning the profiled code issued (its note quotes
    them cut to one line)."""

    @property
    def conventions(self) -> list[str]:
        return list(self.counts)

    def to_dict(self) -> dict[str, Any]:
        timings = encode(self, ("latency", "module_latency"))  # only where timed
        other = {str(batch): {name: count.to_dict() for name, count in counts.items()}
                 for batch, counts in self.other_batches.items()}
        return {
            **encode(self, ("backbone", "attention", "options", "input", "head", "params",
                            "attention_params", "counts")),
            **({"other_batches": other} if other else {}),
            **({"training": self.training.to_dict()} if self.training is not None else {}),
            **{key: value for key, value in timings.items() if value},
            **({"nonfinite": self.nonfinite.to_dict()} if self.nonfinite is not None else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], identity: dict[str, Any] | None = None
    ) -> ProfileRecord:
        """Read :meth:`to_dict`'s output. ``identity`` supplies ``backbone``, ``attention``,
        ``input``, ``head`` and ``options`` where ``data`` lacks them (a results cell holds them
        itself, and early results files did not repeat them in the profile)."""
        data = {**(identity or {}), **data}
        try:
            shape = tuple(int(v) for v in data["input"])
            if len(shape) != 4:
                raise ValueError(f"input must be [N, C, H, W], got {data['input']!r}")
            return cls(
                backbone=str(data["backbone"]),
                attention=str(data["attention"]),
                input=shape,  # type: ignore[arg-type]
                head=str(data["head"]),
                params=int(data["params"]),
                attention_params=_optional_int(data.get("attention_params")),
                counts={
                    str(name): ConventionCount.from_dict(entry, name)
                    for name, entry in data["counts"].items()
                },
                options=dict(data.get("options", {})),
                latency=tuple(LatencyRecord.from_dict(r) for r in data.get("latency", ())),
                module_latency=tuple(
                    ModuleTiming.from_dict(t) for t in data.get("module_latency", ())
                ),
                other_batches={
                    int(batch): {str(name): ConventionCount.from_dict(entry, name)
                                 for name, entry in counts.items()}
                    for batch, counts in (data.get("other_batches") or {}).items()
                },
                training=(TrainingCount.from_dict(data["training"])
                          if data.get("training") is not None else None),
                nonfinite=(NonFinite.from_dict(data["nonfinite"])
                           if data.get("nonfinite") is not None else None),
                notes=tuple(str(note) for note in data.get("notes") or ()),
                warnings=tuple(str(text) for text in data.get("warnings") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AttnprofError(f"not a profile record: {exc!r}") from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
