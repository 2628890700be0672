"""Deployment runtimes (attnprof.runtimes): refused in one line when missing, every zoo module
exported and checked against eager, export failures named, ONNX Runtime's profile traced back
to the attention modules.

The default run exports every registered module through ONNX Runtime at once (side by side on
one feature map, each output checked) and one ResNet-18; an export takes seconds per network.
Every module inside a ResNet-18, per runtime, is checked under the slow mark: AOTInductor
compiles take tens of seconds per network, OpenVINO conversions several. Parameters that a
module initialises to one constant (gates that start closed) are drawn at random first, so
the checks see every operator (:func:`_unconstant`).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from support import installed, needs_onnx
from torch import nn

import attnprof
from attnprof.attention import attention_names
from attnprof.errors import AttnprofError
from attnprof.runtimes import (
    RUNTIMES,
    BuildRequest,
    Built,
    LoadRequest,
    get_runtime,
    require,
)
from attnprof.runtimes import aoti as aoti_module
from attnprof.runtimes.base import compare, root_cause
from attnprof.runtimes.openvino_rt import compile_config

HEAVY = ("onnx", "onnxruntime", "onnxscript", "openvino", "torch._inductor")
SHAPE = (1, 3, 64, 64)  # 32x32 leaves 1x1 maps in stage 4, where SGE divides by a NaN std
RUNTIME_FILES = sorted((Path(attnprof.__file__).parent / "runtimes").glob("*.py"))


needs_openvino = pytest.mark.skipif(not installed("openvino"),
                                    reason="pip install 'attnprof[openvino]'")


def _small(attention: str) -> nn.Module:
    # SA needs channels divisible by 2 * groups; ResNet-18's first stage has 64 channels.
    options = {"groups": 8} if attention == "sa" else {}
    torch.manual_seed(0)
    return attnprof.build_model("resnet18", attention, **options)


def _unconstant(module: nn.Module, seed: int = 0) -> nn.Module:
    """Draw every parameter that holds one value throughout (SA's and SGE's gate weights at
    0 and biases at 1, GC's zeroed last conv, norms' 1 and 0) from N(value, 0.5²).

    At the official initialisation those gates are constant, so an export that got the
    gate's inner branch wrong would still match eager; drawn, every operator counts."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.numel() == 1 or bool((parameter == parameter.flatten()[0]).all()):
                noise = torch.randn(parameter.shape, generator=generator)
                parameter.add_(0.5 * noise)
    return module


class _Zoo(nn.Module):
    """Every registered attention module side by side on one feature map, one output each,
    so one export checks them all (an export of a ResNet-18 takes seconds per module)."""

    def __init__(self, channels: int = 128):  # SA's default 64 groups need 2 * 64 channels
        super().__init__()
        self.names = [name for name in attention_names() if name != "none"]
        self.zoo = nn.ModuleList(attnprof.build_attention(name, channels) for name in self.names)

    def forward(self, x):
        return tuple(module(x) for module in self.zoo)


def _request(model: nn.Module, folder: Path, name: str = "resnet18") -> BuildRequest:
    return BuildRequest(model=model, example=torch.randn(SHAPE), folder=folder, threads=1,
                        name=name)


class _Eigen(nn.Module):
    """A forward no exporter maps to ONNX (a symmetric eigen-decomposition)."""

    def forward(self, x):
        return torch.linalg.eigvalsh(x[0, 0])


def _busy_threads(forward, calls: int = 100) -> int:
    """How many of the process's threads took part in ``calls`` forwards (at least a tenth
    of the busiest one's CPU time): the runtime's thread count as the operating system sees
    it. A pool that hands out work dynamically (OpenVINO's TBB) may leave a worker that the
    machine's other load keeps off a core nearly idle, so only one thread is certain there."""
    process = psutil.Process()
    forward()
    before = {t.id: t.user_time + t.system_time for t in process.threads()}
    for _ in range(calls):
        forward()
    spent = [t.user_time + t.system_time - before.get(t.id, 0.0) for t in process.threads()]
    return sum(1 for s in spent if s >= 0.1 * max(spent))


class _Branchy(nn.Module):
    """A forward that branches on a tensor's value: a trace would keep one branch."""

    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


# -- the registry and what each runtime declares -------------------------------------------


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=lambda p: p.name)
def test_runtime_modules_import_no_heavy_library_at_module_level(path):
    """attnprof must import on a machine without the runtimes: their libraries are imported
    inside functions only."""
    tree = ast.parse(path.read_text())
    top = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.append(node.module)
    assert not [name for name in top if name.split(".")[0] in HEAVY or name in HEAVY], top


def test_registry_declares_forward_only_runtimes_with_extras():
    assert set(RUNTIMES) == {"onnxruntime", "aoti", "openvino"}
    for name, runtime in RUNTIMES.items():
        assert runtime.name == name
        assert runtime.passes == ("inference",)
        assert runtime.install == f"pip install 'attnprof[{runtime.extra}]'"
        assert runtime.description and "\n" not in runtime.description


def test_pyproject_has_every_runtime_extra():
    import tomllib

    pyproject = Path(attnprof.__file__).parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for runtime in RUNTIMES.values():
        assert runtime.extra in extras, runtime.name


def test_unknown_runtime_lists_the_valid_ones():
    with pytest.raises(AttnprofError, match="unknown runtime 'tensorrt'; valid runtimes: "
                                            "onnxruntime, aoti, openvino"):
        get_runtime("tensorrt")


@pytest.mark.parametrize(("name", "package"), [("onnxruntime", "onnxruntime"),
                                               ("onnxruntime", "onnxscript"),
                                               ("openvino", "openvino")])
def test_missing_extra_is_one_line_with_the_pip_command(monkeypatch, name, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda mod, *a: None if mod == package else real(mod, *a))
    reason = RUNTIMES[name].unavailable("cpu")
    assert reason is not None and "\n" not in reason
    assert package in reason and RUNTIMES[name].install in reason
    with pytest.raises(AttnprofError, match=package):
        require(name, "cpu")


def test_aoti_without_a_compiler_reuses_the_compile_check(monkeypatch):
    from attnprof.latency import settings

    monkeypatch.setattr(settings, "_cxx_compiler", lambda: None)
    reason = aoti_module.unavailable("cpu")
    assert reason is not None and "C++ compiler" in reason and "\n" not in reason


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_runtimes_refuse_a_gpu_device(name):
    reason = RUNTIMES[name].unavailable("cuda")
    assert reason is not None and "cpu only" in reason


# -- requests are checked where they enter ----------------------------------------------------


def test_build_request_refuses_a_model_in_train_mode(tmp_path):
    with pytest.raises(AttnprofError, match="train mode"):
        _request(nn.Conv2d(3, 4, 1).train(), tmp_path)


@pytest.mark.parametrize("x", [torch.randn(3, 32, 32), torch.randn(SHAPE, dtype=torch.float64)],
                         ids=["3-D", "float64"])
def test_build_request_refuses_an_input_that_is_not_nchw_float32(tmp_path, x):
    with pytest.raises(AttnprofError, match=r"4-D \(N, C, H, W\) float32"):
        BuildRequest(nn.Conv2d(3, 4, 1).eval(), x, tmp_path, 1, "conv")


def test_load_request_refuses_zero_threads():
    with pytest.raises(AttnprofError, match="threads must be a positive integer"):
        LoadRequest(input=torch.randn(SHAPE), threads=0)


# -- the output check -------------------------------------------------------------------------


def test_compare_measures_error_against_the_largest_eager_output():
    reference = torch.tensor([[1.0, -2.0]])
    result = [np.array([[1.1, -2.0]], dtype=np.float32)]
    # max |diff| = 0.1 (float32 rounding of 1.1 aside), max |eager| = 2, relative 0.05
    check = compare(reference, result, atol=0.0, rtol=0.06, what="t")
    assert check.max_abs_err == pytest.approx(0.1, rel=1e-6)
    assert check.max_rel_err == pytest.approx(0.05, rel=1e-6)
    assert check.ok  # 0.1 <= 0 + 0.06 * 2
    assert not compare(reference, result, atol=0.0, rtol=0.04, what="t").ok  # 0.1 > 0.08
    assert not compare(reference, [np.array([[np.nan, -2.0]])], 1.0, 1.0, "t").ok


def test_compare_checks_each_output_against_its_own_magnitude():
    """A small output that is all wrong fails, whatever the size of its neighbour."""
    reference = (torch.tensor([1000.0]), torch.tensor([0.01]))
    result = [np.array([1000.0]), np.array([-0.01])]  # the second output's sign flipped
    check = compare(reference, result, atol=1e-5, rtol=1e-4, what="t")
    assert not check.ok and check.scale == pytest.approx(0.01)
    assert check.max_abs_err == pytest.approx(0.02)
    assert compare(reference, [np.array([1000.05]), np.array([0.01])], 1e-5, 1e-4, "t").ok


def test_compare_refuses_a_reference_that_is_not_finite():
    with pytest.raises(AttnprofError, match="eager PyTorch itself outputs NaN"):
        compare(torch.tensor([np.nan, 1.0]), [np.array([np.nan, 1.0])], 1e-5, 1e-4, "t")


def test_compare_refuses_other_shapes_or_output_counts():
    with pytest.raises(AttnprofError, match="shape"):
        compare(torch.zeros(1, 10), [np.zeros((1, 9))], 1e-5, 1e-4, "t")
    with pytest.raises(AttnprofError, match="2 output"):
        compare(torch.zeros(1, 10), [np.zeros((1, 10))] * 2, 1e-5, 1e-4, "t")


def test_root_cause_is_the_bottom_of_the_chain():
    try:
        try:
            raise KeyError("aten.op has no ONNX function")
        except KeyError as inner:
            raise RuntimeError("step 3/3 failed; next steps: ...") from inner
    except RuntimeError as outer:
        assert isinstance(root_cause(outer), KeyError)


# -- ONNX Runtime: every zoo module, failures, the profile ----------------------------------


_BUILT: dict[str, tuple] = {}


def _onnx_built(attention: str, tmp_path_factory):
    if attention not in _BUILT:
        model = _unconstant(_small(attention))
        folder = tmp_path_factory.mktemp(f"onnx-{attention}")
        request = _request(model, folder, f"resnet18 + {attention}")
        _BUILT[attention] = (model, request, RUNTIMES["onnxruntime"].build(request))
    return _BUILT[attention]


@needs_onnx
def test_onnxruntime_matches_eager_for_every_zoo_module(tmp_path):
    zoo = _unconstant(_Zoo()).eval()
    x = torch.randn(1, 128, 8, 8)
    built = RUNTIMES["onnxruntime"].build(BuildRequest(zoo, x, tmp_path, 1, "zoo"))
    assert built.check.ok and built.details["exporter"].startswith("torch.onnx dynamo=True")
    outputs = RUNTIMES["onnxruntime"].load(built, LoadRequest(x, threads=1))()
    with torch.inference_mode():
        expected = [out.numpy() for out in zoo(x)]
    assert len(outputs) == len(expected) == len(zoo.names)
    for name, got, want in zip(zoo.names, outputs, expected, strict=True):
        scale = float(np.abs(want).max())
        assert np.abs(want - want.mean()).max() > 1e-3 * scale, f"{name}: output is constant"
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 + 1e-4 * scale, err_msg=name)


@needs_onnx
def test_onnxruntime_runs_a_zoo_network(tmp_path_factory):
    model, request, built = _onnx_built("se", tmp_path_factory)
    assert built.check.ok and built.path.is_file() and built.input_shape == SHAPE
    assert built.details["nodes_optimized"] < built.details["nodes_exported"]  # fusions ran
    (got,) = RUNTIMES["onnxruntime"].load(built, LoadRequest(request.example, threads=1))()
    with torch.inference_mode():
        expected = model(request.example).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 + 1e-4 * np.abs(expected).max())


@needs_onnx
def test_built_crosses_to_a_timing_process_as_json(tmp_path_factory):
    import json

    *_, built = _onnx_built("se", tmp_path_factory)
    again = Built.from_dict(json.loads(json.dumps(built.to_dict())))
    assert again == built
    failed = built.to_dict() | {"check": built.check.to_dict() | {"max_abs_err": 1.0}}
    with pytest.raises(AttnprofError, match="failed its output check"):
        Built.from_dict(failed).loadable()
    with pytest.raises(AttnprofError, match="not a built runtime artifact"):
        Built.from_dict({"runtime": "onnxruntime"})


@needs_onnx
def test_onnxruntime_refuses_an_input_of_another_shape(tmp_path_factory):
    _, _, built = _onnx_built("se", tmp_path_factory)
    with pytest.raises(AttnprofError, match=r"exported for input \(1, 3, 64, 64\)"):
        RUNTIMES["onnxruntime"].load(built, LoadRequest(torch.randn(1, 3, 32, 32), 1))


@needs_onnx
def test_a_model_that_does_not_export_is_one_line_with_the_exporters_reason(tmp_path):
    with pytest.raises(AttnprofError) as caught:
        RUNTIMES["onnxruntime"].build(_request(_Eigen().eval(), tmp_path, "eigen"))
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith("eigen: onnxruntime could not export the model: ")
    assert "linalg_eigh" in message  # the operator that has no ONNX function
    assert caught.value.__cause__ is not None  # the exporter's whole error stays chained
    assert not list(tmp_path.iterdir())  # a failed build leaves nothing behind


def test_aoti_refuses_a_data_dependent_branch_before_compiling(tmp_path):
    with pytest.raises(AttnprofError) as caught:
        RUNTIMES["aoti"].build(_request(_Branchy().eval(), tmp_path, "branchy"))
    message = str(caught.value)
    assert message.startswith("branchy: aoti could not export the model: ")
    assert "data-dependent" in message and "\n" not in message
    assert not list(tmp_path.iterdir())


@needs_onnx
def test_onnx_profile_tells_the_attention_modules_apart(tmp_path_factory):
    from attnprof.runtimes.onnx_profile import profile_nodes

    model, request, built = _onnx_built("se", tmp_path_factory)
    modules = [name for name, _ in model.attention_modules()]
    profile = profile_nodes(built, LoadRequest(request.example, threads=1), calls=2)
    assert len(profile.runs_us) == 2 and {e.call for e in profile.events} == {0, 1}
    assert all(event.via != "none" for event in profile.events)
    owners = {event.under(modules) for event in profile.events}
    assert set(modules) <= owners  # every block's SE ran and was found
    inside = {e.op_type for e in profile.events if e.under(modules)}
    outside = {e.op_type for e in profile.events if not e.under(modules)}
    # SE is pool -> FC -> ReLU -> FC -> sigmoid -> scale: ReduceMean, fused Gemms, Mul;
    # no convolution of the backbone is counted inside it, and none of its ops outside.
    assert {"ReduceMean", "Mul"} <= inside and "Conv" not in inside
    assert "Conv" in outside and "Sigmoid" not in outside
    split = profile.split(modules)
    assert split["attention"] > 0 and split["backbone"] > split["attention"]
    assert split["untraced"] == 0
    layout = sum(e.duration_us for e in profile.events if e.layout) / 2
    assert split["layout"] == pytest.approx(layout)
    assert sum(split.values()) == pytest.approx(sum(e.duration_us for e in profile.events) / 2)
    # one thread runs one node at a time: a call's nodes fit in that call's run, and fill
    # most of it (the rest is the session's own work between nodes)
    for call, span in enumerate(profile.runs_us):
        nodes = sum(e.duration_us for e in profile.events if e.call == call)
        assert 0.5 * span <= nodes <= 1.05 * span, (call, nodes, span)


@pytest.mark.alone  # counts the threads seen busy
@needs_onnx
def test_onnxruntime_runs_on_the_runs_threads(tmp_path_factory):
    _, request, built = _onnx_built("se", tmp_path_factory)
    for threads in (1, 2):
        forward = RUNTIMES["onnxruntime"].load(built, LoadRequest(request.example, threads))
        assert _busy_threads(forward) == threads


def test_torchscript_node_names_give_qualified_module_scopes():
    from attnprof.runtimes.onnx_profile import _scopes_from_name

    assert _scopes_from_name("/layer1/layer1.0/attention/fc1/Gemm") == (
        "layer1", "layer1.0", "layer1.0.attention", "layer1.0.attention.fc1")
    assert _scopes_from_name("/fc/Gemm") == ("fc",)
    assert _scopes_from_name("node_Split_3") == ()


# -- every zoo module in a ResNet-18, per runtime (slow) -----------------------------------


@pytest.mark.slow
@needs_onnx
@pytest.mark.parametrize("attention", attention_names())
def test_onnxruntime_matches_eager_for_every_zoo_network(attention, tmp_path):
    request = _request(_unconstant(_small(attention)), tmp_path, f"resnet18 + {attention}")
    built = RUNTIMES["onnxruntime"].build(request)
    assert built.check.ok and built.details["exporter"].startswith("torch.onnx dynamo=True")


@pytest.mark.slow
@pytest.mark.parametrize("attention", attention_names())
def test_aoti_matches_eager_for_every_zoo_module(attention, tmp_path):
    if RUNTIMES["aoti"].unavailable("cpu"):
        pytest.skip(RUNTIMES["aoti"].unavailable("cpu"))
    request = _request(_unconstant(_small(attention)), tmp_path, f"resnet18 + {attention}")
    built = RUNTIMES["aoti"].build(request)
    assert built.check.ok and built.path.is_file()
    before = torch.get_num_threads()
    try:
        for threads in (2, 1):  # the package honours torch.set_num_threads, set by load
            forward = RUNTIMES["aoti"].load(built, LoadRequest(request.example, threads))
            assert _busy_threads(forward, calls=30) == threads
        output = forward()
    finally:
        torch.set_num_threads(before)
    with torch.inference_mode():
        torch.testing.assert_close(output, request.model(request.example), rtol=0,
                                   atol=1e-5 + 1e-4 * built.check.scale)


@pytest.mark.slow
@needs_openvino
@pytest.mark.parametrize("attention", attention_names())
def test_openvino_matches_eager_for_every_zoo_module(attention, tmp_path):
    request = _request(_unconstant(_small(attention)), tmp_path, f"resnet18 + {attention}")
    built = RUNTIMES["openvino"].build(request)
    assert built.check.ok and built.path.is_file()
    forward = RUNTIMES["openvino"].load(built, LoadRequest(request.example, threads=1))
    assert _busy_threads(forward, calls=30) == 1
    output = forward()
    import openvino

    compiled = openvino.Core().compile_model(str(built.path), "CPU", compile_config(2))
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 2
    assert compiled.get_property("NUM_STREAMS") == 1
    with torch.inference_mode():
        expected = request.model(request.example).numpy()
    np.testing.assert_allclose(output[0], expected, rtol=0,
                               atol=1e-5 + 1e-4 * np.abs(expected).max())
