"""Where a module goes in attnprof's backbones, when the user says so: the ``place`` option.

Caveat first: ``place`` is attnprof's own option (as ``channels_arg`` is), taken out of the
options before the module's constructor sees them, so a constructor parameter named ``place``
cannot be reached. Without it a module goes where its registration says (``block``: inside
every residual block; ``stage``: between stages, BAM's place; a module named by import path
declares ``attnprof_placement`` or sits in every block).

The values, the same string wherever options are written (``-o place=...`` on the command line,
``options = { place = "..." }`` in a suite file, ``place="..."`` in Python):

- ``blocks``: inside every block, after its last BatchNorm, before the residual add;
- ``stages``: after every stage that a stride-2 stage follows (BAM's rule: after stages 0-2 of
  a ResNet, 0, 1, 2 and 4 of MobileNetV2);
- ``stages:0,1,2``: after each listed stage, 0-based as attnprof numbers stages everywhere
  (a ResNet's ``layer1`` is stage 0; its last stage, 3, may be listed too);
- ``after:PATTERN``: after every module whose qualified name matches ``PATTERN`` (``fnmatch``,
  the whole name: ``after:layer3.*.bn2``); each match ``M`` becomes
  ``nn.Sequential(M, AttentionSlot(C))``, so its parameters are named ``<M>.0.*``, and ``C``
  is read from ``M``'s output in a forward on the meta device.

A ``conv`` module (SK) replaces a convolution and takes no ``place``; a user's network places
attention with its own slots or ``insert_after``.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnprof.errors import AttnprofError, Hint, choices

OPTION = "place"
"""The option's name: attnprof's, never passed to a module's constructor."""

KINDS = ("block", "stage", "after")
SPELLINGS = ("blocks", "stages", "stages:0,1,2", "after:PATTERN")


@dataclass(frozen=True)
class Placement:
    """``block``, ``stage`` (``stages`` chosen, or ``None`` for the backbone's rule) or
    ``after`` (``pattern``)."""

    kind: str
    stages: tuple[int, ...] | None = None
    pattern: str | None = None

    def wants_stage(self, stage: int, followed_by_stride: bool) -> bool:
        """Whether a module goes after ``stage`` (``followed_by_stride``: BAM's rule says so)."""
        if self.kind != "stage":
            return False
        return followed_by_stride if self.stages is None else stage in self.stages


def parse_place(value, module: str) -> Placement:
    """The :class:`Placement` that a ``place`` option's value spells; ``module`` names the
    module in the one-line refusal."""
    text = value.strip() if isinstance(value, str) else value
    if text in ("blocks", "block"):
        return Placement("block")
    if text in ("stages", "stage"):
        return Placement("stage")
    if isinstance(text, str) and text.startswith(("stages:", "stage:")):
        parts = [part.strip() for part in text.partition(":")[2].split(",")]
        if parts and all(part.isdigit() for part in parts):
            return Placement("stage", tuple(sorted({int(part) for part in parts})))
    if isinstance(text, str) and text.startswith("after:") and text[len("after:"):].strip():
        return Placement("after", pattern=text[len("after:"):].strip())
    raise AttnprofError(
        f"{module}: place={value!r} is invalid; valid: {choices(SPELLINGS)} (stage numbers "
        "0-based, e.g. ", Hint(OPTION, "stages:0,1,2"), ", or ", Hint(OPTION, "after:layer3.*.bn2"),
        ")",
    )
