"""``python -m attnprof`` is the ``attnprof`` command."""

from attnprof.cli import entry

entry()
