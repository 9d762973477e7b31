"""Help worth reading: every command and option explained, an example per command, the
environment variables and exit codes listed from their one source, a suggestion for a typo,
and ``txtool --help`` on one screen."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import pytest

from txtool.cli import USAGE, _help_width, _parser
from txtool.exitcodes import MEANING
from txtool.helptext import EXAMPLES, subcommands
from txtool.locations import ENVIRONMENT

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for name, sub in subcommands(parser).items():
        found.append(((*prefix, name), sub))
        found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(_parser())


def test_root_help_fits_one_screen_and_points_to_help(tx) -> None:
    out = tx("--help").stdout
    lines = out.splitlines()
    assert len(lines) <= 24, out
    assert max(len(line) for line in lines) <= 80, out
    assert "txtool help COMMAND" in out
    for name in subcommands(_parser()):  # every command is named, even on one screen
        assert re.search(rf"\b{re.escape(name)}\b", out), name


@pytest.mark.parametrize("words", [w for w, _ in COMMANDS], ids=" ".join)
def test_every_command_and_option_has_help_and_an_example(words, tx) -> None:
    sub = dict(COMMANDS)[words]
    for action in sub._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, (words, action.dest)
        if not action.option_strings:  # a positional has a name, not argparse's dest
            assert action.metavar and action.metavar.upper() == action.metavar, action.dest
    out = tx("help", *words).stdout
    assert out == sub.format_help()
    example = out.rstrip().rsplit("\nexample:\n", 1)
    assert len(example) == 2, f"`txtool {' '.join(words)} --help` ends without an example"
    assert all(line.strip().startswith(("txtool ", "export ")) for line in example[1].splitlines())


def test_help_topics_list_every_exit_code_and_variable(tx) -> None:
    codes = tx("help", "exit-codes").stdout
    for code, meaning in MEANING.items():
        assert re.search(rf"^\s*{code}  {re.escape(meaning.split()[0])}", codes, re.M), code
    env = tx("help", "env").stdout
    for name in ENVIRONMENT:
        assert name in env
    overview = tx("help").stdout
    for name in subcommands(_parser()):
        assert f"  {name} " in overview


def test_the_docs_list_every_command_exit_code_and_variable() -> None:
    docs = DOCS.read_text()
    for name in subcommands(_parser()):
        assert f"`{name}" in docs, f"docs/cli.md does not cover `txtool {name}`"
    for code in MEANING:
        assert f"| {code} |" in docs
    for entry in ENVIRONMENT:
        for name in entry.split(" / "):
            assert f"`{name}`" in docs, name
    for words, _ in COMMANDS:  # docs/cli.md shows the example each command's help ends with
        for line in EXAMPLES.get(" ".join(words), ()):
            assert f"\n{line}\n" in docs, f"docs/cli.md lacks the example {line!r}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["instal", "black"], "unknown command 'instal' (did you mean 'install'?)"),
        (["unintsall"], "(did you mean 'uninstall'?)"),
        (["journal", "shwo"], "unknown command 'shwo' (did you mean 'show'?)"),
        (["help", "statsu"], "no help for 'statsu' (did you mean 'status'?)"),
        (["frobnicate"], "unknown command 'frobnicate': see `txtool --help`"),
    ],
    ids=["install", "uninstall", "journal-show", "help-topic", "no-match"],
)
def test_a_mistyped_command_gets_one_line_and_a_suggestion(tx, argv, expected) -> None:
    proc = tx(*argv, expect=USAGE)
    assert expected in tx.one_error(proc)
    assert not tx.home.exists()


@pytest.mark.parametrize("columns", [None, "60", "0", "wide"])
def test_help_wraps_to_the_width_argparse_would(monkeypatch, columns: str | None) -> None:
    """The parser asks ``os`` for the terminal's width instead of ``shutil`` (which costs a
    read-only command its compression modules): the width is the one argparse would use."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _help_width() == shutil.get_terminal_size().columns - 2
    install = subcommands(_parser())["install"]
    default = argparse.RawDescriptionHelpFormatter(install.prog)  # argparse's own width
    assert install._get_formatter()._width == default._width
