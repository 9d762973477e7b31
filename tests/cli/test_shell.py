"""The bin dir and the user's shell: ``dir``, ``ensurepath`` (idempotent on each shell's file
in a temporary HOME, checked by sourcing it in the real shell where it is installed), the
Windows user PATH logic, the "not on PATH" and "shadowed" warnings; and the bulk commands
(``uninstall --all``, ``uninstall A B``, ``install A B`` carrying on)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from txtool.cli import FAILED, OK, USAGE
from txtool.shell import MARKER, ensure_user_path


def test_dir_prints_the_tools_dir_and_the_bin_dir(tx) -> None:
    assert tx("dir").stdout == f"{tx.home / 'tools'}\n"
    assert tx("dir", "--bin").stdout == f"{tx.bin}\n"


def _startup_file(home: Path, shell: str) -> Path:
    return {
        "bash": home / ".bashrc",
        "zsh": home / ".zshrc",
        "fish": home / ".config" / "fish" / "config.fish",
    }[shell]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_ensurepath_is_idempotent_on_each_shell_file(tx, tmp_path, shell) -> None:
    home = tmp_path / "user"
    rc = _startup_file(home, shell)
    rc.parent.mkdir(parents=True)
    rc.write_text("# the user's own line, without a newline at the end")
    env = {"HOME": str(home), "XDG_CONFIG_HOME": "", "ZDOTDIR": ""}
    first = tx("ensurepath", "--shell", shell, **env)
    assert f"{rc}: added {tx.bin} on PATH" in first.stdout
    after_first = rc.read_text()
    assert after_first.startswith("# the user's own line, without a newline at the end\n")
    assert after_first.count(MARKER) == 1
    second = tx("ensurepath", "--shell", shell, **env)
    assert f"{rc}: already has {tx.bin} on PATH" in second.stdout
    assert "open a new shell" not in second.stdout
    assert rc.read_text() == after_first
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed: the file was checked, not sourced")
    # Sourced twice (a nested shell): the bin dir is on PATH once, first.
    script = {
        "fish": f"source {rc}; source {rc}; string join : $PATH",
        "bash": f". {rc}; . {rc}; echo $PATH",
        "zsh": f". {rc}; . {rc}; echo $PATH",
    }[shell]
    out = subprocess.run(
        [exe, "-c", script],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out.split(":").count(str(tx.bin)) == 1 and out.startswith(str(tx.bin)), out


def test_ensurepath_bash_writes_the_login_file_bash_reads(tx, tmp_path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    (home / ".bash_profile").write_text("[ -f ~/.bashrc ] && . ~/.bashrc\n")
    tx("ensurepath", "--shell", "bash", HOME=str(home))
    assert MARKER in (home / ".bash_profile").read_text()
    assert MARKER in (home / ".bashrc").read_text()
    assert not (home / ".profile").exists()  # bash does not read it when .bash_profile exists
    # A login shell started from scratch finds the bin dir.
    out = subprocess.run(
        ["bash", "-l", "-c", "echo $PATH"],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.split(":")[0] == str(tx.bin)


def test_ensurepath_by_default_takes_the_login_shell_and_installed_ones(tx, tmp_path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    out = tx("ensurepath", HOME=str(home), SHELL="/usr/bin/zsh").stdout
    assert str(home / ".zshrc") in out  # the login shell, installed or not
    assert str(home / ".bashrc") in out  # bash is installed here


def test_ensurepath_reports_a_file_it_cannot_write_in_one_line(tx, tmp_path) -> None:
    home = tmp_path / "user"
    (home / ".zshrc").mkdir(parents=True)  # a directory where the file should be
    proc = tx("ensurepath", "--shell", "zsh", HOME=str(home), expect=FAILED)
    assert ".zshrc" in tx.one_error(proc)


class _Registry:
    """The user PATH value as the registry would hold it (the seam RegistryUserPath fills)."""

    def __init__(self, value: str) -> None:
        self.value, self.writes = value, 0

    def get(self) -> str:
        return self.value

    def set(self, value: str) -> None:
        self.value, self.writes = value, self.writes + 1


def test_the_windows_user_path_gets_the_bin_dir_once() -> None:
    store = _Registry(r"C:\Windows;%USERPROFILE%\scripts;")
    bin_dir = Path(r"C:\Users\me\.local\bin")
    assert ensure_user_path(store, bin_dir).added
    assert store.value == rf"C:\Windows;%USERPROFILE%\scripts;{bin_dir}"
    assert not ensure_user_path(store, bin_dir).added
    store.value = store.value.upper() + "\\"  # the same directory, spelled otherwise
    assert not ensure_user_path(store, bin_dir).added
    assert store.writes == 1


def test_install_off_path_names_ensurepath(tx) -> None:
    proc = tx.install("txdemo==1.0", PATH="/usr/bin:/bin")
    assert "is not on PATH: run `txtool ensurepath`" in proc.stderr


def test_a_shadowed_executable_is_named(tx, tmp_path) -> None:
    other = tmp_path / "earlier"
    other.mkdir()
    (other / "txdemo").write_text("#!/bin/sh\necho impostor\n")
    (other / "txdemo").chmod(0o755)
    path = os.pathsep.join([str(other), str(tx.bin), "/usr/bin", "/bin"])
    proc = tx.install("txdemo==1.0", PATH=path)
    assert f"`txdemo` runs {other / 'txdemo'}, found on PATH before {tx.bin / 'txdemo'}" in (
        proc.stderr
    )
    assert "not on PATH" not in proc.stderr
    quiet = tx.install("multitool==1.0", PATH=os.pathsep.join([str(tx.bin), "/usr/bin", "/bin"]))
    assert "warning" not in quiet.stderr


def test_install_a_b_carries_on_and_reports_each(tx) -> None:
    proc = tx.install("txdemo==1.0", "nosuchtool", "multitool==1.0", expect=FAILED)
    assert "installed txdemo 1.0" in proc.stdout and "installed multitool 1.0" in proc.stdout
    assert "nosuchtool" in tx.one_error(proc)
    assert {t["name"] for t in tx.list_json()} == {"txdemo", "multitool"}
    tx.assert_clean()


def test_uninstall_several_and_all(tx) -> None:
    tx.install("txdemo==1.0", "multitool==1.0", "collide==1.0")
    proc = tx("uninstall", "txdemo", "collide")
    assert proc.stdout.splitlines() == ["uninstalled txdemo 1.0", "uninstalled collide 1.0"]
    tx.install("txdemo==1.0")
    proc = tx("uninstall", "--all", "--dry-run")
    assert "uninstall multitool" in proc.stdout and "uninstall txdemo" in proc.stdout
    proc = tx("uninstall", "--all")
    assert sorted(proc.stdout.splitlines()) == [
        "uninstalled multitool 1.0",
        "uninstalled txdemo 1.0",
    ]
    assert tx.list_json() == []
    assert sorted(os.listdir(tx.bin)) == []
    assert tx("uninstall", "--all").stdout == "no tools installed\n"
    tx.assert_clean()


def test_uninstall_all_undoes_an_interrupted_first_install(tx) -> None:
    tx.install("multitool==1.0")
    tx.install("txdemo==1.0", failpoints="step.copy-shims.copied=kill", expect=-9)
    proc = tx("uninstall", "--all", expect=OK)
    assert "undid the interrupted install of txdemo" in proc.stderr
    assert "uninstalled multitool 1.0" in proc.stdout
    assert tx.list_json() == [] and not os.listdir(tx.bin)
    tx.assert_clean()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["uninstall"], "--all"), (["uninstall", "--all", "txdemo"], "--all takes no names")],
    ids=["nothing", "both"],
)
def test_uninstall_bad_use_is_one_line(tx, argv, expected) -> None:
    assert expected in tx.one_error(tx(*argv, expect=USAGE))
