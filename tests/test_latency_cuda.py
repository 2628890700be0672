"""CUDA latency measurement; every test skips cleanly on a machine without a GPU.

No assertion on absolute times: only fields, environment, memory, and a self-ratio.
"""

from __future__ import annotations

import copy

import pytest
import torch

from attnprof.backbones import build_model
from attnprof.latency import measure_latency, paired_latency, time_attention_modules
from attnprof.latency.memory import CUDA_MAX_ALLOCATED

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

FAST = {"min_run_time": 0.1, "samples": 10, "warmup": 3, "warmup_time": 0.05}


def _bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@pytest.mark.parametrize(
    ("dtype", "channels_last"),
    [
        ("float32", False),
        ("float32", True),
        pytest.param("bfloat16", False, marks=pytest.mark.skipif(
            not _bf16_supported(), reason="needs a CUDA GPU with bfloat16")),
        ("float16", True),
    ],
)
def test_resnet18_on_cuda(dtype, channels_last):
    model = build_model("resnet18")
    records = measure_latency(model, 64, device="cuda", batch_sizes=(1, 4), dtype=dtype,
                              channels_last=channels_last, **FAST)
    for record in records:
        assert record.device.startswith("cuda:")
        assert record.dtype == dtype and record.autocast == (dtype != "float32")
        assert record.channels_last == channels_last
        assert record.median_ms > 0 and record.iqr_ms >= 0
        assert record.ci95_ms[0] <= record.median_ms <= record.ci95_ms[1]
        assert record.samples >= FAST["samples"]
        assert record.images_per_s == pytest.approx(record.batch * 1000 / record.median_ms)
        assert record.peak_mem_kind == CUDA_MAX_ALLOCATED
        assert record.peak_mem_bytes > record.activation_peak_bytes > 0
    assert next(model.parameters()).is_cuda


def test_cuda_environment_fields():
    (record,) = measure_latency(build_model("resnet18"), 32, device="cuda", memory=False, **FAST)
    env = record.environment
    assert env.device.startswith("cuda:")
    assert env.device_name == torch.cuda.get_device_name(torch.device(env.device))
    assert env.cuda_version == torch.version.cuda and env.cuda_version
    assert env.cudnn_version == torch.backends.cudnn.version() and env.cudnn_version > 0
    assert env.driver_version  # from NVML or nvidia-smi
    assert env.gpu_capability and env.gpu_memory_bytes > 0
    assert env.cudnn_benchmark is not None and env.tf32_matmul is not None
    summary = env.summary()
    assert "CUDA" in summary and "cuDNN" in summary and "driver" in summary


def test_cuda_paired_self_ratio_near_one():
    base = build_model("resnet18")
    result = paired_latency({"none": base, "same": copy.deepcopy(base)}, 64, device="cuda",
                            batch=4, processes=1, rounds=12, sample_time=0.05)
    same = result.result("same")
    ci = same.ratio.ci95
    assert ci[0] <= 1.0 <= ci[1] or abs(same.ratio.delta_pct) < 15, same
    assert result.baseline_record.peak_mem_bytes > 0
    assert same.record.peak_mem_kind == CUDA_MAX_ALLOCATED


def test_cuda_sequential_comparison_in_fresh_processes():
    """The decided-verdict design on the GPU: CUDA-event samples in fresh processes, each
    comparison stopping with its reason."""
    from attnprof.latency import backbone_variants
    from attnprof.latency.records import STOP_REASONS

    result = paired_latency(backbone_variants("resnet18", ("none", "se")), 64, device="cuda",
                            batch=4, rounds=3, sample_time=0.05, target_width=10.0,
                            max_processes=12)
    se = result.result("se")
    assert se.ratio.design == "sequential" and se.ratio.stopped in STOP_REASONS
    assert se.ratio.processes >= 6 and se.ratio.ci95 is not None
    assert se.record.device.startswith("cuda") and se.record.median_ms > 0
    assert all(run.ok for run in result.workers)


def test_cuda_module_timing():
    model = build_model("resnet50", "se")
    timings = time_attention_modules(model, 64, batch=2, device="cuda", min_run_time=0.05)
    assert [t.stage for t in timings] == [1, 2, 3, 4]
    assert all(t.ms_per_call > 0 and t.device.startswith("cuda:") for t in timings)
