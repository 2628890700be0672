"""Suites: declarative TOML files that say what to build, count, time and claim.

A suite is validated completely before anything runs, and every problem is reported as one
line naming the file, the key, the bad value and what is allowed. The format::

    [suite]
    name = "imagenet"
    description = "..."

    [models]
    backbones = ["resnet50", "resnet101", "mobilenet_v2"]
    models = ["mypkg.nets:my_net",              # optional: the user's own networks
              {model = "mypkg.nets:TheirNet", name = "theirs", options = {width = 2},
               insert_after = "layer*.*.bn2"}]
    variants = ["none", "se", {name = "sge-g32", attention = "sge", options = {groups = 32}},
                {name = "sge", per_backbone = {mobilenet_v2 = {groups = 8}}},
                {name = "sk", backbones = ["resnet50", "resnet101"]}]
    input = 224                  # or [800, 1333] (H, W)
    heads = ["fc"]               # fc, pool, none: one setting per head (backbones only)

    [counting]
    conventions = ["paper", "fvcore", "thop", "full", "conv-linear", "paper-sigmoid"]
    batch = 1

    [conventions.paper-sigmoid]  # optional: a convention of the suite's own, as data
    unit = "MAC"                 # (see attnprof.suite.declared)
    description = "paper, plus one MAC per sigmoid output element"
    base = "paper"
    modules = { Sigmoid = "output" }

    [latency]                    # optional; enabled = false skips timing
    devices = ["cpu"]
    heads = ["fc"]               # optional: time only these settings' heads (default: all)
    batch_sizes = [1]
    # Fresh worker processes, interleaved across the run's groups: by default added until
    # every comparison's interval is at most target_width points of Δ% wide (or its share of
    # the budget is spent); processes = N fixes the count (1, or >= 6).
    target_width = 3.0           # points of Δ%
    max_processes = 40           # at most this many per comparison
    budget = "8 min"             # timing time for the whole run (optional)
    allocator = "steady"         # or "system": the allocator state measured
    attribution = true           # profile each eager CPU group once: where the time goes
    probe = true                 # the machine's limits first (roofline, explanation of Δs)
    rounds = 8                   # measured rounds per process (>= 6 with processes = 1)
    sample_time = 0.05           # seconds of forwards behind each sample (at least one call)
    max_warmup_rounds = 6        # warm-up rounds until settled, at most this many
    settle_tolerance = 0.10      # settled: no model > 10% faster than its best warm-up round
    threads = 0                  # 0: torch's default
    dtype = "float32"
    channels_last = false
    passes = ["inference"]       # and/or "train": a training step, counted and timed
    modes = ["eager"]            # and/or "compile": torch.compile (inductor)
    optimizer = "none"           # or "sgd": the optimizer step inside a timed training step

    [claims]                     # "almost no extra cost" holds when Δ% <= these
    params_pct = 1.0
    macs_pct = 1.0
    latency_pct = 5.0
    convention = "paper"

    [[published]]                # optional: a paper's figures, compared at their printed precision
    backbone = "resnet50"
    variant = "se"
    params = "28.09 M"           # as printed: digits, scale, unit
    cost = "4.130 GMAC"
    convention = "paper"         # the convention the cost was counted in (a counted one)
    source = "SGE paper, Table 1"
    why = ""                     # optional: what is known about a figure that does not reproduce

The ``none`` variant is the baseline every Δ is taken against; a suite must include it.

``passes`` decide what is measured: ``train`` adds each cell's training-step count (forward
and backward under ``full``, activation bytes) and times the training step; every pass is
timed in every mode, each pass x mode x device x batch a paired comparison of its own.
``compile = true`` (the older spelling) means ``modes = ["compile"]``.

A user's network (``models``, see :mod:`attnprof.networks`) is crossed with every variant at
the suite's input, with head ``model`` (what its forward returns); ``backbones`` may then be
empty. A variant's ``per_backbone`` options override its ``options`` on the networks named
(by backbone or model name), and its ``backbones`` list keeps it to those networks.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from attnprof.attention.registry import get_attention_spec
from attnprof.backbones import BACKBONES, HEADS
from attnprof.counting.conventions import (
    CONVENTIONS,
    DEFAULT_CONVENTIONS,
    Convention,
)
from attnprof.errors import AttnprofError, choices
from attnprof.imports import is_import_path
from attnprof.inputs import parse_input
from attnprof.latency.defaults import (
    DEFAULT_MAX_WARMUP_ROUNDS,
    DEFAULT_ROUNDS,
    DEFAULT_SAMPLE_TIME,
    DEFAULT_SETTLE_TOLERANCE,
)
from attnprof.latency.settings import DTYPES
from attnprof.latency.spec import ALLOCATORS, DEFAULT_ALLOCATOR, Replication, replication_plan
from attnprof.networks import USER_HEAD, Network
from attnprof.passes import MODES, OPTIMIZERS, PASSES
from attnprof.results.printed import PrintedFigure
from attnprof.suite.declared import from_data, lookup, parse_declarations

DEVICES = ("cpu", "cuda")
BASELINE = "none"

_INSTALLED = Path(__file__).resolve().parent / "shipped"
SUITES_DIR = _INSTALLED if _INSTALLED.is_dir() else _INSTALLED.parents[2] / "suites"
"""Shipped suites: edited in the top-level ``suites/`` folder, which a wheel installs as
``attnprof/suite/shipped`` (pyproject.toml). A path, not ``importlib.resources``: an editable
install cannot import that folder as a package (outside ``attnprof/``, no ``__init__.py``)."""


@dataclass(frozen=True)
class Variant:
    """One attention variant of a suite: a display name, a registry name and its options.

    ``per_backbone`` maps a network's name to options that override ``options`` there (SGE's
    64 groups do not divide MobileNetV2's 24 channels); ``backbones``, when not empty, keeps the
    variant to those networks (SK replaces a dense 3x3 conv, which MobileNetV2 lacks).
    """

    name: str
    attention: str
    options: dict[str, Any] = field(default_factory=dict)
    per_backbone: dict[str, dict[str, Any]] = field(default_factory=dict)
    backbones: tuple[str, ...] = ()

    def applies_to(self, network: str) -> bool:
        return not self.backbones or network in self.backbones

    def options_for(self, network: str) -> dict[str, Any]:
        """The options the module gets on ``network``."""
        return {**self.options, **self.per_backbone.get(network, {})}


@dataclass(frozen=True)
class Setting:
    """Input size and head: classification (fc at 224) or detection (pool/none at 800x1333)."""

    input_hw: tuple[int, int]
    head: str

    @property
    def label(self) -> str:
        return f"{self.head}@{self.input_hw[0]}x{self.input_hw[1]}"


@dataclass(frozen=True)
class LatencySettings:
    """A suite's ``[latency]`` table as given; :func:`attnprof.suite.runner.timing_spec_of`
    turns it into the validated :class:`~attnprof.latency.spec.TimingSpec` of each group."""

    enabled: bool = True
    devices: tuple[str, ...] = ("cpu",)
    heads: tuple[str, ...] = ()
    """Heads whose settings are timed; empty means every setting's head."""
    batch_sizes: tuple[int, ...] = (1,)
    replication: Replication = field(default_factory=Replication)
    """How many fresh processes stand behind each interval (``processes``,
    ``max_processes``, ``target_width`` in the file; the threshold is the claims')."""
    budget_s: float | None = None
    """Seconds of timing for the whole run; what is still open then stops (``None``: none)."""
    allocator: str = DEFAULT_ALLOCATOR
    attribution: bool = True
    """Profile each eager CPU group once: where its forward time goes (attnprof.attribution)."""
    probe: bool = True
    """Probe each timed device's bandwidth, peak FLOP/s and fixed cost per operator first (a
    second or two; the roofline and the explanation of each Δ are drawn from it)."""
    rounds: int = DEFAULT_ROUNDS
    """Measured rounds per process."""
    sample_time: float = DEFAULT_SAMPLE_TIME
    max_warmup_rounds: int = DEFAULT_MAX_WARMUP_ROUNDS
    settle_tolerance: float = DEFAULT_SETTLE_TOLERANCE
    threads: int = 0
    dtype: str = "float32"
    channels_last: bool = False
    passes: tuple[str, ...] = ("inference",)
    modes: tuple[str, ...] = ("eager",)
    optimizer: str = "none"

    @property
    def processes(self) -> int | None:
        """A fixed number of fresh processes; ``None``: sequential."""
        return self.replication.processes

    @property
    def counts_training(self) -> bool:
        """Whether the suite counts a training step too (``"train"`` among the passes)."""
        return "train" in self.passes


@dataclass(frozen=True)
class Claims:
    params_pct: float = 1.0
    macs_pct: float = 1.0
    latency_pct: float = 5.0
    convention: str = "paper"


@dataclass(frozen=True)
class Published:
    """A published row: its figures as printed (``"28.09 M"``, ``"4.130 GMAC"``; see
    :class:`~attnprof.results.printed.PrintedFigure`), the convention the cost was counted in,
    and what is known about a figure that does not reproduce."""

    backbone: str
    variant: str
    params: str | None = None
    cost: str | None = None
    convention: str | None = None
    source: str = ""
    why: str = ""

    @property
    def params_figure(self) -> PrintedFigure | None:
        return None if self.params is None else PrintedFigure.parse(self.params, "params")

    @property
    def cost_figure(self) -> PrintedFigure | None:
        return None if self.cost is None else PrintedFigure.parse(self.cost)


@dataclass(frozen=True)
class Suite:
    name: str
    source: str
    description: str
    backbones: tuple[str, ...]
    variants: tuple[Variant, ...]
    settings: tuple[Setting, ...]
    conventions: tuple[str, ...]
    count_batch: int
    latency: LatencySettings
    claims: Claims
    published: tuple[Published, ...] = ()
    models: tuple[Network, ...] = ()
    """The user's own networks, crossed with every variant at each input (head ``model``)."""
    declared: tuple[Convention, ...] = ()
    """The counting conventions this suite declares itself (``[conventions.NAME]``)."""

    def convention(self, name: str) -> Convention:
        """A convention this suite counts: its own declaration, else the registry's."""
        return lookup(self.declared, name)

    def networks(self) -> list[tuple[str, str | Network, tuple[Setting, ...]]]:
        """``(name, what build_model takes, settings)`` for every backbone, then every model."""
        inputs = dict.fromkeys(s.input_hw for s in self.settings)
        own = tuple(Setting(hw, USER_HEAD) for hw in inputs)
        return [
            *((name, name, self.settings) for name in self.backbones),
            *((model.name, model, own) for model in self.models),
        ]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # the replication's keys sit in the latency table, as a suite file writes them (the
        # threshold is the claims', the level the interval's)
        replication = data["latency"].pop("replication")
        flat = {"processes": replication["processes"],
                "max_processes": replication["max_processes"],
                "target_width": replication["target_width"]}
        data["latency"] = {**{k: v for k, v in data["latency"].items()
                              if k in ("enabled", "devices", "heads", "batch_sizes")},
                           **flat,
                           **{k: v for k, v in data["latency"].items()
                              if k not in ("enabled", "devices", "heads", "batch_sizes")}}
        data["settings"] = [
            {"input": list(s.input_hw), "head": s.head, "label": s.label} for s in self.settings
        ]
        for variant in data["variants"]:  # written only when used: older files stay the same
            for key in ("per_backbone", "backbones"):
                if not variant[key]:
                    del variant[key]
        del data["models"], data["declared"]
        if self.models:
            data["models"] = [model.to_dict() for model in self.models]
        if self.declared:
            data["declared_conventions"] = {c.name: c.data for c in self.declared}
        for row in data["published"]:  # written only when given
            for key in ("params", "cost", "convention"):
                if row[key] is None:
                    del row[key]
        return json.loads(json.dumps(data))  # plain JSON types: tuples become lists

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suite:
        """Read :meth:`to_dict`'s output as stored in a results file (validated there); what an
        older file left out takes the defaults of today's suite files."""

        def table(kind, value):
            known = {f.name for f in fields(kind)}
            return kind(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in (value or {}).items() if k in known})

        settings = tuple(Setting(tuple(s["input"]), s["head"]) for s in data.get("settings") or ())
        claims = table(Claims, data.get("claims"))
        return cls(
            name=data["name"],
            source=data.get("source", ""),
            description=data.get("description", ""),
            backbones=tuple(data.get("backbones") or ()),
            variants=tuple(
                Variant(
                    v["name"],
                    v.get("attention", v["name"]),
                    dict(v.get("options") or {}),
                    dict(v.get("per_backbone") or {}),
                    tuple(v.get("backbones") or ()),
                )
                for v in data.get("variants") or ()
            ),
            settings=settings,
            conventions=tuple(data.get("conventions") or ()),
            count_batch=data.get("count_batch", 1),
            latency=_stored_latency(data.get("latency") or {}, claims.latency_pct),
            claims=claims,
            published=tuple(table(Published, row) for row in data.get("published") or ()),
            models=tuple(Network.from_dict(m) for m in data.get("models") or ()),
            declared=tuple(from_data(name, table, data.get("source", ""))
                           for name, table in (data.get("declared_conventions") or {}).items()),
        )


def _stored_latency(stored: dict[str, Any], threshold: float) -> LatencySettings:
    """A results file's latency table (validated there), its replication keys gathered into
    one :class:`Replication`; what an older file left out takes today's defaults."""
    known = {f.name for f in fields(LatencySettings)}
    default = Replication()
    replication = Replication(
        processes=stored.get("processes"),
        max_processes=stored.get("max_processes", default.max_processes),
        target_width=stored.get("target_width", default.target_width),
        threshold=threshold,
    )
    return LatencySettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()
           if k in known - {"replication"}},
        replication=replication,
    )


_SECTIONS = {
    "suite": {"name", "description"},
    "models": {"backbones", "models", "variants", "input", "heads"},
    "counting": {"conventions", "batch"},
    "latency": {
        "enabled",
        "devices",
        "heads",
        "batch_sizes",
        "processes",
        "max_processes",
        "target_width",
        "budget",
        "allocator",
        "attribution",
        "probe",
        "rounds",
        "sample_time",
        "max_warmup_rounds",
        "settle_tolerance",
        "threads",
        "dtype",
        "channels_last",
        "compile",
        "passes",
        "modes",
        "optimizer",
    },
    "claims": {"params_pct", "macs_pct", "latency_pct", "convention"},
    "published": {"backbone", "variant", "params", "cost", "convention", "source", "why"},
    "conventions": None,  # a table of conventions: see attnprof.suite.declared
}


def available_suites() -> list[str]:
    """Names of the shipped suites (files in ``suites/``)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A shipped suite's name, or a path to a user's TOML file."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if text.endswith(".toml") or candidate.is_file() or "/" in text:
        if not candidate.is_file():
            raise AttnprofError(f"suite file {text!r} does not exist")
        return candidate
    shipped = SUITES_DIR / f"{text}.toml"
    if not shipped.is_file():
        raise AttnprofError(
            f"unknown suite {text!r}; valid suites: {choices(available_suites())} "
            "(or a path to a .toml file)"
        )
    return shipped


def load_suite(name_or_path: str | Path) -> Suite:
    """Load and validate a suite; raises :class:`AttnprofError` naming file, key and value."""
    path = resolve_suite_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AttnprofError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AttnprofError(f"{path}: cannot read the suite file: {exc}") from None
    return _parse(raw, path)


def _parse(raw: dict[str, Any], path: Path) -> Suite:
    v = _Validator(path)
    for section, value in raw.items():
        if section not in _SECTIONS:
            v.fail(section, value, f"an unknown section; valid sections: {choices(_SECTIONS)}")
        if _SECTIONS[section] is None:
            continue
        tables = value if section == "published" else [value]
        if section == "published" and not isinstance(value, list):
            v.fail(section, value, "an array of tables ([[published]])")
        for table in tables:
            if not isinstance(table, dict):
                v.fail(section, table, "a table")
            for key in table:
                if key not in _SECTIONS[section]:
                    v.fail(
                        f"{section}.{key}",
                        table[key],
                        f"an unknown key; valid keys: {choices(sorted(_SECTIONS[section]))}",
                    )

    suite = raw.get("suite", {})
    models = raw.get("models")
    if models is None:
        v.fail("models", None, "a [models] table with backbones and variants")
    name = v.string("suite.name", suite.get("name", path.stem))
    user_models = tuple(
        _parse_model(v, item) for item in v.any_list("models.models", models.get("models", []))
    )
    listed = models.get("backbones", [] if user_models else None)
    backbones = tuple(
        v.choice("models.backbones", b, BACKBONES)
        for b in (v.any_list if user_models else v.nonempty_list)("models.backbones", listed)
    )
    network_names = [*backbones, *(m.name for m in user_models)]
    if len(set(network_names)) != len(network_names):
        v.fail("models.models", network_names, "networks with distinct names (give name = ...)")
    variants = tuple(
        _parse_variant(v, item, network_names)
        for item in v.nonempty_list("models.variants", models.get("variants"))
    )
    names = [variant.name for variant in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        v.fail("models.variants", duplicates, "unique variant names")
    if BASELINE not in names:
        v.fail("models.variants", names, f"a list that includes the {BASELINE!r} baseline")
    input_hw = _parse_input(v, "models.input", models.get("input", 224))
    heads = tuple(
        v.choice("models.heads", h, HEADS)
        for h in v.nonempty_list("models.heads", models.get("heads", ["fc"]))
    )
    settings = tuple(Setting(input_hw, head) for head in heads)

    declared = parse_declarations(raw.get("conventions", {}), path)
    countable = [*CONVENTIONS, *(c.name for c in declared)]
    counting = raw.get("counting", {})
    conventions = tuple(
        v.choice("counting.conventions", c, countable)
        for c in v.nonempty_list(
            "counting.conventions", counting.get("conventions", list(DEFAULT_CONVENTIONS))
        )
    )
    count_batch = v.positive_int("counting.batch", counting.get("batch", 1))

    claims = _parse_claims(v, raw.get("claims", {}), conventions)
    latency = _parse_latency(v, raw.get("latency", {}), claims.latency_pct)
    for head in latency.heads:
        v.choice("latency.heads", head, heads)
    units = {name: lookup(declared, name).unit for name in conventions}
    published = tuple(
        _parse_published(v, row, network_names, names, units)
        for row in raw.get("published", [])
    )
    description = v.string("suite.description", suite.get("description", ""), allow_empty=True)
    _check_variant_options(path, backbones, user_models, variants, input_hw)
    return Suite(
        name=name,
        source=_display_path(path),
        description=description,
        backbones=backbones,
        variants=variants,
        settings=settings,
        conventions=conventions,
        count_batch=count_batch,
        latency=latency,
        claims=claims,
        published=published,
        models=user_models,
        declared=tuple(c for c in declared if c.name in conventions),
    )


_VARIANT_KEYS = ("name", "attention", "options", "per_backbone", "backbones")
_MODEL_KEYS = ("model", "name", "options", "insert_after")


def _parse_variant(v: _Validator, item: Any, networks: list[str]) -> Variant:
    if isinstance(item, str):
        spec = v.attention("models.variants", item)
        return Variant(item, spec)
    if not isinstance(item, dict):
        v.fail("models.variants", item, f"a module name or a table {{{', '.join(_VARIANT_KEYS)}}}")
    unknown = set(item) - set(_VARIANT_KEYS)
    if unknown:
        v.fail("models.variants", sorted(unknown), f"only the keys {choices(_VARIANT_KEYS)}")
    attention = v.attention("models.variants.attention", item.get("attention", item.get("name")))
    name = v.string("models.variants.name", item.get("name", attention))
    key = f"models.variants[{name}]"
    options = v.table(f"{key}.options", item.get("options", {}))
    per_backbone = v.table(f"{key}.per_backbone", item.get("per_backbone", {}))
    for network, overrides in per_backbone.items():
        v.choice(f"{key}.per_backbone", network, networks)
        v.table(f"{key}.per_backbone.{network}", overrides)
    only = tuple(
        v.choice(f"{key}.backbones", network, networks)
        for network in v.any_list(f"{key}.backbones", item.get("backbones", []))
    )
    return Variant(name, attention, dict(options), {k: dict(o) for k, o in per_backbone.items()},
                   only)


def _parse_model(v: _Validator, item: Any) -> Network:
    if isinstance(item, str):
        item = {"model": item}
    if not isinstance(item, dict) or not isinstance(item.get("model"), str):
        v.fail("models.models", item, "an import path 'package.module:factory' or a table "
               f"{{{', '.join(_MODEL_KEYS)}}}")
    unknown = set(item) - set(_MODEL_KEYS)
    if unknown:
        v.fail("models.models", sorted(unknown), f"only the keys {choices(_MODEL_KEYS)}")
    if not is_import_path(item["model"]):
        v.fail("models.models", item["model"], "an import path 'package.module:factory'")
    key = f"models.models[{item['model']}]"
    name = v.string(f"{key}.name", item.get("name", item["model"]))
    try:
        return Network(
            item["model"], dict(v.table(f"{key}.options", item.get("options", {}))),
            item.get("insert_after"), name,
        )
    except AttnprofError as exc:
        raise exc.prefixed(f"{v.path}: {key}: ", syntax="toml") from None


def _display_path(path: Path) -> str:
    """Shipped suites as ``suites/NAME.toml`` (no machine's folders in results); others as given."""
    resolved = path.resolve()
    if resolved.parent == SUITES_DIR:
        return f"suites/{resolved.name}"
    return str(path)


def _check_variant_options(
    path: Path,
    backbones: tuple[str, ...],
    models: tuple[Network, ...],
    variants: tuple[Variant, ...],
    input_hw: tuple[int, int],
) -> None:
    """Build every network with every variant it gets on the meta device (no memory, a few
    seconds), so a bad option or a module that does not fit fails before anything runs; a
    module named by import path also runs once there, so one that does not return its input's
    shape is refused now (a model that cannot run on the meta device is left to the count,
    which runs it on the CPU). Warnings issued while building are the count's to report."""
    from attnprof.backbones import build_model
    from attnprof.collected_warnings import collecting

    shape = (1, 3, *input_hw)
    for name, target in [*((b, b) for b in backbones), *((m.name, m) for m in models)]:
        for variant in (v for v in variants if v.applies_to(name)):
            try:
                with collecting():
                    model = build_model(target, variant.attention, device="meta",
                                        input_shape=shape, **variant.options_for(name))
                    if is_import_path(variant.attention):
                        keeps = get_attention_spec(variant.attention).placement != "conv"
                        _check_contract(model, shape, f"{name} + {variant.attention}", keeps)
            except AttnprofError as exc:
                raise exc.prefixed(
                    f"{path}: variant {variant.name!r} on {name}: ", syntax="toml"
                ) from None


def _check_contract(model, shape: tuple[int, ...], label: str, keeps_shape: bool) -> None:
    """Refuse a module whose output does not keep its input's shape (attnprof's own check);
    any other failure of the meta forward is the count's to handle."""
    from attnprof.attention.contract import inspect_forward
    from attnprof.networks import attention_modules

    try:
        inspect_forward(model, shape, attention_modules(model), label, keeps_shape=keeps_shape)
    except AttnprofError as exc:
        if exc.__cause__ is None:
            raise
    except Exception:  # cannot run on the meta device: counted on the CPU later
        pass


def _parse_input(v: _Validator, key: str, value: Any) -> tuple[int, int]:
    try:
        return parse_input(value)
    except AttnprofError:
        v.fail(key, value, "a positive integer (square input) or [height, width]")


def _parse_latency(v: _Validator, table: dict[str, Any], threshold: float) -> LatencySettings:
    d = LatencySettings()
    processes = table.get("processes")
    rounds = v.positive_int("latency.rounds", table.get("rounds", d.rounds))
    try:
        replication = replication_plan(
            None if processes is None else v.positive_int("latency.processes", processes),
            max_processes=v.positive_int("latency.max_processes",
                                         table.get("max_processes", d.replication.max_processes)),
            target_width=v.positive_float("latency.target_width",
                                          table.get("target_width", d.replication.target_width)),
            threshold=threshold, rounds=rounds)
    except AttnprofError as exc:
        raise AttnprofError(f"{v.path}: latency: {exc}") from None
    return LatencySettings(
        enabled=v.boolean("latency.enabled", table.get("enabled", d.enabled)),
        devices=tuple(
            v.choice("latency.devices", x, DEVICES)
            for x in v.nonempty_list("latency.devices", table.get("devices", list(d.devices)))
        ),
        heads=tuple(v.nonempty_list("latency.heads", table["heads"])) if "heads" in table else (),
        batch_sizes=tuple(
            v.positive_int("latency.batch_sizes", x)
            for x in v.nonempty_list(
                "latency.batch_sizes", table.get("batch_sizes", list(d.batch_sizes))
            )
        ),
        replication=replication,
        budget_s=_parse_duration(v, "latency.budget", table["budget"])
        if "budget" in table else None,
        allocator=v.choice("latency.allocator", table.get("allocator", d.allocator), ALLOCATORS),
        attribution=v.boolean("latency.attribution", table.get("attribution", d.attribution)),
        probe=v.boolean("latency.probe", table.get("probe", d.probe)),
        rounds=rounds,
        sample_time=v.positive_float(
            "latency.sample_time", table.get("sample_time", d.sample_time)
        ),
        max_warmup_rounds=v.positive_int(
            "latency.max_warmup_rounds", table.get("max_warmup_rounds", d.max_warmup_rounds),
            minimum=0,
        ),
        settle_tolerance=v.positive_float(
            "latency.settle_tolerance", table.get("settle_tolerance", d.settle_tolerance)
        ),
        threads=v.positive_int("latency.threads", table.get("threads", d.threads), minimum=0),
        dtype=v.choice("latency.dtype", table.get("dtype", d.dtype), DTYPES),
        channels_last=v.boolean(
            "latency.channels_last", table.get("channels_last", d.channels_last)
        ),
        passes=_unique_choices(v, "latency.passes", table.get("passes", list(d.passes)), PASSES),
        modes=_parse_modes(v, table),
        optimizer=v.choice("latency.optimizer", table.get("optimizer", d.optimizer), OPTIMIZERS),
    )


_DURATION = {"s": 1.0, "min": 60.0, "h": 3600.0}


def _seconds(value: Any) -> float | None:
    """Seconds from a number of seconds or a string such as ``"8 min"``, ``"90 s"``, ``"480"``;
    ``None`` when it is neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        number, _, unit = value.strip().partition(" ")
        try:
            seconds = float(number) * _DURATION[unit.strip() or "s"]
        except (ValueError, KeyError):
            return None
        return seconds if seconds > 0 else None
    return None


_DURATION_FORMS = 'a positive number of seconds, or a string such as "8 min" or "90 s"'


def parse_budget(value: Any, where: str) -> float:
    """A budget from the command line (``where`` names the option), in seconds."""
    seconds = _seconds(value)
    if seconds is None:
        raise AttnprofError(f"{where} {value!r} is invalid; expected {_DURATION_FORMS}")
    return seconds


def _parse_duration(v: _Validator, key: str, value: Any) -> float:
    seconds = _seconds(value)
    if seconds is None:
        v.fail(key, value, _DURATION_FORMS)
    return seconds  # type: ignore[return-value]


def _unique_choices(v: _Validator, key: str, value: Any, allowed) -> tuple[str, ...]:
    items = [v.choice(key, x, allowed) for x in v.nonempty_list(key, value)]
    if len(set(items)) != len(items):
        v.fail(key, value, f"a list without repeats of {choices(allowed)}")
    return tuple(items)


def _parse_modes(v: _Validator, table: dict[str, Any]) -> tuple[str, ...]:
    """``modes``, or the older ``compile = true`` meaning ``modes = ["compile"]``."""
    if "compile" in table:
        compiled = v.boolean("latency.compile", table["compile"])
        if "modes" in table:
            v.fail("latency.compile", table["compile"],
                   "no 'compile' key beside 'modes' (list \"compile\" among the modes)")
        return ("compile",) if compiled else ("eager",)
    return _unique_choices(v, "latency.modes", table.get("modes", ["eager"]), MODES)


def _parse_claims(v: _Validator, table: dict[str, Any], conventions: tuple[str, ...]) -> Claims:
    d = Claims()
    default_convention = d.convention if d.convention in conventions else conventions[0]
    convention = v.choice(
        "claims.convention", table.get("convention", default_convention), conventions
    )
    return Claims(
        params_pct=v.positive_float("claims.params_pct", table.get("params_pct", d.params_pct)),
        macs_pct=v.positive_float("claims.macs_pct", table.get("macs_pct", d.macs_pct)),
        latency_pct=v.positive_float("claims.latency_pct", table.get("latency_pct", d.latency_pct)),
        convention=convention,
    )


def _parse_published(
    v: _Validator, row: dict[str, Any], backbones: list[str], variants: list[str],
    units: dict[str, str],
) -> Published:
    published = Published(
        backbone=v.choice("published.backbone", row.get("backbone"), backbones),
        variant=v.choice("published.variant", row.get("variant"), variants),
        params=None if row.get("params") is None else v.string("published.params", row["params"]),
        cost=None if row.get("cost") is None else v.string("published.cost", row["cost"]),
        convention=row.get("convention"),
        source=v.string("published.source", row.get("source", ""), allow_empty=True),
        why=v.string("published.why", row.get("why", ""), allow_empty=True),
    )
    where = f"{v.path}: published[{published.backbone} {published.variant}]"
    if published.params is None and published.cost is None:
        v.fail("published", row, "params and/or cost, each as printed: "
               "params = \"28.09 M\", cost = \"4.130 GMAC\"")
    try:
        published.params_figure  # noqa: B018 - parsed here so that a bad one fails now
        cost = published.cost_figure
    except AttnprofError as exc:
        raise AttnprofError(f"{where}: {exc}") from None
    if cost is not None:
        v.choice("published.convention", published.convention, list(units))
        if units[published.convention] != cost.unit:
            v.fail("published.cost", published.cost,
                   f"a figure in {units[published.convention]}, the unit of convention "
                   f"{published.convention!r} (a FLOP is not a MAC: attnprof never converts)")
    elif published.convention is not None:
        v.fail("published.convention", published.convention, "a cost for it to apply to")
    return published


class _Validator:
    """Turns a bad value into one line: file, key, value, and what is allowed."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, value: Any, allowed: str):
        raise AttnprofError(f"{self.path}: {key} = {value!r} is invalid; expected {allowed}")

    def string(self, key: str, value: Any, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not value and not allow_empty):
            self.fail(key, value, "a non-empty string")
        return value

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value

    def positive_int(self, key: str, value: Any, minimum: int = 1) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(key, value, f"an integer >= {minimum}")
        return value

    def positive_float(self, key: str, value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            self.fail(key, value, "a positive number")
        return float(value)

    def nonempty_list(self, key: str, value: Any) -> list:
        if not isinstance(value, list) or not value:
            self.fail(key, value, "a non-empty list")
        return value

    def any_list(self, key: str, value: Any) -> list:
        if not isinstance(value, list):
            self.fail(key, value, "a list")
        return value

    def table(self, key: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(key, value, "a table of options")
        return value

    def choice(self, key: str, value: Any, allowed) -> Any:
        if value not in allowed:
            self.fail(key, value, f"one of {choices(allowed)}")
        return value

    def attention(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            self.fail(key, value, "an attention module name")
        try:
            return get_attention_spec(value).name
        except AttnprofError as exc:
            raise exc.prefixed(f"{self.path}: {key}: ", syntax="toml") from None
