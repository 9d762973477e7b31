"""Every sentence txtool shows about an operation's fate, built in one place so that the
service, ``status``, ``list`` and error messages say the same thing the same way (the fix
commands themselves come from :mod:`fixes`)."""

from __future__ import annotations

from txengine import OperationView

from .fixes import fix

RETRIED = "retried by the next command"


def waiting_for(pid: int | None) -> str:
    who = f"pid {pid}" if pid else "another process"
    return f"waiting for another txtool ({who}) to finish..."


def recovered(view: OperationView, forward: bool) -> str:
    """The one line said before a command does its own work over an interrupted operation."""
    verb = "finished" if forward else "undid"
    return f"{verb} the interrupted {view.kind} of {view.subject} (op {view.id})"


def not_attempted(tool: str, why: str = "interrupted") -> str:
    return f"{tool}: not attempted ({why})"


def nothing_changed(tool: str) -> str:
    return f"{tool}: interrupted; nothing was changed"


def closed_as_reverted(view: OperationView) -> str:
    return (
        f"interrupted before any change; {view.kind} of {view.subject} (op {view.id})"
        " closed as reverted"
    )


def how_to_fix(view: OperationView) -> str:
    """The fix of an incomplete operation: re-running the command, or the explicit commands."""
    return f"re-run the command, or run {fix(view)}"


def left_incomplete(view: OperationView) -> str:
    return (
        f"interrupted: {view.kind} of {view.subject} (op {view.id}) is incomplete;"
        f" {how_to_fix(view)}"
    )


def after_commit(view: OperationView, problem: str) -> str:
    return f"after {view.kind} {view.subject} committed: {problem} ({RETRIED})"


def cleanup_failed(problem: str) -> str:
    return f"a pending clean-up could not finish: {problem} ({RETRIED})"


def compaction_failed(problem: str) -> str:
    return f"compacting the journal failed: {problem} (nothing is lost; {RETRIED})"


def pending_line(view: OperationView, pid: int | None) -> str:
    """How ``list`` and ``status`` show an operation that is not closed."""
    if pid is not None:
        return f"RUNNING {view.kind} {view.subject} (op {view.id}, pid {pid}): {view.audit().where}"
    return f"INCOMPLETE {view.kind} {view.subject} (op {view.id}): {view.audit().where}"


def not_on_path(bin_dir: object) -> str:
    return (
        f"{bin_dir} is not on PATH: run `txtool ensurepath` (then open a new shell)"
        " to use the installed tools"
    )


def shadowed(name: str, other: str, ours: object) -> str:
    return f"`{name}` runs {other}, found on PATH before {ours}: put the bin dir earlier on PATH"
