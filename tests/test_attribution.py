"""attnprof.attribution: profiled operators against the ``full`` count, the time they account
for, the runtime-neutral aggregation, the explanation's arithmetic, and what is refused.

One group of the whole zoo on ResNet-18 at 32x32 (batch 1, one thread, two profiled forwards)
is profiled once for the module and shared: a second or two after the profiler's own start.
No test asserts on a time; the checks on times compare two clocks of the same forwards.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn

import attnprof
from attnprof.attention.registry import attention_names
from attnprof.attribution import (
    BACKBONE,
    Explanation,
    ForwardProfile,
    GroupAttribution,
    OpEvent,
    VariantAttribution,
    attribute_group,
    attribute_variant,
    explain,
)
from attnprof.attribution.levels import is_composite
from attnprof.counting import count
from attnprof.errors import AttnprofError
from attnprof.machine import MachineLimits

SIZE = 32
ZOO = [name for name in attention_names() if name != "none"]
OPTIONS = {"sa": {"groups": 32}}  # ResNet-18's 64-channel blocks need C divisible by 2G
SUM_TOLERANCE = 0.05


def factory(variant: str, device: str | None = None):
    return functools.partial(attnprof.build_model, "resnet18", variant, device=device,
                             input_shape=(1, 3, SIZE, SIZE), **OPTIONS.get(variant, {}))


@pytest.fixture(scope="module")
def zoo() -> GroupAttribution:
    torch.manual_seed(0)
    variants = {name: factory(name) for name in ["none", *ZOO]}
    return attribute_group(variants, SIZE, batch=1, threads=1, forwards=2, warmup=0)


def test_the_zoo_is_every_registered_module():
    assert set(ZOO) == {"se", "sge", "sa", "cbam", "eca", "gc", "bam", "sk"}


# --- operators against the full count --------------------------------------------------------


@pytest.mark.parametrize("variant", ZOO)
def test_attention_operators_per_module_match_the_full_count(zoo, variant):
    """In eager mode each attention module runs exactly the operators the full count counts
    for it, operator by operator (calls per forward)."""
    found = zoo.variant(variant)
    assert found.modules, variant
    for scope in found.modules:
        assert scope.calls > 0
        assert [(row.op, row.calls) for row in scope.ops] == \
            [(row.op, row.counted_calls) for row in scope.ops], scope.scope
    low, high = found.calls_per_module
    assert found.attention_calls == sum(scope.calls for scope in found.modules)
    assert low * len(found.modules) <= found.attention_calls <= high * len(found.modules)


@pytest.mark.parametrize("variant", ["none", *ZOO])
def test_backbone_operators_match_the_full_count(zoo, variant):
    backbone = zoo.variant(variant).backbone
    assert backbone.scope == BACKBONE
    assert backbone.calls == backbone.counted_calls > 50


@pytest.mark.parametrize("variant", ZOO)
def test_flops_are_the_stored_full_count(zoo, variant):
    """The per-call count beside the profiled operators sums to what a suite stores for the
    cell: the full convention's FLOPs, attention and all, counted on the meta device."""
    stored = count(factory(variant, "meta")(), (1, 3, SIZE, SIZE), "full")
    found = zoo.variant(variant)
    assert sum(scope.flops for scope in found.modules) == stored.attention
    assert sum(scope.flops for scope in found.scopes) == stored.value


@pytest.mark.parametrize("variant", ["se", "bam"])
def test_bytes_are_the_full_count(zoo, variant):
    """And the bytes, counted on the CPU model (on the meta device native_batch_norm also
    returns the per-channel statistics that the CPU kernel leaves empty in eval mode: a few kB
    more; BAM has batch norms inside the module, SE none)."""
    stored = count(factory(variant)(), (1, 3, SIZE, SIZE), "full")
    found = zoo.variant(variant)
    assert sum(scope.bytes for scope in found.modules) == stored.attention_bytes
    assert sum(scope.bytes for scope in found.scopes) == stored.bytes


def test_the_scopes_are_the_models_attention_modules(zoo):
    stages = [scope.stage for scope in zoo.variant("se").modules]
    assert stages == [0, 0, 1, 1, 2, 2, 3, 3]  # ResNet-18: two blocks per stage
    assert [s.scope for s in zoo.variant("bam").modules] == \
        ["attention1", "attention2", "attention3"]
    assert all(s.scope.endswith(".conv1") for s in zoo.variant("sk").modules)


def test_composite_operators_are_the_ones_torch_declares():
    assert all(is_composite(op) for op in
               ("aten::conv2d", "aten::linear", "aten::reshape", "aten::adaptive_avg_pool2d",
                "aten::batch_norm", "aten::flatten"))
    assert not any(is_composite(op) for op in
                   ("aten::convolution", "aten::addmm", "aten::t", "aten::mean",
                    "aten::sigmoid", "aten::std", "attnprof.forward", "aten::no_such_op"))


# --- time ------------------------------------------------------------------------------------


@pytest.mark.alone  # compares profiled and wall-clock time
@pytest.mark.parametrize("variant", ["none", *ZOO])
def test_the_attribution_sums_to_the_profiled_forward(zoo, variant):
    """Each moment of a profiled forward lands in exactly one stretch (an operator, a
    composite's dispatch, Python between operators), so the rows sum to the profiler's span
    of the forward (a stretch counted twice or dropped would show here); and the span is the
    forward as a clock the profiler does not keep sees it: inside a perf_counter around the
    same call, within 5% of it in the forward the scheduler disturbed least (a preemption
    between the two clocks' starts only widens a gap)."""
    found = zoo.variant(variant)
    assert found.attributed_ms == pytest.approx(found.forward_ms, rel=1e-9)
    pairs = list(zip(found.span_ms, found.wall_ms, strict=True))
    assert all(span <= wall for span, wall in pairs)
    assert min(1 - span / wall for span, wall in pairs) <= SUM_TOLERANCE, pairs
    for scope in found.scopes:
        assert scope.op_ms > 0 and scope.between_ms > 0 and scope.dispatch_ms >= 0
    assert found.recorded > found.calls  # nested events: more recorded than counted
    assert found.forwards == len(found.unprofiled_ms) == 2 and len(found.kept) == 1


def test_group_deltas_and_shares(zoo):
    base = zoo.variant("none")
    for name in ZOO:
        found = zoo.variant(name)
        assert zoo.delta_ms(name) == found.forward_ms - base.forward_ms
        assert zoo.extra_calls(name) == found.calls - base.calls
        share = zoo.attention_share(name)
        assert share is None or share == found.attention_ms / zoo.delta_ms(name)
    # SK replaces conv1 + bn1 + relu of each of the 8 basic blocks, whose calls leave the
    # backbone: convolution, native_batch_norm, the empty tensor batch_norm makes for its
    # reserve, relu_ (4 each)
    assert zoo.variant("sk").backbone.calls == base.calls - 8 * 4
    assert zoo.extra_calls("se") == zoo.variant("se").attention_calls
    assert (zoo.runtime, zoo.batch, zoo.threads, zoo.input_shape) == ("eager", 1, 1, (3, 32, 32))


def test_the_record_round_trips_through_json(zoo):
    data = json.loads(json.dumps(zoo.to_dict()))
    assert GroupAttribution.from_dict(data) == zoo


# --- the runtime-neutral path and the explanation --------------------------------------------


def other_runtime_forward(sigmoid_us: float) -> ForwardProfile:
    """A forward as another runtime's trace gives it: ONNX op types, a module scope, node
    names, and the time between nodes."""
    events = (
        OpEvent("op", "Conv", BACKBONE, 600.0, "/conv1/Conv"),
        OpEvent("op", "GlobalAveragePool", "block.se", 50.0, "/se/pool"),
        OpEvent("op", "Sigmoid", "block.se", sigmoid_us, "/se/Sigmoid"),
        OpEvent("op", "Mul", "block.se", 30.0, "/se/Mul"),
        OpEvent("between", "", BACKBONE, 100.0),
    )
    return ForwardProfile(span_us=sum(e.duration_us for e in events), events=events)


def test_another_runtimes_events_make_the_same_records():
    plain = attribute_variant("none", [ForwardProfile(700.0, (
        OpEvent("op", "Conv", BACKBONE, 600.0), OpEvent("between", "", BACKBONE, 100.0)))],
        [0.6], {})
    # the third forward was disturbed (a neighbour on the CPU): the faster half leaves it out
    se = attribute_variant("se", [other_runtime_forward(20.0), other_runtime_forward(40.0),
                                  other_runtime_forward(1000.0)], [0.7, 0.7, 0.7],
                           {"block.se": 2})
    group = GroupAttribution(runtime="onnxruntime", profiler="made up", level="ONNX nodes",
                             input_shape=(3, 32, 32), batch=1, threads=1, dtype="float32",
                             baseline="none", warmup=0, torch_version="-",
                             variants=(plain, se))
    module = se.modules[0]
    # per kept forward: Sigmoid (20 + 40) / 2 = 30 us, the module 50 + 30 + 30 = 110 us
    assert se.kept == (0, 1) and se.span_ms[2] == pytest.approx(1.78)
    assert [(row.op, row.calls, row.ms) for row in module.ops] == [
        ("GlobalAveragePool", 1, 0.05), ("Mul", 1, 0.03), ("Sigmoid", 1, 0.03)]
    assert module.counted_calls is None and module.flops is None  # not aten ops: not counted
    assert module.stage == 2 and se.attention_ms == pytest.approx(0.11)
    assert se.forward_ms == pytest.approx(0.81) == se.attributed_ms
    assert group.delta_ms("se") == pytest.approx(0.11) and group.extra_calls("se") == 3
    assert group.attention_share("se") == pytest.approx(1.0)
    assert se.wall_ms == () and se.recorded is None
    assert GroupAttribution.from_dict(json.loads(json.dumps(group.to_dict()))) == group


def made_up_limits(**changes) -> MachineLimits:
    fields = dict(
        device="cpu", dtype="float32", threads=1, bandwidth_bytes_per_s=1e10,
        bandwidth_spread=0.0, bandwidth_method="made up", bandwidth_buffer_bytes=1 << 27,
        bandwidth_samples_bytes_per_s=(1e10,), peak_flops_per_s=1e11, peak_flops_spread=0.0,
        peak_flops_method="made up", matmul_n=512, peak_flops_samples_per_s=(1e11,),
        repeats=1, seconds=0.0, other_cpu_load=None, bandwidth_statistic="best",
        bandwidth_pairs=3, op_fixed_cost_us=5.0,
    )
    return MachineLimits(**{**fields, **changes})


def test_explanation_arithmetic(zoo):
    se = zoo.variant("se")
    extra = zoo.extra_calls("se")
    # 10 GB/s: 2e7 bytes take 2 ms; 5 us per op: 100 extra calls take 0.5 ms
    found = explain(zoo, "se", made_up_limits(), delta_ms=4.0, delta_bytes=20_000_000)
    assert found.bytes_ms == pytest.approx(2.0)
    assert found.calls_ms == pytest.approx(extra * 5.0 / 1e3)
    assert found.left_ms == pytest.approx(4.0 - 2.0 - extra * 5.0 / 1e3)
    assert found.bytes_share == pytest.approx(0.5)
    assert (found.delta_ms_source, found.delta_bytes_source) == ("given", "given")
    assert Explanation.from_dict(json.loads(json.dumps(found.to_dict()))) == found
    # by default the attribution's own profiled Δ and full-count bytes
    own = explain(zoo, "se", made_up_limits())
    base = zoo.variant("none")
    assert own.delta_ms == zoo.delta_ms("se")
    assert own.delta_bytes == sum(s.bytes for s in se.scopes) - sum(s.bytes for s in base.scopes)
    assert own.delta_bytes == sum(s.bytes for s in se.modules) > 0  # SE adds, removes nothing
    negative = explain(zoo, "se", made_up_limits(), delta_ms=-1.0, delta_bytes=-10_000_000)
    assert negative.bytes_ms == pytest.approx(-1.0) and negative.bytes_share is None


# --- refused ---------------------------------------------------------------------------------


class _NotAModel:
    pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": "plain"}, "baseline 'plain' is not among the variants; valid: none"),
        ({"variants": {}}, "variants must be a non-empty mapping"),
        ({"variants": {"none": 3}}, "variants must map names to model factories"),
        ({"variants": {"none": _NotAModel}}, "its factory returned a _NotAModel"),
        ({"forwards": 0}, "forwards must be an integer >= 1"),
        ({"batch": True}, "batch must be an integer >= 1"),
        ({"warmup": -1}, "warmup must be an integer >= 0"),
        ({"threads": 0}, "threads must be a positive integer"),
        ({"input_shape": (3, 0, 4)}, "invalid input size"),
        ({"variants": {"none": lambda: nn.Linear(2, 2).double()}}, "float32 models on the CPU"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"variants": {"none": factory("none")}, "input_shape": SIZE, **kwargs}
    with pytest.raises(AttnprofError, match=message):
        attribute_group(**arguments)


def test_aggregation_refuses_what_it_cannot_count():
    with pytest.raises(AttnprofError, match="not one of the model's attention modules"):
        attribute_variant("se", [other_runtime_forward(20.0)], [], {})
    changed = ForwardProfile(10.0, (OpEvent("op", "Conv", BACKBONE, 10.0),) * 2)
    with pytest.raises(AttnprofError, match="the operators differ between profiled forwards"):
        attribute_variant("none", [ForwardProfile(10.0, (OpEvent("op", "Conv", BACKBONE,
                                                                 10.0),)), changed], [], {})
    with pytest.raises(AttnprofError, match="event kind 'kernel' is not one of"):
        OpEvent("kernel", "Conv", BACKBONE, 1.0)
    with pytest.raises(AttnprofError, match="at least one forward"):
        VariantAttribution("x", (), (), (), (), ())
    with pytest.raises(AttnprofError, match="kept must index its forwards"):
        VariantAttribution("x", (1.0,), (), (), (), (1,))


def test_the_faster_half():
    from attnprof.attribution.records import faster_half

    assert faster_half([3.0, 1.0, 2.0]) == (1, 2)
    assert faster_half([2.0, 1.0]) == (1,)
    assert faster_half([5.0]) == (0,)
    assert faster_half([1.0, 9.0, 1.0, 1.0]) == (0, 2, 3)


def test_explain_refuses_what_it_cannot_explain(zoo):
    with pytest.raises(AttnprofError, match="no fixed cost per operator"):
        explain(zoo, "se", made_up_limits(op_fixed_cost_us=None))
    with pytest.raises(AttnprofError, match="no variant 'xx' in this attribution"):
        explain(zoo, "xx", made_up_limits())
    with pytest.raises(AttnprofError, match="delta_bytes must be an integer"):
        explain(zoo, "se", made_up_limits(), delta_bytes=1.5)
    with pytest.raises(AttnprofError, match="limits must be a MachineLimits"):
        explain(zoo, "se", {"bandwidth_bytes_per_s": 1e10})
