"""The engine's exceptions: each names what went wrong and, where there is one, the way out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._replay import OperationView


class TxError(Exception):
    """Base of every error the engine raises on purpose."""


class JournalError(TxError):
    """The journal cannot be read or written as it stands."""


class JournalCorrupt(JournalError):
    """A record before the tail fails its checksum, does not decode, or breaks the lifecycle."""

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"journal {path} is corrupt at byte {offset}: {reason}")


class JournalUnsafe(JournalError):
    """The journal directory or the stash is owned by another user or writable by others.

    Anyone who can write there can plant records that make the engine delete or run files,
    so the engine refuses it; the message says the fix.
    """

    def __init__(self, path: Path | str, reason: str, fix: str) -> None:
        self.path = Path(path)
        self.reason = reason
        self.fix = fix
        super().__init__(f"refusing {path}: {reason} ({fix})")


class JournalUnreadable(JournalError):
    """A journal file exists but cannot be read (permission denied, a directory, an I/O error)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read journal {path}: {reason}")


class JournalUnwritable(TxError):
    """The journal directory or its lock cannot be created or written (a read-only or full
    file system, a missing permission, a file where a directory should be).

    Not a :class:`JournalError`: what the journal holds is fine, the place it lives is not.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot write journal {path}: {reason}")


class JournalTooNew(JournalError):
    """The journal was written by a newer format than this release reads."""

    def __init__(self, path: Path | str, found: int, supported: int) -> None:
        self.path = Path(path)
        self.found = found
        self.supported = supported
        super().__init__(
            f"journal {path} uses format {found}; this release reads formats up to {supported}"
            " (upgrade to a newer release)"
        )


class LockBusy(TxError):
    """Another process holds the journal's lock and did not release it in time."""

    def __init__(self, path: Path | str, pid: int | None, timeout: float) -> None:
        self.path = Path(path)
        self.pid = pid
        self.timeout = timeout
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{holder} holds the lock {path} (waited {timeout:g}s)")


class IllegalTransition(TxError):
    """A record that the operation lifecycle does not allow in the operation's current state."""

    def __init__(self, op: str, state: str, record: str, why: str = "") -> None:
        self.op = op
        self.state = state
        self.record = record
        extra = f": {why}" if why else ""
        super().__init__(f"operation {op}: '{record}' is not allowed in state '{state}'{extra}")


class UnknownOperation(TxError):
    """No operation with this id (or unambiguous id prefix) is in the journal."""

    def __init__(self, op: str) -> None:
        self.op = op
        super().__init__(f"no operation {op!r} in the journal (see the journal's audit or history)")


class PlanInvalid(TxError):
    """A new operation's kind, subject, plan or meta cannot be recorded; nothing was written."""


class _StepProblem(TxError):
    """A recorded step of operation ``op`` (``index``, ``kind``) that this release cannot use."""

    def __init__(self, op: str, index: int, kind: str, message: str) -> None:
        self.op = op
        self.index = index
        self.kind = kind
        super().__init__(f"operation {op}: step {index + 1} {message}")


class UnknownStepKind(_StepProblem):
    """A recorded step's kind is not among the engine's step types (removed or renamed)."""

    def __init__(self, op: str, index: int, kind: str) -> None:
        super().__init__(
            op,
            index,
            kind,
            f"has kind {kind!r}, which this release does not know (register that step type"
            " again, or a type with an upcast, to resume or revert it)",
        )


class PlanUndecodable(_StepProblem):
    """A recorded step's arguments do not fit its type (fields changed without an upcast)."""

    def __init__(self, op: str, index: int, kind: str, reason: str) -> None:
        self.reason = reason
        super().__init__(
            op,
            index,
            kind,
            f"({kind}) cannot be read: {reason} (give the step type a higher class_version"
            " and an upcast_vN_vM method to resume or revert it)",
        )


class IntentChanged(_StepProblem):
    """On resume a step computed an intent other than the one recorded: the step is buggy."""

    def __init__(self, op: str, index: int, kind: str) -> None:
        super().__init__(
            op,
            index,
            kind,
            f"({kind}) computes a different intent than it recorded; not resuming it forward"
            " (revert it: the recorded intent is used)",
        )


class OperationError(TxError):
    """An operation did not commit. ``view`` is its state as the journal has it."""

    def __init__(self, view: OperationView, message: str) -> None:
        self.view = view
        super().__init__(message)


class OperationFailed(OperationError):
    """A step failed and every completed step was reverted: the old state is back."""


class OperationIncomplete(OperationError):
    """The operation stopped half way (a revert failed too): it must be resumed or reverted."""
