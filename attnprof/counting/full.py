"""The ``full`` convention: every aten op counted, in FLOPs, with the bytes it moves.

The counter (:mod:`attnprof.counting.engine`) sees every op the model runs below autograd (after
composite ops have been decomposed: ``linear`` arrives as ``t`` + ``addmm``,
``adaptive_avg_pool2d(x, 1)`` as ``mean``) and prices it with the rule table of
:mod:`attnprof.counting.rules`; this module gives that table's counter a name of its own.
Nothing is silently 0: an op without a rule is reported under ``uncounted``. It runs on meta
tensors, so it allocates nothing and takes milliseconds.

Caveats first: FLOPs of anything but multiply-adds are a convention, stated in the rules module;
bytes are those of eager, unfused execution (each op reads its inputs from and writes its output
to memory), an upper bound on what a fusing compiler would move, and no model of caches.
"""

from __future__ import annotations

from attnprof.counting.engine import RuleCounter
from attnprof.counting.rule_text import CompiledRules, compile_tables
from attnprof.counting.rules import RULES
from attnprof.counting.tracing import AttentionScope


def full_rules() -> CompiledRules:
    return compile_tables({}, RULES, "convention 'full'")


class FlopByteMode(RuleCounter):
    """The ``full`` convention on whatever runs inside it: FLOPs, bytes, per op and module.

    ``with FlopByteMode() as mode: model(x)``, then ``mode.flops``, ``mode.bytes``,
    ``mode.by_op``, ``mode.uncounted``.
    """

    def __init__(self, scope: AttentionScope | None = None):
        super().__init__(full_rules(), count_bytes=True, scope=scope)
