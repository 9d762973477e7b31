"""txtool's exit codes (docs/cli.md), shared by the service and the command line; ``MEANING``
is the one text of each, shown by ``txtool help exit-codes``."""

from __future__ import annotations

OK = 0
FAILED = 1  # the operation failed and every change was undone (or `verify` found a mismatch)
USAGE = 2  # bad command line or input; nothing changed
INCOMPLETE = 3  # an operation is incomplete: re-running the command (or `txtool resume`) fixes it
BUSY = 4  # another txtool holds the lock
JOURNAL = 5  # the journal is unreadable (corrupt, or written by a newer txtool)
INTERRUPTED = 130  # Ctrl-C or SIGTERM stopped the command; nothing it stopped was left changed

MEANING: dict[int, str] = {
    OK: "success (status, list: nothing incomplete; run: the tool's own exit code)",
    FAILED: "the operation failed and every change was undone; verify: the disk disagrees",
    USAGE: "usage or bad input (bad name, unknown tool or operation, bad setting): nothing changed",
    INCOMPLETE: "an operation is incomplete: re-run the command, or `txtool resume`",
    BUSY: "another txtool holds the lock and did not release it within TXTOOL_LOCK_TIMEOUT",
    JOURNAL: "the journal or home cannot be trusted or read (corrupt, newer, another user's)",
    INTERRUPTED: "interrupted (Ctrl-C, SIGTERM) and nothing it stopped was left changed",
}
