"""What one training step costs under ``full``: forward and backward FLOPs and bytes, and the
activation memory autograd keeps between them.

Caveats first:

- the step is forward (train mode), the stand-in loss of :func:`attnprof.passes.loss_of` and
  ``loss.backward()``; the optimizer step is not counted. The input does not require a
  gradient, so the first layer computes no input gradient. Everything before ``backward()``
  (forward and loss) is *forward*, everything during it *backward*;
- the backward is counted as it runs, op by op (the backward rules of
  :mod:`attnprof.counting.rules`), never as a multiple of the forward: the ratio depends on the
  model (first layer, biases, normalisations, activations);
- activation bytes are the bytes of the distinct storages autograd packs for backward
  (``torch.autograd.graph.saved_tensors_hooks``) during the forward *and the loss*, parameters
  and buffers excluded, each storage counted whole and once however many ops save it or views
  of it; the model's input counts where it is saved (the first convolution keeps it for its
  weight gradient). It is what autograd holds, not a peak: an allocator's peak also holds the
  live output and transient buffers. :func:`saved_activation_bytes` measures the same thing on
  real tensors, by data pointers;
- attribution to attention modules: the forward by the modules' forward hooks; the activation
  bytes of every storage packed at least once inside an attention module (its input too, where
  the module saves it, even if the backbone saves it as well); the backward by the autograd
  nodes the attention modules created (their sequence numbers fall within a module's call) and
  the accumulation nodes of their parameters. A backward op is the attention's when it runs in
  such a node, or in the engine's work right after one (adding its gradient to one already
  waiting: the gradient of an input the module uses twice).

The count runs on the meta device in well under a second for a ResNet-50 (real tensors work
too). Counting never changes the model: training flags, gradients and buffers (batch-norm
running statistics) are restored and every hook is removed, even after an error.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from attnprof.counting.full import FlopByteMode
from attnprof.counting.no_dynamo import dynamo_stand_in
from attnprof.counting.tracing import AttentionScope, attention_paths, hooked, input_like
from attnprof.errors import AttnprofError
from attnprof.passes import LOSS, loss_of
from attnprof.results.counts import TrainingCount

StorageKey = Callable[[torch.Tensor], int]
"""What identifies a tensor's storage: its StorageImpl (meta) or its data pointer (real)."""


@dataclass(frozen=True)
class TrainingOps:
    """A training count and where its FLOPs sit, per aten op (``aten::convolution_backward``):
    ``forward_by_op`` sums to ``count.forward``, ``backward_by_op`` to ``count.backward`` and
    ``attention_backward_by_op`` to ``count.attention_backward``."""

    count: TrainingCount
    forward_by_op: dict[str, int] = field(default_factory=dict)
    backward_by_op: dict[str, int] = field(default_factory=dict)
    attention_backward_by_op: dict[str, int] = field(default_factory=dict)


def count_training(
    model: nn.Module, shape: Sequence[int], *, attention: Iterable[str] | None = None
) -> TrainingCount:
    """Count one training step of ``model`` on an input of ``shape`` under ``full`` (see the
    module docstring). ``attention`` names the modules whose share to report (default: the
    model's attention modules). Build the model on the meta device: it takes milliseconds."""
    return count_training_by_op(model, shape, attention=attention).count


def count_training_by_op(
    model: nn.Module, shape: Sequence[int], *, attention: Iterable[str] | None = None
) -> TrainingOps:
    """:func:`count_training`, with the FLOPs of each phase split per aten op."""
    names = attention_paths(model, attention)
    x = input_like(model, shape)
    with _unchanged(model):
        return _count_step(model, x, names)


def saved_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd saves for backward in one real training forward of ``model`` on ``x``
    (train mode, then :func:`attnprof.passes.loss_of`), by distinct storage data pointers,
    parameters and buffers excluded: the ground truth of :func:`count_training`'s
    ``activation_bytes``. Caveat: needs real tensors (meta storages have no data pointers) and
    runs a real forward; the model is left as it was (flags, gradients, buffers)."""
    if x.device.type == "meta":
        raise AttnprofError(
            "saved_activation_bytes needs real tensors (meta storages have no data pointer); "
            "count on meta with count_training(...).activation_bytes"
        )
    saved = SavedStorages(model, key=_data_pointer)
    with _unchanged(model), saved.packing():
        _forward_and_loss(model, x)
    return saved.bytes


# ---- the step ---------------------------------------------------------------------------


def _count_step(model: nn.Module, x: torch.Tensor, names: list[str]) -> TrainingOps:
    scope = AttentionScope()
    counter = StepCounter(scope=scope)
    saved = SavedStorages(model, key=_storage_identity, scope=scope)
    nodes = AttentionNodes(model, names)
    with dynamo_stand_in(), scope.watching(model, names), nodes.recording(), counter:
        with saved.packing():
            loss = _forward_and_loss(model, x)
        forward = _Snapshot.of(counter)
        counter.scope = nodes.scope()
        loss.backward()
    total = _Snapshot.of(counter)
    backward = total.minus(forward)
    count = TrainingCount(
        forward=forward.flops,
        backward=backward.flops,
        forward_bytes=forward.bytes,
        backward_bytes=backward.bytes,
        activation_bytes=saved.bytes,
        attention_forward=forward.attention,
        attention_backward=backward.attention if nodes.available else None,
        attention_activation_bytes=saved.attention_bytes,
        uncounted=dict(sorted(counter.uncounted.items())),
        loss=LOSS,
    )
    return TrainingOps(count, _positive(forward.by_op), _positive(backward.by_op),
                       _positive(backward.attention_by_op))


def _forward_and_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    try:
        loss = loss_of(model(x))
    except ValueError as exc:
        if "more than 1 value per channel" in str(exc):
            raise AttnprofError(
                f"a training step normalises over the batch, and a batch of {x.shape[0]} "
                f"gives one value per channel somewhere in the model ({exc}); count with a "
                "batch of 2 or more"
            ) from None
        raise
    if not loss.requires_grad:
        raise AttnprofError(
            "the model's loss does not require a gradient (no parameter requires grad?); a "
            "training step has no backward to count"
        )
    return loss


@dataclass(frozen=True)
class _Snapshot:
    """The counter's running totals at one moment."""

    flops: int
    bytes: int
    attention: int
    by_op: Counter
    attention_by_op: Counter

    @classmethod
    def of(cls, counter: FlopByteMode) -> _Snapshot:
        return cls(counter.flops, counter.bytes, counter.attention, Counter(counter.by_op),
                   Counter(counter.attention_by_kind))

    def minus(self, earlier: _Snapshot) -> _Snapshot:
        return _Snapshot(self.flops - earlier.flops, self.bytes - earlier.bytes,
                         self.attention - earlier.attention,
                         _subtract(self.by_op, earlier.by_op),
                         _subtract(self.attention_by_op, earlier.attention_by_op))


def _subtract(later: Counter, earlier: Counter) -> Counter:
    return Counter({key: value - earlier.get(key, 0) for key, value in later.items()})


def _positive(counts: Counter) -> dict[str, int]:
    return {key: value for key, value in sorted(counts.items()) if value}


# ---- the counter: the full rules, with meta outputs reused --------------------------------


class StepCounter(FlopByteMode):
    """:class:`~attnprof.counting.full.FlopByteMode`, pricing exactly as it does, but making the
    outputs of a meta op it has seen before from their recorded metadata instead of running
    the op's meta kernel again.

    Caveat first: this is only about speed, and the reason is torch's, not attnprof's: many
    meta kernels are Python decompositions (batch norm's forward and backward in training take
    about 2 ms a call, three quarters of a ResNet's count), and a network repeats the same op
    on the same shapes block after block. Outputs are reused only where that is exact: a
    functional op (no argument written, no output aliasing an input, per its schema), every
    tensor argument on meta and strided, and outputs that are fresh, whole storages of their
    own (offset 0, no larger than their shape and strides need). The key is the op with every
    argument's shape, strides, offset and dtype and every other argument's value, so an op is
    priced on the same arguments and its outputs have the same shapes, strides, dtypes and
    storage sizes as the kernel's. Global settings a meta kernel could read (backend flags)
    are not in the key; a count changes none. Real tensors always run their kernels.
    """

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        key = _META_OUTPUTS.key(func, args, kwargs)
        if key is None:
            return super().__torch_dispatch__(func, types, args, kwargs)
        known = _META_OUTPUTS.outputs.get(key)
        if known is not None:
            return super().__torch_dispatch__(_Rebuilding(func, known), types, args, kwargs)
        out = super().__torch_dispatch__(func, types, args, kwargs)
        _META_OUTPUTS.store(key, args, out)
        return out


class _Uncacheable(Exception):
    """An argument or output that metadata alone cannot stand for."""


class MetaOutputs:
    """Output metadata of meta ops by their arguments' metadata (see :class:`StepCounter`);
    emptied when it holds ``limit`` entries."""

    def __init__(self, limit: int = 8192):
        self.limit = limit
        self.outputs: dict[tuple, object] = {}
        self._functional: dict[object, bool] = {}

    def _is_functional(self, func) -> bool:
        known = self._functional.get(func)
        if known is None:
            schema = func._schema
            known = not (schema.is_mutable or getattr(func, "is_view", False)
                         or any(r.alias_info is not None for r in schema.returns))
            self._functional[func] = known
        return known

    def key(self, func, args: tuple, kwargs: dict) -> tuple | None:
        """The cache key of a call, or None where its outputs may not be reused."""
        if not self._is_functional(func):
            return None
        try:
            positional, tensors = _describe_args(args)
            named, named_tensors = _describe_args(sorted(kwargs.items()))
            key = (func, positional, named)
            hash(key)
        except (_Uncacheable, TypeError):
            return None
        return key if tensors or named_tensors else None

    def store(self, key: tuple, args: tuple, out) -> None:
        inputs = {_storage_identity(t) for t in _flat_tensors(args)}
        try:
            described = _describe_outputs(out, inputs)
        except _Uncacheable:
            return
        if len(self.outputs) >= self.limit:
            self.outputs.clear()
        self.outputs[key] = described


_META_OUTPUTS = MetaOutputs()


_TENSOR = object()
"""Marks a tensor's description in a key, so that no other argument can equal it."""


def _describe_args(values) -> tuple[tuple, bool]:
    """The metadata of a list of arguments, and whether a tensor is among them (looking
    inside lists and tuples); :class:`_Uncacheable` for a tensor not on meta or not strided."""
    described = []
    tensors = False
    for value in values:
        if isinstance(value, torch.Tensor):
            if not value.is_meta or value.layout is not torch.strided:
                raise _Uncacheable
            described.append((_TENSOR, value.shape, value.stride(), value.storage_offset(),
                              value.dtype))
            tensors = True
        elif isinstance(value, (list, tuple)):
            inner, inner_tensors = _describe_args(value)
            described.append((type(value), inner))
            tensors = tensors or inner_tensors
        else:  # with its type: 1, 1.0 and True are equal keys but give different dtypes
            described.append((type(value), value))
    return tuple(described), tensors


def _flat_tensors(value) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flat_tensors(item)


def _describe_outputs(out, taken: set[int]):
    """Metadata that rebuilds ``out`` exactly, or :class:`_Uncacheable`; ``taken`` holds the
    storages already used (the inputs', earlier outputs')."""
    if isinstance(out, torch.Tensor):
        if out.device.type != "meta" or out.layout != torch.strided or out.storage_offset():
            raise _Uncacheable
        storage = _storage_identity(out)
        shape, stride = tuple(out.shape), out.stride()
        fresh = torch.empty_strided(shape, stride, dtype=out.dtype, device="meta")
        if storage in taken or out.untyped_storage().nbytes() != fresh.untyped_storage().nbytes():
            raise _Uncacheable
        taken.add(storage)
        return _TensorShape(shape, stride, out.dtype)
    if isinstance(out, (list, tuple)):
        return type(out)(_describe_outputs(item, taken) for item in out)
    if out is None or isinstance(out, (bool, int, float)):
        return out
    raise _Uncacheable


@dataclass(frozen=True)
class _TensorShape:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype

    def build(self) -> torch.Tensor:
        return torch.empty_strided(self.shape, self.stride, dtype=self.dtype, device="meta")


def _rebuild(described):
    if isinstance(described, _TensorShape):
        return described.build()
    if isinstance(described, (list, tuple)):
        return type(described)(_rebuild(item) for item in described)
    return described


class _Rebuilding:
    """Stands in for an op overload in the counter: calling it makes the recorded outputs;
    everything else (schema, packet, name) is the op's own."""

    def __init__(self, func, outputs):
        self._func = func
        self._outputs = outputs

    def __call__(self, *args, **kwargs):
        return _rebuild(self._outputs)

    def __getattr__(self, name):
        return getattr(self._func, name)


# ---- leaving the model as it was ----------------------------------------------------------


@contextmanager
def _unchanged(model: nn.Module) -> Iterator[None]:
    """Train mode, no gradients, while inside; afterwards every module's training flag, every
    parameter's ``.grad`` and every buffer's value as they were (a training forward updates
    batch-norm running statistics; a meta buffer holds no values to restore)."""
    modes = [(module, module.training) for module in model.modules()]
    grads = [(param, param.grad) for param in model.parameters()]
    buffers = [(buffer, buffer.clone()) for buffer in model.buffers() if not buffer.is_meta]
    try:
        for param, _ in grads:
            param.grad = None
        model.train()
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, grad in grads:
            param.grad = grad
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)


# ---- activation memory --------------------------------------------------------------------


def _storage_identity(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def _data_pointer(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


class SavedStorages:
    """Gathers the distinct storages autograd packs for backward while :meth:`packing`.

    ``key`` identifies a storage (:func:`_storage_identity` on meta, :func:`_data_pointer` on
    real tensors). The packed tensors are kept alive until this object goes, so no storage can
    be freed and its identity or address reused within one count. Storages of the model's
    parameters and buffers are excluded; where ``scope`` is given, the storages packed while
    it is active are also summed apart (``attention_bytes``).
    """

    def __init__(self, model: nn.Module, *, key: StorageKey, scope: AttentionScope | None = None):
        self.key = key
        self.scope = scope
        self.excluded = {key(t) for t in (*model.parameters(), *model.buffers())}
        self.sizes: dict[int, int] = {}
        self.in_attention: set[int] = set()
        self.kept: list[torch.Tensor] = []

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError) as exc:
            raise AttnprofError(
                f"autograd saved a tensor without a storage ({type(tensor).__name__}, "
                f"{tuple(tensor.shape)}): its activation bytes cannot be measured ({exc})"
            ) from None
        identity = self.key(tensor)
        if identity not in self.excluded:
            self.kept.append(tensor)
            self.sizes[identity] = storage.nbytes()
            if self.scope is not None and self.scope.active:
                self.in_attention.add(identity)
        return tensor

    @staticmethod
    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    @contextmanager
    def packing(self) -> Iterator[SavedStorages]:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack):
            yield self

    @property
    def bytes(self) -> int:
        return sum(self.sizes.values())

    @property
    def attention_bytes(self) -> int:
        return sum(self.sizes[identity] for identity in self.in_attention)


# ---- attributing the backward -------------------------------------------------------------

_SEQUENCE_NR = getattr(torch._C._autograd, "_get_sequence_nr", None)
"""The next autograd sequence number of this thread (a private torch function)."""

_CURRENT_NODE = getattr(torch._C, "_current_autograd_node", None)
"""The autograd node the engine is running on this thread, or None (a private torch
function; the engine keeps it set while it adds the node's gradients to those waiting)."""


class AttentionNodes:
    """Which autograd nodes the attention modules created: during backward, :meth:`scope`
    says whether the node the engine is running is one of them.

    Caveat first: a node is the attention's when its sequence number (autograd numbers the
    nodes it creates, per thread, in order) lies within a call of an attention module, or when
    it accumulates the gradient of one of the modules' parameters. The engine keeps a node
    current while it runs it and while it adds the gradients it produced to those already
    waiting for the next node, so that addition (the gradient of an input a module uses
    twice) is the module's too. This reads three private torch functions: where a torch lacks
    them, ``available`` is false and the backward is not attributed (None, never a guess). The
    engine runs a meta or CPU graph on the counting thread, one node at a time; a GPU graph
    runs on device threads: count on meta.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]):
        self.modules = [model.get_submodule(name) for name in names]
        self.params = {id(p) for module in self.modules for p in module.parameters()}
        self.calls: list[tuple[int, int]] = []
        self._open: list[int] = []
        self.available = (_SEQUENCE_NR is not None and _CURRENT_NODE is not None
                          and hasattr(torch.autograd.graph.Node, "_sequence_nr"))

    def _enter(self, module, args):
        self._open.append(_SEQUENCE_NR())

    def _leave(self, module, args, output):
        self.calls.append((self._open.pop(), _SEQUENCE_NR()))

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record the sequence-number range of every attention call while the model runs."""
        with hooked(self.modules if self.available else [], self._enter, self._leave):
            yield

    def scope(self) -> _BackwardScope:
        """What stands in for the forward's :class:`AttentionScope` during backward."""
        return _BackwardScope(self)

    def ranges(self) -> tuple[list[int], list[int]]:
        """The calls merged into disjoint ranges [start, end): their starts and ends."""
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(self.calls):
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        return starts, ends

    def owns(self, node, starts: list[int], ends: list[int]) -> bool:
        variable = getattr(node, "variable", None)
        if variable is not None:  # AccumulateGrad: numbered apart, owned by its parameter
            return id(variable) in self.params
        number = node._sequence_nr()
        position = bisect.bisect_right(starts, number) - 1
        return position >= 0 and number < ends[position]


class _BackwardScope:
    """``active`` while the autograd engine runs (or finishes) a node of an attention module;
    each node is looked up once."""

    def __init__(self, nodes: AttentionNodes):
        self.nodes = nodes
        self.starts, self.ends = nodes.ranges()
        self.known: dict[object, bool] = {}

    @property
    def active(self) -> bool:
        if not self.nodes.available:
            return False
        node = _CURRENT_NODE()
        if node is None:
            return False
        known = self.known.get(node)
        if known is None:
            known = self.known[node] = self.nodes.owns(node, self.starts, self.ends)
        return known


__all__ = [
    "AttentionNodes",
    "MetaOutputs",
    "SavedStorages",
    "StepCounter",
    "TrainingOps",
    "count_training",
    "count_training_by_op",
    "saved_activation_bytes",
]
