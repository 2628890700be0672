"""attnprof's pytest plugin: ``attnprof_bench``, a pytest-benchmark fixture for your own modules.

Caveat first: it needs pytest-benchmark (``pip install pytest-benchmark``); without it the
fixture fails with one line saying so, and the rest of pytest is untouched. pytest loads the
plugin wherever attnprof is installed (the ``pytest11`` entry point), so nothing needs to be
registered::

    def test_my_gate(attnprof_bench):
        attnprof_bench(MyGate(256), (256, 56, 56))

runs ``MyGate`` on a 1 x 256 x 56 x 56 feature map, paired round by round with a reference
block of the same shape (a plain ResNet bottleneck, 256 -> 256 at stride 1: "this module
costs x of the block it sits in"), and stores in ``extra_info`` its parameters and its MACs
under the declared conventions (``paper`` and ``full`` by default, counted on a meta-device
copy), so that ``attnprof compare base.json new.json`` judges the saved benchmark files the way
it judges attnprof's own: per-round ratios to the reference, exact counts. See
:mod:`attnprof.bench.paired` for why the pairing is done the way it is.

The saved files also record the machine (``machine_info["attnprof_machine"]``: CPU model, ISA
and caches, torch build, GPU) and the thread count, so compare can say when two files come
from different machines.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import pytest
import torch
from torch import nn

BENCH_THREADS_ENV = "ATTNPROF_BENCH_THREADS"
DEFAULT_CONVENTIONS = ("paper", "full")
REFERENCES = ("bottleneck", "conv3x3")


def bench_threads() -> int:
    """Intra-op threads for the benchmarks: ``ATTNPROF_BENCH_THREADS``, 1 by default (the
    steadiest choice on a shared runner: a second thread competes with everything else)."""
    text = os.environ.get(BENCH_THREADS_ENV, "1")
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(f"{BENCH_THREADS_ENV}={text!r}: expected a whole number >= 1")
    return int(text)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    """What ``attnprof compare`` needs to tell machines and set-ups apart."""
    import attnprof

    machine_info["torch"] = torch.__version__
    machine_info["attnprof"] = attnprof.__version__
    machine_info["torch_threads"] = bench_threads()
    machine_info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        from attnprof.machine import describe_machine
    except ImportError:
        return
    machine_info["attnprof_machine"] = describe_machine("cpu")


def _refuse(message: str) -> NoReturn:
    """Fail the test with one line (no traceback): the benchmark cannot be what was asked."""
    pytest.fail(f"attnprof_bench: {message}", pytrace=False)


def _feature_map(shape: Sequence[int]) -> tuple[int, int, int, int]:
    dims = tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else ()
    if len(dims) == 3:
        dims = (1, *dims)
    if len(dims) != 4 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                 for d in dims):
        _refuse(
            f"shape {shape!r} is not a feature map; give (C, H, W) or "
            "(N, C, H, W) with positive whole numbers, e.g. (256, 56, 56)"
        )
    return dims  # type: ignore[return-value]


def reference_block(kind: str, channels: int) -> tuple[str, nn.Module]:
    """A reference of ``channels`` -> ``channels`` at stride 1, keeping the feature map:
    ``bottleneck`` (a plain ResNet bottleneck, mid width C / 4) or ``conv3x3`` (conv 3x3 + BN
    + ReLU, the layer SK-style modules replace)."""
    if kind == "bottleneck":
        if channels % 4:
            _refuse(
                f"a bottleneck reference needs channels divisible by 4 (got "
                f"{channels}); pass reference='conv3x3' or a module of your own"
            )
        from attnprof.attention import get_attention_spec
        from attnprof.backbones.common import AttentionBuilder
        from attnprof.backbones.resnet import Bottleneck

        slot = AttentionBuilder(get_attention_spec("none"), {})
        return "bottleneck", Bottleneck(channels, channels // 4, 1, slot, 0)
    if kind == "conv3x3":
        return "conv3x3-bn-relu", nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True))
    _refuse(f"unknown reference {kind!r}; valid: {', '.join(REFERENCES)}, or an nn.Module "
            "taking the same feature map")


def module_counts(module: nn.Module, shape: Sequence[int],
                  conventions: Sequence[str]) -> dict:
    """Parameters and the count under each convention, on a meta-device copy of ``module``."""
    from attnprof.counting import count

    meta = copy.deepcopy(module).to("meta").eval()
    counts = {name: count(meta, tuple(shape), name, attention=()) for name in conventions}
    first = conventions[0]
    return {
        "params": sum(p.numel() for p in module.parameters()),
        "macs": counts[first].value,
        "macs_convention": first,
        "counts": {name: {"value": c.value, "unit": c.unit} for name, c in counts.items()},
    }


@dataclass
class AttnprofBench:
    """The callable behind the ``attnprof_bench`` fixture (one benchmark per test, as with
    pytest-benchmark's own ``benchmark``)."""

    benchmark: object
    threads: int

    def __call__(self, module: nn.Module, shape: Sequence[int], *, name: str | None = None,
                 reference: str | nn.Module = "bottleneck",
                 conventions: Sequence[str] = DEFAULT_CONVENTIONS, rounds: int = 40,
                 warmup_rounds: int = 5) -> torch.Tensor:
        """Benchmark ``module`` on a feature map of ``shape`` beside ``reference``; return the
        module's output. ``name`` identifies it across runs (default: its class name)."""
        from attnprof.bench.paired import paired_benchmark
        from attnprof.counting import get_convention
        from attnprof.errors import AttnprofError

        if not isinstance(module, nn.Module):
            _refuse(
                f"expected an nn.Module to benchmark, got {type(module).__name__}"
            )
        if rounds < 2 or warmup_rounds < 0:
            _refuse(
                f"rounds must be >= 2 and warmup_rounds >= 0 (got {rounds}, "
                f"{warmup_rounds})"
            )
        try:
            conventions = [get_convention(c).name for c in conventions] or ["paper"]
        except AttnprofError as exc:
            _refuse(str(exc))
        dims = _feature_map(shape)
        batch, channels, height, width = dims
        if isinstance(reference, nn.Module):
            ref_name, ref_module = type(reference).__name__, reference
        else:
            ref_name, ref_module = reference_block(reference, channels)
        where = f"{channels}x{height}x{width}"
        name = name or type(module).__name__
        module, ref_module = module.eval(), ref_module.eval()
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            # a fixed input, drawn without touching the test's own random state
            x = torch.randn(*dims, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                _fits(module, x, name, "module")
                _fits(ref_module, x, ref_name, "reference")
            self.benchmark.group = where
            self.benchmark.extra_info.update(
                id=f"{name}|{where}", role="module", reference=f"{ref_name}|{where}",
                device="cpu", batch=batch, threads=self.threads,
                **module_counts(module, dims, conventions),
            )
            with torch.inference_mode():
                return paired_benchmark(self.benchmark, module, ref_module, x, rounds=rounds,
                                        warmup_rounds=warmup_rounds)
        finally:
            torch.set_num_threads(previous)


def _fits(module: nn.Module, x: torch.Tensor, name: str, role: str) -> None:
    """Refuse a module that cannot take the feature map, or changes its shape, in one line."""
    try:
        out = module(x)
    except Exception as exc:  # the user's module: say which and why, in one line
        out = exc
    if isinstance(out, Exception):
        _refuse(f"the {role} {name!r} fails on a feature map of shape {tuple(x.shape)}: "
                f"{type(out).__name__}: {out}")
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        _refuse(
            f"the {role} {name!r} turns a feature map of shape "
            f"{tuple(x.shape)} into {found}; a drop-in block keeps the shape"
        )


@pytest.fixture
def attnprof_bench(request) -> AttnprofBench:
    """Benchmark your module on a feature map beside a reference block; see the module doc."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        benchmark = None  # refused below, outside the handler: one line, no chained lookup error
    if benchmark is None:
        _refuse("needs pytest-benchmark (its 'benchmark' fixture): pip install pytest-benchmark")
    return AttnprofBench(benchmark, bench_threads())
