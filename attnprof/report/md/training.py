"""The training step, counted under ``full``: FLOPs, bytes moved and activations saved."""

from __future__ import annotations

from attnprof.passes import LOSS
from attnprof.report import columns as c
from attnprof.report.md.table import table, title
from attnprof.report.model import Report
from attnprof.suite.config import BASELINE


def training_section(report: Report) -> str:
    rows = report.training
    if not rows:
        return ""
    out = [
        "## Training step",
        "",
        "One training step counted under `full` on meta tensors: the forward in train mode, "
        f"the loss ({LOSS}), and the backward, summed over the aten ops that actually run "
        "(never a fixed multiple of the forward: the first layer computes no input "
        "gradient). Activations: the bytes of the distinct tensors autograd saves for the "
        "backward (saved-tensor hooks), parameters excluded; they stay in memory from the "
        "forward to the backward, per batch.",
    ]
    columns = [c.VARIANT, c.TRAIN_FLOP, c.TRAIN_DELTA, c.TRAIN_RATIO, c.TRAIN_BYTES,
               c.TRAIN_BYTES_DELTA, c.TRAIN_ACTIVATIONS, c.TRAIN_ACTIVATIONS_DELTA,
               c.TRAIN_ATTENTION_ACTIVATIONS]
    for backbone, setting in dict.fromkeys((r.backbone, r.setting) for r in rows):
        body = []
        for r in (r for r in rows if (r.backbone, r.setting) == (backbone, setting)):
            base = r.variant == BASELINE
            body.append([
                r.variant + (" (baseline)" if base else ""),
                r.flops, None if base else r.flops_delta_pct, r.backward_ratio,
                r.bytes, None if base else r.bytes_delta_pct,
                r.activation_bytes, None if base else r.activation_delta_pct,
                r.attention_activation_bytes,
            ])
        out += ["", title(backbone, setting), "", table(columns, body)]
    return "\n".join(out)
