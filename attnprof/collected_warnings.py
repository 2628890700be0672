"""The warnings a profiled model issues, collected and said in one line.

Caveat first: Python prints a warning where it is issued, on two lines or more (the message,
then the source line), before attnprof has said anything; a user's module that warns in its
constructor or its forward would scatter those lines between attnprof's. While a profile runs,
warnings are recorded instead (:func:`collecting`, the filters in force are kept, so ``-W``
and ``PYTHONWARNINGS`` still decide what is shown), then summarised in one line
(:func:`summary`) whose messages are cut to :data:`~attnprof.blame.MESSAGE_LIMIT` characters;
the whole text of each distinct warning is kept beside it (``--json``, results.json).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from attnprof.blame import cut


@contextmanager
def collecting() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning issued inside the block instead of printing it."""
    with warnings.catch_warnings(record=True) as caught:
        yield caught


def _key(item: warnings.WarningMessage) -> tuple[str, str, str, int]:
    return (item.category.__name__, str(item.message), os.path.basename(item.filename),
            item.lineno)


def full_texts(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    """Each distinct warning, whole: ``Category: message (file.py:line)``."""
    return tuple(f"{kind}: {message} ({where}:{line})"
                 for kind, message, where, line in dict.fromkeys(map(_key, caught)))


def summary(caught: list[warnings.WarningMessage], what: str) -> str | None:
    """One line: how many warnings ``what`` issued, the first quoted (cut), how many more;
    ``None`` when there were none."""
    if not caught:
        return None
    keys = [_key(item) for item in caught]
    distinct = list(dict.fromkeys(keys))
    kind, message, where, line = distinct[0]
    kinds = Counter(k for k, *_ in keys)
    count = len(keys)
    counted = ", ".join(f"{name} x{n}" for name, n in kinds.most_common())
    more = f"; {len(distinct) - 1} other distinct" if len(distinct) > 1 else ""
    return (f"{what} issued {count} warning{'s' * (count != 1)} ({counted}): first {kind} at "
            f"{where}:{line}: {cut(message)}{more} (all of them whole in --json and "
            "results.json)")
