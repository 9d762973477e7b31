"""Shell completions: the script ``txtool completions SHELL`` prints is loaded into the real
shell, which then completes commands, options, installed tools and incomplete operations by
calling the real ``txtool`` (bash through ``COMP_WORDS``, fish through ``complete -C``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from txtool.cli import _parser
from txtool.helptext import subcommands

TXTOOL = Path(sys.executable).parent / "txtool"

BASH = """
source <(txtool completions bash) || exit 9
line="$1"
COMP_LINE="$line"; COMP_POINT=${#line}
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_python_argcomplete txtool "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""


@pytest.fixture
def shell_env(tx) -> dict[str, str]:
    if not TXTOOL.exists():
        pytest.skip(f"no txtool launcher at {TXTOOL} (install txtool into this environment)")
    env = tx.environ()
    env["PATH"] = os.pathsep.join([str(TXTOOL.parent), env.get("PATH", "")])
    return env


def _bash(env: dict[str, str], line: str) -> list[str]:
    proc = subprocess.run(
        ["bash", "-c", BASH, "bash", line],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [w.strip() for w in proc.stdout.splitlines() if w.strip()]


def test_bash_completes_every_command(shell_env) -> None:
    words = _bash(shell_env, "txtool ")
    assert set(subcommands(_parser())) <= set(words)
    assert _bash(shell_env, "txtool uninst") == ["uninstall"]
    assert "--all" in _bash(shell_env, "txtool uninstall --")
    assert "--revert" in _bash(shell_env, "txtool resume --")


def test_bash_completes_installed_tools_and_incomplete_operations(tx, shell_env) -> None:
    tx.install("txdemo==1.0", "multitool==1.0")
    assert _bash(shell_env, "txtool uninstall ") == ["multitool", "txdemo"]
    assert _bash(shell_env, "txtool upgrade tx") == ["txdemo"]
    tx(
        "upgrade",
        "txdemo@latest",
        *tx.index,
        failpoints="step.switch-current.switched=kill",
        expect=-9,
    )
    (incomplete,) = [t["incomplete"]["op"] for t in tx.list_json(expect=None) if t["incomplete"]]
    assert _bash(shell_env, "txtool resume ") == [incomplete]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_and_tools(tx, shell_env) -> None:
    tx.install("txdemo==1.0")

    def fish(line: str) -> list[str]:
        script = f"txtool completions fish | source; complete -C '{line}'"
        proc = subprocess.run(
            ["fish", "--no-config", "-c", script],
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return [w.split("\t")[0] for w in proc.stdout.splitlines()]

    assert set(subcommands(_parser())) <= set(fish("txtool "))
    assert fish("txtool uninstall tx") == ["txdemo"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_the_zsh_script_loads_into_compinit(shell_env) -> None:
    script = (
        "autoload -U compinit && compinit -u -D && source <(txtool completions zsh)"
        " && print -r -- $_comps[txtool]"
    )
    proc = subprocess.run(
        ["zsh", "-f", "-c", script], env=shell_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "_python_argcomplete"


def test_completions_of_an_unknown_shell_is_one_line(tx) -> None:
    proc = tx("completions", "tcsh", expect=2)
    assert "invalid choice: 'tcsh'" in tx.one_error(proc)
