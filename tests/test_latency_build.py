"""The build process of a group: one artifact per arm, each loaded as what it was built from."""

from __future__ import annotations

import numpy as np
import torch
from support import needs_onnx
from torch import nn

from attnprof.latency.build import BuildJob, artifact_folder, build_arms
from attnprof.latency.modes import MODES, LoadRequest
from attnprof.latency.records import arm_key
from attnprof.latency.rounds import seeded_build, settings_of
from attnprof.latency.spec import Condition, timing_spec
from attnprof.latency.timing import make_input


def _plain() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))


def _gated() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Sigmoid())


def test_every_variant_gets_a_folder_of_its_own():
    condition = Condition("inference", "onnxruntime")
    names = ["none", "se", "pkg.mod:SE", "pkg.mod_SE", "pkg/mod:SE"]
    folders = {artifact_folder("/r", condition, name) for name in names}
    assert len(folders) == len(names)
    assert all(folder.parent.as_posix() == "/r/onnxruntime/inference" for folder in folders)
    assert all(":" not in folder.name and "/" not in folder.name for folder in folders)


@needs_onnx
def test_each_arm_loads_the_artifact_of_its_own_variant(tmp_path):
    """Two variants built in one group, then loaded as a timing process loads them: each call
    computes its own variant's output (one shared file would give both the last one's)."""
    condition = Condition("inference", "onnxruntime")
    spec = timing_spec(input_shape=(3, 8, 8), conditions=(condition,), threads=1)
    variants = {"none": _plain, "se": _gated}
    run = build_arms(BuildJob(spec, variants, tuple((condition, v) for v in variants),
                              str(tmp_path)))
    assert not run.failed
    paths = {run.built[arm_key(condition.label, v)].path for v in variants}
    assert len(paths) == 2
    x = make_input(spec.input_shape, spec.batch, settings_of(spec), spec.seed)
    hooks = MODES["onnxruntime"].load_hooks()
    for name, factory in variants.items():
        built = run.built[arm_key(condition.label, name)]
        (got,) = hooks.load(LoadRequest(x, 1, built=built))()
        with torch.inference_mode():
            want = seeded_build(name, factory, spec.seed).eval()(x).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)

