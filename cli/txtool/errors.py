"""The errors a command reports in one line, and the exit code each one means.

Kept apart from the installer so that read-only commands can tell bad input from a bug
without importing what changes tools (the installer, the backends, packaging).
"""

from __future__ import annotations

from txengine import JournalError, LockBusy, OperationIncomplete, OperationView, TxError

from .exitcodes import BUSY, FAILED, INCOMPLETE, JOURNAL, USAGE
from .fixes import fix
from .locations import BadSetting, UnsafeLocation


class UsageError(Exception):
    """Bad input found before any operation started: nothing changed."""


class InTheWay(UsageError):
    """A file in the bin dir that the build would meet, found by the planner before anything
    is built: exit 1, as when the step that places shims finds it."""


class NeedsResume(Exception):
    """The tool has an incomplete operation; the message names the commands that fix it."""

    def __init__(self, view: OperationView) -> None:
        self.view = view
        super().__init__(
            f"{view.subject} has an incomplete {view.kind} ({view.audit().where}): run {fix(view)}"
        )


class ResolveFailed(Exception):
    """The resolver could not read a source named on the command line (to learn the tool's
    name) before any operation started: nothing changed."""


def code_of(e: BaseException) -> int:
    """The exit code an error means on its own (docs/cli.md)."""
    from .names import BadName  # only a command that parsed a name can raise it

    if isinstance(e, InTheWay):
        return FAILED
    if isinstance(e, (UsageError, BadName, BadSetting)):
        return USAGE
    if isinstance(e, UnsafeLocation):
        return JOURNAL
    if isinstance(e, (NeedsResume, OperationIncomplete)):
        return INCOMPLETE
    if isinstance(e, LockBusy):
        return BUSY
    if isinstance(e, JournalError):
        return JOURNAL
    return FAILED


def reported_code(e: BaseException) -> int | None:
    """The exit code of an error the command line reports in one line; None for a bug."""
    from .names import BadName

    expected = (
        UsageError,
        BadName,
        BadSetting,
        UnsafeLocation,
        NeedsResume,
        TxError,
        ResolveFailed,
    )
    return code_of(e) if isinstance(e, expected) else None
