"""A broken environment is found and repaired, never called "up to date" (issue 7.12), and a
real full disk while placing a copy shim leaves no partial temp in the bin dir (issue 7.11)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from txcli import Tx

from txtool.cli import FAILED


def _kill_python(env: Path) -> None:
    """What uninstalling the base interpreter does to a venv: its python link dangles."""
    python = env / "bin" / "python"
    python.unlink()
    python.symlink_to("/nonexistent/python3.99")


def test_verify_reports_an_interpreter_that_no_longer_starts(txdemo1: Tx) -> None:
    tx = txdemo1
    (env,) = tx.envs("txdemo")
    _kill_python(env)
    (line,) = tx("verify", expect=FAILED).stdout.splitlines()
    assert line.startswith("txdemo: ") and "does not start" in line
    assert "fix: txtool reinstall txdemo" in line


@pytest.mark.parametrize("damage", ["deleted", "dead-python"])
def test_upgrade_of_a_broken_environment_repairs_it(txdemo1: Tx, damage: str) -> None:
    tx = txdemo1
    (env,) = tx.envs("txdemo")
    if damage == "deleted":
        shutil.rmtree(env)
    else:
        _kill_python(env)
    proc = tx("upgrade", "txdemo==1.0", *tx.index)
    assert "up to date" not in proc.stdout
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.tool("txdemo")["version"] == "1.0"
    tx.assert_clean()


@pytest.fixture
def full_bin(tx: Tx) -> Iterator[Path]:
    """The bin dir on a real 64 KiB tmpfs, filled to the last byte."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    tx.bin.mkdir(mode=0o755)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(tx.bin)],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot mount a tmpfs here: {e.stderr.decode().strip()}")
    try:
        yield tx.bin
    finally:
        subprocess.run(["umount", str(tx.bin)], check=True)


def _fill(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as f:
        for chunk in (4096, 1):  # whole blocks, then the last bytes
            try:
                while f.write(b"\0" * chunk):
                    pass
            except OSError:
                pass


def test_enospc_placing_a_copy_shim_leaves_no_temp(tx: Tx, full_bin: Path) -> None:
    # Make room for nothing: the copy's first write fails for real.
    _fill(full_bin)
    proc = tx.install("txdemo==1.0", expect=FAILED, TXTOOL_SHIMS="copy")
    assert sorted(p.name for p in full_bin.iterdir()) == ["filler"]  # no .txdemo.tmp-*
    assert str(full_bin / "txdemo") in tx.one_error(proc)
    assert tx.envs("txdemo") == []
    (full_bin / "filler").unlink()
    tx.install("txdemo==1.0", TXTOOL_SHIMS="copy")  # re-running is the fix
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_a_no_op_upgrade_checks_the_environment_without_starting_it(txdemo1: Tx) -> None:
    """The planner's check of the old environment is stat calls: its interpreter (here a
    wrapper that leaves a mark when it runs) is not started, and the upgrade is up to date."""
    tx = txdemo1
    (env,) = tx.envs("txdemo")
    python = env / "bin" / "python"
    real = os.path.realpath(python)
    mark = tx.root / "python-ran"
    python.unlink()
    python.write_text(f'#!/bin/sh\ntouch {mark}\nexec {real} "$@"\n')
    python.chmod(0o755)
    assert "up to date" in tx("upgrade", "txdemo", *tx.index).stdout
    assert not mark.exists(), "the no-op upgrade started the old environment's python"
