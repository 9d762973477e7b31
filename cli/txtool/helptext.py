"""The help a person reads: the one-screen ``txtool --help``, each command's example,
``txtool help [COMMAND|env|exit-codes]`` and the "did you mean" of a mistyped command.

Everything is generated from the parser (commands other modules add show up on their own),
from :data:`exitcodes.MEANING` and from :data:`locations.ENVIRONMENT`: no second list. Each
command's parser asks for its epilog here, so this module imports only ``argparse`` at the top
(``txtool --version`` builds the parser too).
"""

from __future__ import annotations

import argparse

WIDTH = 80

#: The commands ``txtool --help`` shows with their help line; the rest are listed by name.
EVERYDAY = ("install", "upgrade", "uninstall", "run", "list", "status")

#: Each command's example, shown at the end of its help (``txtool help COMMAND``).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "install": ("txtool install black 'ruff>=0.5'", "txtool install --python 3.12 httpie"),
    "upgrade": ("txtool upgrade black", "txtool upgrade --all --jobs 2"),
    "uninstall": ("txtool uninstall black ruff", "txtool uninstall --all"),
    "list": ("txtool list", "txtool list --outdated"),
    "reinstall": ("txtool reinstall black", "txtool reinstall --all"),
    "inject": ("txtool inject pytest pytest-timeout",),
    "uninject": ("txtool uninject pytest pytest-timeout",),
    "rollback": ("txtool rollback ruff", "txtool rollback --all"),
    "gc": ("txtool gc", "txtool gc ruff --keep 0"),
    "resume": ("txtool resume", "txtool resume 3f2a --revert"),
    "status": ("txtool status",),
    "history": ("txtool history black", "txtool history black --generations"),
    "journal": ("txtool journal verify", "txtool journal show --json | head"),
    "journal show": ("txtool journal show --json | head",),
    "journal verify": ("txtool journal verify",),
    "journal compact": ("txtool journal compact",),
    "verify": ("txtool verify",),
    "demo": ("txtool demo --keep",),
    "help": ("txtool help install", "txtool help exit-codes"),
    "dir": ("txtool dir", 'export PATH="$(txtool dir --bin):$PATH"'),
    "ensurepath": ("txtool ensurepath", "txtool ensurepath --shell fish"),
    "completions": ("txtool completions bash > ~/.local/share/bash-completion/completions/txtool",),
    "run": ("txtool run ruff check .", "txtool run --from 'httpie<4' http example.org"),
    "cache": ("txtool cache prune", "txtool cache clean"),
    "cache prune": ("txtool cache prune",),
    "cache clean": ("txtool cache clean",),
}

TOPICS = ("env", "exit-codes")


def epilog(command: str) -> str | None:
    """The end of a command's help: its example (``None`` for a command without one)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands (its subparsers), by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _wrapped(label: str, words: list[str]) -> list[str]:
    import textwrap

    return textwrap.wrap(
        ", ".join(words),
        WIDTH,
        initial_indent=label,
        subsequent_indent="  ",
        break_on_hyphens=False,
    )


def overview(parser: argparse.ArgumentParser) -> str:
    """``txtool --help``: one screen (at most 24 lines of 80 columns), pointing to ``help``."""
    import textwrap

    helps = _helps(parser)
    lines = [
        "usage: txtool COMMAND [options]",
        "",
        *textwrap.wrap(parser.description or "", WIDTH),
        "",
        "everyday commands:",
        *(f"  {name:<11} {helps[name]}"[:WIDTH] for name in EVERYDAY if name in helps),
        "",
        *_wrapped("all commands: ", list(helps)),
        "",
        "options: --version, -h/--help; commands that report take --json",
        *_wrapped(
            "more help: ", ["`txtool help COMMAND`", *(f"`txtool help {t}`" for t in TOPICS)]
        ),
    ]
    return "\n".join(lines) + "\n"


def commands_text(parser: argparse.ArgumentParser) -> str:
    """``txtool help``: every command with its help line, and the help topics."""
    lines = ["commands:"]
    lines += [f"  {name:<12} {text}" for name, text in _helps(parser).items()]
    lines += ["", "topics:", "  env          environment variables txtool reads"]
    lines += ["  exit-codes   what each exit code means", ""]
    lines += ["`txtool help COMMAND` shows a command's options and an example."]
    return "\n".join(lines) + "\n"


def _table(title: str, rows: dict[str, str]) -> str:
    """Two columns in 80: a long meaning wraps under itself."""
    import textwrap

    width = max(len(k) for k in rows)
    lines = [f"{title}:"]
    for key, meaning in rows.items():
        lines += textwrap.wrap(
            meaning,
            WIDTH,
            initial_indent=f"  {key:<{width}}  ",
            subsequent_indent=" " * (width + 4),
        )
    return "\n".join(lines) + "\n"


def env_text() -> str:
    from .locations import ENVIRONMENT

    return _table("environment variables", ENVIRONMENT)


def exit_codes_text() -> str:
    from .exitcodes import MEANING

    return _table("exit codes", {f"{code:>3}": text for code, text in MEANING.items()})


def topic(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """The text of ``txtool help WORDS...``; ``None`` when there is no such command or topic."""
    if not words:
        return commands_text(parser)
    if words == ["env"]:
        return env_text()
    if words == ["exit-codes"]:
        return exit_codes_text()
    found: argparse.ArgumentParser | None = parser
    for word in words:
        found = subcommands(found).get(word) if found is not None else None
    return found.format_help() if found is not None else None


def suggestion(word: str, choices: list[str]) -> str:
    """`` (did you mean 'X'?)`` for a near miss, else an empty string."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_command(parser: argparse.ArgumentParser, message: str) -> str | None:
    """argparse's "invalid choice" of a command, as one line with a suggestion; ``None``
    for any other error."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        prefix = f"argument {action.metavar}: invalid choice: "
        if not message.startswith(prefix):
            continue
        word = message.removeprefix(prefix).split(" (choose from", 1)[0].strip("'\"")
        hint = suggestion(word, list(action.choices))
        return f"unknown command {word!r}{hint}: see `{parser.prog} --help` or `txtool help`"
    return None


def unknown_topic(parser: argparse.ArgumentParser, words: list[str]) -> str:
    choices = [*subcommands(parser), *TOPICS]
    hint = suggestion(words[0], choices) if len(words) == 1 else ""
    return f"no help for {' '.join(words)!r}{hint}: see `txtool help`"
