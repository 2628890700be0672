"""CPU latency measurement: records, paired comparison, refusals, module timing.

Tiny models and short run times keep this file to a few seconds of timing. No test asserts an
absolute wall-clock time: only ratios measured in the same run, with generous tolerances.
"""

from __future__ import annotations

import copy
import json
from functools import partial

import pytest
import torch
from torch import nn
from torch.utils.benchmark import Timer

from attnprof.attention import attention_names
from attnprof.backbones import build_model
from attnprof.errors import AttnprofError
from attnprof.latency import (
    LatencyRecord,
    ModuleTiming,
    PairedComparison,
    collect_environment,
    measure_latency,
    paired_latency,
    time_attention_modules,
)
from attnprof.latency import rounds as rounds_module
from attnprof.latency import settings as settings_module
from attnprof.latency.environment import CpuContention, Environment
from attnprof.latency.memory import CPU_ALLOCATOR, measure_peak_memory, resident_bytes

FAST = {"min_run_time": 0.05, "samples": 8, "warmup": 2, "warmup_time": 0.02}
PAIRED_FAST = {"processes": 1, "rounds": 10, "sample_time": 0.02}


def tiny_net(width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)
    ).eval()


class Twice(nn.Module):
    """Runs the wrapped model three times and returns the last output: a known slowdown."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        self.inner(x)
        self.inner(x)
        return self.inner(x)


# -- measure_latency --------------------------------------------------------------------------


def test_measure_latency_fields_are_sane():
    model = tiny_net()
    model.train()
    before = torch.get_num_threads()
    records = measure_latency(model, (32, 32), batch_sizes=(1, 2), threads=1, **FAST)
    assert torch.get_num_threads() == before  # restored
    assert not model.training  # measured in eval mode
    assert [r.batch for r in records] == [1, 2]
    for record in records:
        assert record.device == "cpu" and record.threads == 1
        assert record.environment.torch_threads == 1  # read while the measurement's setting held
        assert record.input_shape == (3, 32, 32)
        assert record.median_ms > 0 and record.iqr_ms >= 0
        lo, hi = record.ci95_ms
        assert lo <= record.median_ms <= hi
        assert 0.95 <= record.ci_level < 1
        assert record.samples >= FAST["samples"] == 8
        assert len(record.times_ms) == record.samples
        assert record.forwards_timed >= record.samples
        assert record.images_per_s == pytest.approx(record.batch * 1000 / record.median_ms)
        assert record.peak_mem_kind == CPU_ALLOCATOR
        assert record.peak_mem_bytes > record.activation_peak_bytes > 0
        assert record.dtype == "float32" and not record.autocast
        assert not record.channels_last and not record.compile
        assert record.other_cpu_load is None or record.other_cpu_load >= 0


def test_record_round_trips_through_json():
    (record,) = measure_latency(tiny_net(), 16, threads=1, memory=False, name="tiny", **FAST)
    assert record.model == "tiny" and record.peak_mem_bytes is None
    data = json.loads(json.dumps(record.to_dict()))
    assert data["ci95_ms"] == list(record.ci95_ms)
    assert set(data) >= {"device", "threads", "batch", "median_ms", "iqr_ms", "ci95_ms",
                         "samples", "images_per_s", "peak_mem_bytes", "peak_mem_kind", "dtype",
                         "channels_last", "compile", "times_ms", "environment"}
    assert LatencyRecord.from_dict(data) == record
    with pytest.raises(AttnprofError, match="lacks fields: median_ms"):
        LatencyRecord.from_dict({k: v for k, v in data.items() if k != "median_ms"})


def test_input_forms():
    model = tiny_net()
    (record,) = measure_latency(model, torch.randn(3, 16, 20), batch_sizes=(3,), threads=1,
                                memory=False, **FAST)
    assert record.batch == 3 and record.input_shape == (3, 16, 20)
    (record,) = measure_latency(model, torch.randn(2, 3, 16, 16), threads=1, memory=False, **FAST)
    assert record.batch == 2
    with pytest.raises(AttnprofError, match="batch 2 but batch 4"):
        measure_latency(model, torch.randn(2, 3, 16, 16), batch_sizes=(4,), **FAST)
    for bad in ((0, 16), (3, 16, 16, 16), "224"):
        with pytest.raises(AttnprofError, match="input size"):
            measure_latency(model, bad, **FAST)


def test_bfloat16_autocast_and_channels_last_run_on_cpu():
    (record,) = measure_latency(tiny_net(), 16, threads=1, dtype="bf16", channels_last=True,
                                memory=False, **FAST)
    assert record.dtype == "bfloat16" and record.autocast and record.channels_last
    assert record.median_ms > 0


def test_peak_memory_sees_a_known_allocation():
    class Allocates(nn.Module):
        def forward(self, x):
            a = torch.ones(250_000)  # 1,000,000 bytes
            b = a * 2  # another 1,000,000 bytes while a is alive
            return x + b.sum()

    model = Allocates()
    x = torch.zeros(1)
    with torch.inference_mode():
        model(x)
        peak = measure_peak_memory(lambda: model(x), model, x, torch.device("cpu"))
    assert peak.kind == CPU_ALLOCATOR
    assert 2_000_000 <= peak.activation_bytes < 10_000_000
    assert peak.peak_bytes == peak.activation_bytes + resident_bytes(model, x)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_refused():
    with pytest.raises(AttnprofError, match=r"torch\.cuda\.is_available\(\) is False"):
        measure_latency(tiny_net(), 16, device="cuda", **FAST)
    with pytest.raises(AttnprofError, match="is_available"):
        paired_latency({"none": tiny_net(), "b": tiny_net()}, 16, device="cuda:0")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "float16"}, "only measured on CUDA"),
        ({"dtype": "int8"}, "valid dtypes: float32, bfloat16, float16"),
        ({"device": "mps"}, "valid devices: cpu, cuda"),
        ({"device": "banana"}, "unknown device"),
        ({"threads": 0}, "threads must be a positive integer"),
        ({"samples": 5}, "samples must be an integer >= 6"),
        ({"min_run_time": 0}, "min_run_time must be a positive number"),
        ({"batch_sizes": (0,)}, "batch_sizes must be positive"),
        ({"compile": "fastest"}, "valid: False, True, default"),
    ],
)
def test_options_that_cannot_run_are_refused(options, message):
    with pytest.raises(AttnprofError, match=message):
        measure_latency(tiny_net(), 16, **{**FAST, **options})


def test_compile_without_a_compiler_is_refused(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(settings_module.shutil, "which", lambda name: None)
    with pytest.raises(AttnprofError, match=r"torch\.compile cannot run here: .*C\+\+ compiler"):
        measure_latency(tiny_net(), 16, compile=True, **FAST)


def test_compile_failure_at_first_forward_is_refused(monkeypatch):
    def broken_compile(model, mode=None):
        def fails(x):
            raise RuntimeError("InductorError: simulated\nsecond line")

        return fails

    monkeypatch.setattr(settings_module, "compile_unavailable_reason", lambda device: None)
    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(AttnprofError, match=r"torch\.compile .*failed .*simulated; run without"):
        measure_latency(tiny_net(), 16, compile=True, **FAST)


@pytest.mark.slow
def test_compile_runs_when_available():
    if settings_module.compile_unavailable_reason(torch.device("cpu")):
        pytest.skip("torch.compile cannot run here")
    (record,) = measure_latency(tiny_net(), 16, compile=True, threads=1, memory=False, **FAST)
    assert record.compile and record.compile_mode == "default" and record.median_ms > 0


# -- overhead of the timing path --------------------------------------------------------------


@pytest.mark.alone  # a ratio of two timings
def test_timing_path_adds_no_measurable_overhead():
    """Our median agrees with a bare Timer on the same model, measured in alternation.

    Five alternating pairs, compared by the median of their ratios, so that slow drift of a
    shared machine cancels; 25% is a generous bound for 0.1 s measurements.
    """
    model = tiny_net(16)
    x = torch.randn(1, 3, 48, 48)
    ratios = []
    for _ in range(5):
        with torch.inference_mode():
            bare = Timer("model(x)", globals={"model": model, "x": x}, num_threads=1)
            bare_ms = bare.blocked_autorange(min_run_time=0.1).median * 1000
        (ours,) = measure_latency(model, x, threads=1, memory=False, **{**FAST,
                                                                        "min_run_time": 0.1})
        ratios.append(ours.median_ms / bare_ms)
    ratios.sort()
    assert 0.75 < ratios[2] < 1 / 0.75, ratios


# -- paired comparison ------------------------------------------------------------------------


def arm(variant: str, condition: str = "inference/eager") -> str:
    return f"{condition}:{variant}"


@pytest.mark.alone  # a slowdown must be detected
def test_paired_self_ratio_near_one_and_slow_variant_detected():
    base = tiny_net(16)
    variants = {"none": base, "same": copy.deepcopy(base), "slow": Twice(base)}
    result = paired_latency(variants, 24, threads=1, seed=5, **PAIRED_FAST)
    assert isinstance(result, PairedComparison)
    same, slow = result.result("same").ratio, result.result("slow").ratio
    lo, hi = same.ci95
    assert lo <= 1.0 <= hi or abs(same.delta_pct) < 15, same
    assert slow.ci95[0] > 1.0 and slow.significant, slow
    assert slow.delta_pct == pytest.approx(100 * (slow.median - 1))
    # raw material kept for later tests
    record = result.result("slow").record
    assert len(slow.values) == sum(slow.rounds_per_process) == 10
    assert len(record.times_ms) == 10 == len(result.baseline_record.times_ms)
    (worker,) = result.workers
    # each round's ratio is against the baseline samples right before and after the variant's
    reference = worker.reference_ms[arm("slow")]
    assert slow.values[3] == pytest.approx(record.times_ms[3] / reference[3])
    assert arm("none") not in worker.reference_ms and len(reference) == 10
    assert slow.pairing == result.baseline_ratio.pairing == "bracketed"
    assert record.peak_mem_bytes > 0 and record.threads == 1
    keys = {arm(name) for name in variants}
    assert len(worker.order) == 10 and all(set(o) == keys for o in worker.order)
    assert all(o[0] == o[2] == o[4] == arm("none") for o in worker.order)  # bracketed
    assert result.spec.seed == 5 and result.spec.shuffle and worker.seed == 5
    assert len(worker.round_other_cpu_load) == 10
    assert 2 <= worker.warmup_rounds <= 6 and (worker.settled or worker.warmup_rounds == 6)
    # one process: the interval is over rounds, and the result says so
    assert slow.ci_over == "rounds" and slow.processes == 1 and slow.disagreement_p is None
    assert slow.design == "rounds" and slow.stopped == "fixed"
    assert any("this process only" in note for note in result.notes)
    data = json.loads(json.dumps(result.to_dict()))
    assert PairedComparison.from_dict(data).results == result.results
    assert [r.model for r in result.records] == ["none", "same", "slow"]


class CrashOnCall:
    """A factory that kills its process on its ``crash_on``-th call (counted in a file, so
    across fresh processes) and raises on the ``raise_on``-th: a worker that dies, one that
    fails."""

    def __init__(self, counter, crash_on=0, raise_on=0, width=8):
        self.counter, self.crash_on, self.raise_on, self.width = counter, crash_on, raise_on, width

    def __call__(self) -> nn.Module:
        calls = int(self.counter.read_text()) + 1 if self.counter.exists() else 1
        self.counter.write_text(str(calls))
        if calls == self.crash_on:
            import os

            os._exit(3)
        if calls == self.raise_on:
            raise ValueError(f"call {calls} went wrong")
        return tiny_net(self.width)


def allocator_state(job, report):
    """A worker job: what the worker set of the allocator before the job arrived."""
    from attnprof.latency import workers

    report(1, 1)
    return workers.PREPARED


def exit_now(job, report):
    """A worker job that kills its own process, as the OOM killer or a crash would."""
    import os

    os._exit(job)


def test_a_fresh_worker_sets_the_steady_allocator_and_a_dead_one_is_reported():
    """The real fresh-process path, twice: the allocator state the timing measures is set
    before the job arrives (and the parent's own process is left as it was), and a worker
    that dies is one line with its exit status. The scheduler's handling of both is tested on
    synthetic processes (tests/test_latency_schedule.py); the smoke run times six real ones."""
    from attnprof.latency import workers

    seen = []
    state = workers.run_in_fresh_process(f"{__name__}:allocator_state", None,
                                         progress=lambda done, total: seen.append(done))
    assert "mmap threshold 32 MiB" in state and seen == [1]
    assert workers.PREPARED is None  # this process's allocator untouched
    with pytest.raises(workers.WorkerFailed, match=r"worker 7 ended without a result "
                                                   r"\(exit status 3\)"):
        workers.run_in_fresh_process(f"{__name__}:exit_now", 3, what="worker 7")


def test_paired_first_process_failing_stops_with_its_error(tmp_path):
    variants = {"none": tiny_net(), "b": CrashOnCall(tmp_path / "calls", raise_on=1)}
    with pytest.raises(AttnprofError, match="ValueError: call 1 went wrong") as caught:
        paired_latency(variants, 8, processes=6, rounds=1, threads=1, sample_time=0.005)
    assert "Traceback" in str(caught.value.__cause__)  # the worker's own traceback, chained
    assert (tmp_path / "calls").read_text() == "1"  # no second process was started


def test_paired_order_is_seeded():
    variants = {"none": tiny_net(), "b": tiny_net(), "c": tiny_net()}
    fast = {**PAIRED_FAST, "rounds": 6, "sample_time": 0.005, "memory": False}
    first = paired_latency(variants, 8, threads=1, seed=1, **fast)
    second = paired_latency(variants, 8, threads=1, seed=1, **fast)
    assert first.workers[0].order == second.workers[0].order
    fixed = paired_latency(variants, 8, threads=1, shuffle=False, **fast)
    assert set(fixed.workers[0].order) == {(arm("none"), arm("b"), arm("none"), arm("c"),
                                             arm("none"))}
    assert not fixed.spec.shuffle


def test_paired_accepts_factories():
    result = paired_latency({"none": tiny_net, "wide": partial(tiny_net, 16)}, 8, threads=1,
                            memory=False, **{**PAIRED_FAST, "rounds": 6, "sample_time": 0.005})
    assert result.result("wide").record.model == "wide"
    with pytest.raises(AttnprofError, match="no paired result for 'none'"):
        result.result("none")


def test_paired_reruns_contended_rounds(monkeypatch):
    # two warm-up rounds, then 1.5 and 1.2 busy CPUs, then 0.1; 0.0 for the whole-run monitor
    loads = iter([0.0, 0.0, 1.5, 1.2] + [0.1] * 6)

    class FakeContention:
        """Reports the loads above, one per round."""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.other_cpus = next(loads, 0.0)

    monkeypatch.setattr(rounds_module, "CpuContention", FakeContention)
    result = paired_latency({"none": tiny_net(), "b": tiny_net()}, 8, threads=1, memory=False,
                            max_other_cpus=0.5, max_warmup_rounds=0,
                            **{**PAIRED_FAST, "rounds": 6, "sample_time": 0.005})
    (worker,) = result.workers
    assert worker.warmup_rounds == 2  # the rule's minimum, even when 0 is asked
    assert [d.other_cpus for d in worker.discarded_rounds] == [1.5, 1.2]
    assert set(worker.discarded_rounds[0].times_ms) == {arm("none"), arm("b")}
    assert worker.round_other_cpu_load == (0.1,) * 6 and len(worker.order) == 6
    assert any("2 round(s) re-run" in note for note in result.notes)
    assert PairedComparison.from_dict(json.loads(json.dumps(result.to_dict()))).workers[0].order \
        == worker.order


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_other_cpus": 0}, "max_other_cpus must be a positive number"),
        ({"baseline": "plain"}, "baseline 'plain' is not among the variants; valid: none, b"),
        ({"processes": 1, "rounds": 5}, r"rounds \(with processes=1\) must be an integer >= 6"),
        ({"processes": 3}, r"processes must be 1 \(this process only\), at least 6"),
        ({"processes": 6, "rounds": 0}, "rounds must be an integer >= 1"),
        ({"sample_time": -1}, "sample_time must be a positive number"),
        ({"batch": 0}, "batch must be an integer >= 1"),
        ({"mode": "tensorrt"}, "unknown mode 'tensorrt'; valid modes: eager, compile"),
        ({"pass_name": "train", "mode": "none"}, "unknown mode 'none'"),
        ({"allocator": "jemalloc"}, "unknown allocator 'jemalloc'; valid: steady, system"),
        ({"target_width": 0}, "target_width must be a positive number"),
    ],
)
def test_paired_refusals(kwargs, message):
    with pytest.raises(AttnprofError, match=message):
        paired_latency({"none": tiny_net(), "b": tiny_net()}, 8, **kwargs)


def test_paired_refuses_non_models():
    with pytest.raises(AttnprofError, match="at least two"):
        paired_latency({"none": tiny_net()}, 8)
    with pytest.raises(AttnprofError, match="factory returned int"):
        paired_latency({"none": tiny_net(), "b": lambda: 3}, 8, processes=1, rounds=6)
    with pytest.raises(AttnprofError, match=r"nn\.Module or a factory"):
        paired_latency({"none": tiny_net(), "b": "resnet18"}, 8, processes=1, rounds=6)
    # several processes: a lambda cannot travel, and the message says what would
    with pytest.raises(AttnprofError, match=r"variant 'b' cannot be sent to a fresh worker "
                                            r"process .*processes=1"):
        paired_latency({"none": tiny_net(), "b": lambda: tiny_net()}, 8)


# -- module timing ----------------------------------------------------------------------------


class Gate(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x.mean((2, 3), keepdim=True))


class Toy(nn.Module):
    """Two same-shape gates in stage 1, one in stage 2, named like attnprof's ResNets."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(nn.Module(), nn.Module())
        self.layer1[0].attention = Gate()
        self.layer1[1].attention = Gate()
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.layer2 = nn.Sequential(nn.Module())
        self.layer2[0].attention = Gate()

    def attention_modules(self):
        return [(n, m) for n, m in self.named_modules() if n.endswith("attention")]

    def forward(self, x):
        x = self.layer1[1].attention(self.layer1[0].attention(self.stem(x)))
        return self.layer2[0].attention(self.down(x))


def test_time_attention_modules_groups_by_stage_and_shape():
    timings = time_attention_modules(Toy(), 32, batch=2, threads=1, min_run_time=0.03,
                                     samples=6)
    assert [t.stage for t in timings] == [1, 2]
    first, second = timings
    assert first.names == ("layer1.0.attention", "layer1.1.attention")
    assert first.calls_per_forward == 2 and second.calls_per_forward == 1
    assert first.input_shape == (2, 8, 32, 32) and second.input_shape == (2, 16, 16, 16)
    assert first.module == "Gate" and first.input_dtype == "float32"
    for t in timings:
        assert t.ms_per_call > 0 and t.samples >= 6
        assert t.ci95_ms[0] <= t.ms_per_call <= t.ci95_ms[1]
        assert t.ms_per_forward == pytest.approx(t.ms_per_call * t.calls_per_forward)
        assert t.model_ms > 0 and t.pct_of_forward == pytest.approx(
            100 * t.ms_per_forward / t.model_ms)
    assert ModuleTiming.from_dict(json.loads(json.dumps(first.to_dict()))) == first


def test_time_attention_modules_refusals_and_plain_model():
    assert time_attention_modules(build_model("resnet18"), 32, threads=1) == []
    with pytest.raises(AttnprofError, match="no attention_modules"):
        time_attention_modules(tiny_net(), 32)
    with pytest.raises(AttnprofError, match="only measured on CUDA"):
        time_attention_modules(Toy(), 32, dtype="float16")


@pytest.mark.parametrize("attention", [n for n in attention_names() if n != "none"])
def test_time_attention_modules_on_registered_modules(attention):
    # ResNet-50 (SA's 64 groups need C divisible by 128) at 64x64: stage 4 still sees 2x2.
    model = build_model("resnet50", attention)
    timings = time_attention_modules(model, 64, threads=1, min_run_time=0.01, samples=6,
                                     warmup=1, time_model=False)
    assert timings, attention
    assert sum(len(t.names) for t in timings) == len(model.attention_modules())
    assert all(t.ms_per_call > 0 and t.model_ms is None for t in timings)


# -- environment ------------------------------------------------------------------------------


def test_environment_describes_the_cpu():
    env = collect_environment("cpu")
    assert env.device == "cpu" and env.torch_version == torch.__version__
    assert env.logical_cpus >= 1 and env.torch_threads == torch.get_num_threads()
    assert env.cuda_version is None and env.driver_version is None
    assert env.cpu_model and env.timestamp_utc.endswith("+00:00")
    assert Environment.from_dict(json.loads(json.dumps(env.to_dict()))) == env
    assert env.cpu_model in env.summary()


def test_cpu_contention_is_measured():
    with CpuContention() as contention:
        sum(i * i for i in range(200_000))
    assert contention.other_cpus is None or contention.other_cpus >= 0


def test_backbone_variants_can_travel_to_fresh_processes():
    from attnprof.latency import backbone_variants
    from attnprof.latency.workers import check_picklable

    variants = backbone_variants("resnet18", ("none", "se"))
    check_picklable(variants)  # raises for a lambda
    assert type(variants["se"]()).__name__ == "ResNet"
