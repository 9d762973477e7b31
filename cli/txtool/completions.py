"""Shell completions, generated from the parser by ``argcomplete`` (bash, zsh, fish).

``txtool completions SHELL`` prints the shell's script; that script calls ``txtool`` itself
on each Tab (``_ARGCOMPLETE`` set), which :func:`complete` answers from the same parser, so
commands and options other modules add complete with no list to keep. A positional named
``NAME`` completes the installed tools, one named ``OP`` the operations left incomplete,
both read from the journal without its lock.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any, Literal, get_args

CompletionShell = Literal["bash", "zsh", "fish"]
SHELLS: tuple[CompletionShell, ...] = get_args(CompletionShell)


def script(shell: CompletionShell) -> str:
    from argcomplete.shell_integration import shellcode

    return shellcode(["txtool"], shell=shell)


def _state() -> Any:
    from .locations import Locations
    from .reading import read_state

    return read_state(Locations.from_env(), lambda message: None)


def installed_tools(**_: Any) -> list[str]:
    from .tools import project

    try:
        return sorted(project(_state()))
    except Exception:
        return []  # a completion never prints an error into the user's command line


def incomplete_ops(**_: Any) -> list[str]:
    try:
        return [v.id for v in _state().incomplete()]
    except Exception:
        return []


COMPLETERS: dict[str, Callable[..., list[str]]] = {"NAME": installed_tools, "OP": incomplete_ops}


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit (argcomplete writes to the descriptor the script reads)."""
    import argcomplete

    for action in _actions(parser):
        completer = COMPLETERS.get(str(action.metavar)) if not action.option_strings else None
        if completer is not None:
            action.completer = completer  # type: ignore[attr-defined]
    argcomplete.autocomplete(parser, always_complete_options=False)  # options after a "-"
