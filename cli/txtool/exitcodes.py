"""txtool's exit codes (docs/cli.md), shared by the service and the command line."""

from __future__ import annotations

OK = 0
FAILED = 1  # the operation failed and every change was undone (or `verify` found a mismatch)
USAGE = 2  # bad command line or input; nothing changed
INCOMPLETE = 3  # an operation is incomplete: re-running the command (or `txtool resume`) fixes it
BUSY = 4  # another txtool holds the lock
JOURNAL = 5  # the journal is unreadable (corrupt, or written by a newer txtool)
INTERRUPTED = 130  # Ctrl-C or SIGTERM stopped the command; nothing it stopped was left changed
