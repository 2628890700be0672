"""The ``fvcore`` convention: fvcore's own figures, unchanged and quiet."""

from __future__ import annotations

import logging

import torch
from torch import nn

from attnprof import build_model
from attnprof.counting import count
from attnprof.counting.fvcore_count import count_fvcore


def test_equals_fvcores_own_analysis(capsys, caplog):
    from fvcore.nn import FlopCountAnalysis

    attention = "se"
    model = build_model("resnet18", attention)  # real CPU weights
    shape = (1, 3, 112, 112)
    caplog.set_level(logging.DEBUG)
    result = count(model, shape, "fvcore")
    assert capsys.readouterr() == ("", "")
    assert not [r for r in caplog.records if r.name.startswith("fvcore")]

    with torch.no_grad():
        own = FlopCountAnalysis(model, (torch.zeros(shape),))
        own.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total, by_module, unsupported = own.total(), own.by_module(), own.unsupported_ops()
    assert result.value == total
    assert result.uncounted == dict(unsupported)
    names = [name for name, _ in model.attention_modules()]
    assert result.attention == sum(by_module[name] for name in names)
    if attention == "se":
        assert result.attention > 0
        assert {"aten::sigmoid", "aten::mul"} <= set(result.uncounted)


def test_tiny_model_arithmetic():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Sigmoid()).eval()
    result = count_fvcore(model, (1, 3, 10, 10), attention=["1"])
    # fvcore: 8*10*10 = 800 outputs * 27 MACs = 21,600; the sigmoid is unsupported
    assert (result.value, result.attention, result.unit) == (21_600, 0, "MAC")
    assert result.uncounted == {"aten::sigmoid": 1}


def test_meta_model_is_materialised_on_a_copy():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False)).to("meta")
    assert count_fvcore(model, (1, 3, 10, 10)).value == 21_600
    assert next(model.parameters()).is_meta


def test_a_model_without_attention_modules_has_zero_attention():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False))
    assert count_fvcore(model, (1, 3, 4, 4)).attention == 0
