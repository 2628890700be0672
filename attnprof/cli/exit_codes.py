"""The exit codes of ``attnprof``, one table: every command returns these, ``--help`` shows them.

Caveat: 1 is kept for "the command ran and found a problem", never for bad input, so a CI job
can tell a regression from a mistyped call.
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MEANINGS = {
    EXIT_OK: "ok",
    EXIT_FAILURE: "the command ran and found a problem (a failed cell, a confirmed regression "
    "or a changed count)",
    EXIT_USAGE: "bad input (an unknown name, invalid options, an unreadable or corrupt file)",
    EXIT_INTERRUPTED: "interrupted",
}

EPILOG = "Exit status: " + "; ".join(f"{code} {text}" for code, text in MEANINGS.items()) + "."
"""The table as one sentence, the epilog of ``attnprof --help`` and of every command's help."""
