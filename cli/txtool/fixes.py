"""The commands that fix a state, built in one place so that `status`, `list`, `verify` and
error messages always name the same fix (dpkg ``--audit`` style)."""

from __future__ import annotations

from txengine import OperationView

_COMMANDS = {
    "resume": "txtool resume {op}",
    "revert": "txtool resume --revert {op}",
    "cleanup": "txtool resume {op}",
}


def fix_commands(view: OperationView) -> list[str]:
    """The commands that take ``view`` out of its state, best first (none when it is closed)."""
    return [_COMMANDS[a].format(op=view.id) for a in view.audit().actions]


def fix(view: OperationView) -> str:
    """The fix of ``view`` as one phrase: "`txtool resume OP` or `txtool resume --revert OP`"."""
    return " or ".join(f"`{c}`" for c in fix_commands(view))


def reinstall_command(tool: str) -> str:
    """What rebuilds a tool whose files on disk no longer match the journal."""
    return f"txtool reinstall {tool}"
