"""Where an ONNX Runtime forward spends its time: ONNX Runtime's own profiler, node by node,
each node traced back to the torch module that produced it.

Caveats first:

- The session optimises the graph before it runs it, so the profiled nodes are not the
  exported ones: fused nodes (``fused node_linear``: Gemm + ReLU) and blocked-layout
  convolutions (``relu_nchwc``: Conv + BatchNorm + ReLU) are new, and layout conversions
  (``ReorderInput``, ``ReorderOutput``) appear between blocked and plain operators. Each
  profiled node is traced to an exported node (see :func:`scope_of`): by its name, by the
  name it was fused from, by the tensor it writes, or by the tensor it reads. A fused node
  takes the scope of the exported node it is named after, so an operator of another module
  fused into it is counted there; a layout conversion takes the scope of the tensor it
  converts. The conversions exist because a neighbouring operator cannot run in the blocked
  layout; an attention module that forces them adds them to the variant (its Δ against the
  plain network shows them), so :meth:`OnnxProfile.split` keeps their time apart.
- The module scopes come from the exporter: the ``torch.export`` exporter (torch 2.13 with
  onnxscript 0.7) writes each node's module path as ``pkg.torch.onnx.name_scopes``
  metadata (``['', 'layer1', 'layer1.0', 'layer1.0.attention', 'layer1.0.attention.fc1',
  'linear']``: the enclosing modules' qualified names, then the node's own name); the older
  TorchScript exporter encodes it in the node name (``/layer1/layer1.0/attention/fc1/Gemm``).
- Durations are the profiler's ``dur`` in µs for each node's kernel; profiling itself adds a
  little time per node, so these are for attribution, not for the latency tables.
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from attnprof.errors import AttnprofError
from attnprof.runtimes.base import Built, LoadRequest
from attnprof.runtimes.onnx_rt import NAME, open_session

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
"""The node metadata in which the ``torch.export``-based exporter records module paths."""

VIA = ("node", "fused", "output", "input", "neighbours", "none")
"""How a profiled node was traced to an exported one (:func:`scope_of`)."""

LAYOUT_OPS = ("ReorderInput", "ReorderOutput")
"""Layout conversions ONNX Runtime inserts around blocked (NCHWc) operators."""


@dataclass(frozen=True)
class NodeEvent:
    """One node's kernel in one profiled call.

    ``scopes`` are the qualified names of the torch modules enclosing the exported node,
    outermost first (``("layer1", "layer1.0", "layer1.0.attention", ...)``; empty when it was
    not traced, or for the network's own top-level operators); ``via`` says how it was traced
    (:data:`VIA`).
    """

    call: int
    op_type: str
    node: str
    scopes: tuple[str, ...]
    via: str
    duration_us: float

    @property
    def layout(self) -> bool:
        """Whether this is a layout conversion ONNX Runtime inserted (:data:`LAYOUT_OPS`)."""
        return self.op_type in LAYOUT_OPS

    def under(self, modules: Iterable[str]) -> str | None:
        """The first of ``modules`` (qualified names) this node ran inside, or ``None``."""
        names = set(self.scopes)
        return next((name for name in modules if name in names), None)


@dataclass(frozen=True)
class OnnxProfile:
    """Profiled calls of one session: every node's kernel time, and each call's whole time
    (``runs_us``, the session's ``model_run`` span), so a sum of node times can be checked
    against the forward it belongs to. Warm-up calls are left out of both."""

    events: tuple[NodeEvent, ...]
    runs_us: tuple[float, ...]
    threads: int

    def split(self, modules: Sequence[str]) -> dict[str, float]:
        """µs per call, averaged over calls: nodes inside ``modules`` (``"attention"``), the
        layout conversions ONNX Runtime inserted (``"layout"``, whatever their scope: they
        belong to the boundary between two operators), the other traced nodes
        (``"backbone"``), and nodes not traced to any exported node (``"untraced"``)."""
        totals = {"attention": 0.0, "layout": 0.0, "backbone": 0.0, "untraced": 0.0}
        for event in self.events:
            if event.layout:
                totals["layout"] += event.duration_us
            elif event.via == "none":
                totals["untraced"] += event.duration_us
            elif event.under(modules) is not None:
                totals["attention"] += event.duration_us
            else:
                totals["backbone"] += event.duration_us
        calls = max(len(self.runs_us), 1)
        return {key: value / calls for key, value in totals.items()}


def _scopes_from_metadata(text: str) -> tuple[str, ...]:
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return ()
    if not isinstance(names, list):
        return ()
    return tuple(str(name) for name in names[:-1] if name)


def _scopes_from_name(name: str) -> tuple[str, ...]:
    """``/layer1/layer1.0/attention/fc1/Gemm`` -> the qualified names of its enclosing modules
    (the TorchScript exporter writes a child's own name, or its full name for a container's
    numbered child)."""
    if not name.startswith("/"):
        return ()
    scopes: list[str] = []
    for part in name.strip("/").split("/")[:-1]:
        here = scopes[-1] if scopes else ""
        if not here or part.startswith(here + "."):
            scopes.append(part)
        else:
            scopes.append(f"{here}.{part}")
    return tuple(scopes)


def _common(chains: list[tuple[str, ...]]) -> tuple[str, ...]:
    common: list[str] = []
    for names in zip(*chains, strict=False):
        if any(name != names[0] for name in names):
            break
        common.append(names[0])
    return tuple(common)


@dataclass(frozen=True)
class ExportedScopes:
    """What the exported file says about its nodes: node name -> module scopes, tensor name ->
    producing node, and the nodes whose scope was inferred from their neighbours."""

    scopes: dict[str, tuple[str, ...]]
    producers: dict[str, str]
    inferred: frozenset[str]


def exported_scopes(path: Path) -> ExportedScopes:
    """Read the module scopes the exporter recorded for every node of the file at ``path``.

    A node the exporter made without a record (the exporter's optimiser writes a few, such as
    the ``Split`` that replaces a chunk) takes the innermost module enclosing all its
    neighbours, the nodes that feed it and the nodes it feeds."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    scopes: dict[str, tuple[str, ...]] = {}
    producers: dict[str, str] = {}
    consumers: dict[str, list[str]] = {}
    unrecorded = []
    for node in graph.node:
        meta = {prop.key: prop.value for prop in node.metadata_props}
        if SCOPES_KEY in meta:
            scopes[node.name] = _scopes_from_metadata(meta[SCOPES_KEY])
        elif node.name.startswith("/"):
            scopes[node.name] = _scopes_from_name(node.name)
        else:
            unrecorded.append(node)
        for output in node.output:
            producers[output] = node.name
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node.name)
    inferred = set()
    for node in unrecorded:
        neighbours = [producers[t] for t in node.input if t in producers]
        neighbours += [c for t in node.output for c in consumers.get(t, [])]
        chains = [scopes[n] for n in neighbours if n in scopes]
        scopes[node.name] = _common(chains) if chains else ()
        inferred.add(node.name)
    return ExportedScopes(scopes=scopes, producers=producers, inferred=frozenset(inferred))


def _optimized_nodes(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {node.name: (list(node.input), list(node.output)) for node in graph.node}


def scope_of(
    node: str,
    optimized: dict[str, tuple[list[str], list[str]]],
    exported: ExportedScopes,
) -> tuple[tuple[str, ...], str]:
    """Trace an optimised node to an exported node: ``(scopes, via)``.

    In order: the same name (``node``); the name it was fused from, ``fused X`` or ``X_nchwc``
    where ``X`` names a node or the tensor a node wrote (``fused``); the exported tensor it
    writes (``output``); the exported tensor it reads (``input``, layout conversions
    into the blocked format); else ``((), "none")``. An exported node whose scope was
    inferred from its neighbours (:func:`exported_scopes`) gives ``neighbours``."""
    origin, via = _origin(node, optimized, exported)
    if origin is None:
        return (), "none"
    return exported.scopes[origin], "neighbours" if origin in exported.inferred else via


def _origin(node, optimized, exported: ExportedScopes) -> tuple[str | None, str]:
    scopes, producers = exported.scopes, exported.producers
    if node in scopes:
        return node, "node"
    for prefix, suffix in (("fused ", ""), ("", "_nchwc")):
        if node.startswith(prefix) and node.endswith(suffix):
            base = node[len(prefix): len(node) - len(suffix)]
            origin = base if base in scopes else producers.get(base)
            if origin is not None:
                return origin, "fused"
    inputs, outputs = optimized.get(node, ([], []))
    for via, tensors in (("output", outputs), ("input", inputs)):
        for tensor in tensors:
            if tensor in producers:
                return producers[tensor], via
    return None, "none"


def _node_name(event: dict) -> str:
    name = event["name"]
    return name[: -len("_kernel_time")] if name.endswith("_kernel_time") else name


def profile_nodes(built: Built, request: LoadRequest, calls: int = 10,
                  warmup: int = 2) -> OnnxProfile:
    """Run ``warmup + calls`` forwards of ``built`` in a profiling session (same options as the
    timed one) and return the node events of the last ``calls``."""
    if built.runtime != NAME:
        raise AttnprofError(f"profile_nodes profiles {NAME} artifacts, got {built.runtime!r}")
    for label, value, least in (("calls", calls, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise AttnprofError(f"{label} must be an integer >= {least}, got {value!r}")
    exported = exported_scopes(built.path)
    with tempfile.TemporaryDirectory(prefix="attnprof-ort-") as scratch:
        optimized_path = Path(scratch) / "optimized.onnx"
        session = open_session(built.path, request.threads,
                               profile_prefix=str(Path(scratch) / "profile"),
                               optimized_path=optimized_path)
        feed = {session.get_inputs()[0].name: request.input.detach().contiguous().numpy()}
        for _ in range(warmup + calls):
            session.run(None, feed)
        trace = json.loads(Path(session.end_profiling()).read_text())
        optimized = _optimized_nodes(optimized_path)
    runs = sorted((e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    if len(runs) != warmup + calls:
        raise AttnprofError(
            f"{NAME} profiler recorded {len(runs)} runs for {warmup + calls} calls; "
            "its trace format is not the one attnprof reads"
        )
    kept = runs[warmup:]
    events = []
    for event in trace:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        start = event["ts"]
        call = next((i for i, run in enumerate(kept)
                     if run["ts"] <= start <= run["ts"] + run["dur"]), None)
        if call is None:
            continue  # a warm-up call's node
        node = _node_name(event)
        found, via = scope_of(node, optimized, exported)
        events.append(NodeEvent(call=call, op_type=str(event.get("args", {}).get("op_name", "")),
                                node=node, scopes=found, via=via,
                                duration_us=float(event["dur"])))
    return OnnxProfile(events=tuple(events), runs_us=tuple(float(r["dur"]) for r in kept),
                       threads=request.threads)
