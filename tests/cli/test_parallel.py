"""Tools in parallel, from the command line: each tool's operations under its own lock, a
running one named by that lock's live holder, and read-only commands that load no more than
the journal's reader (see docs/performance.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from txtool.cli import FAILED, INCOMPLETE, INTERRUPTED, OK


def _killed_upgrade(tx) -> None:
    tx("upgrade", "txdemo@latest", failpoints="step.switch-current.switched=kill", expect=-9)


def test_a_dead_holders_subject_note_is_not_a_running_txtool(txdemo1, reap) -> None:
    """The tool's lock note names a live unrelated process: the lock itself is free, so
    the operation is incomplete (not running), and re-running the command is the fix."""
    tx = txdemo1
    _killed_upgrade(tx)
    notes = list((tx.journal / "subjects").glob("*.owner"))
    assert len(notes) == 1, notes  # one tool has had an operation: txdemo
    other = subprocess.Popen(["sleep", "30"])
    reap.append(other)
    notes[0].write_text(f"{other.pid}\n")
    status = tx("status", expect=INCOMPLETE)
    assert "INCOMPLETE upgrade txdemo" in status.stdout and "RUNNING" not in status.stdout
    tx("upgrade", "txdemo@latest")
    tx.assert_clean()


def test_an_incomplete_operation_of_another_tool_is_left_to_its_command(txdemo1) -> None:
    """Recovery touches only the tools a command works on: installing another tool leaves
    txdemo's interrupted upgrade as it was, for `txtool upgrade txdemo` to finish."""
    tx = txdemo1
    _killed_upgrade(tx)
    before = tx("status", "--json", expect=INCOMPLETE).stdout
    out = tx.install("multitool==1.0").stdout
    assert "installed multitool 1.0" in out and "txdemo" not in out
    assert tx("status", "--json", expect=INCOMPLETE).stdout == before
    tx("upgrade", "txdemo@latest")  # re-running is the fix
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()


def _imported(tx, argv: list[str]) -> tuple[set[str], str]:
    """The modules ``txtool ARGV`` loads (``python -X importtime``), and its stdout; it
    must succeed."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "txtool", *argv],
        env=tx.environ(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tx.root,
    )
    assert proc.returncode == OK, proc.stderr
    loaded = {ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines() if "|" in ln}
    return loaded, proc.stdout


_READ_ONLY = [["list"], ["list", "--json"], ["status"], ["history"], ["--version"]]


@pytest.mark.parametrize("argv", [*_READ_ONLY, ["history", "txdemo", "--generations"]])
def test_read_only_commands_import_no_installer(txdemo1, argv: list[str]) -> None:
    """What a read-only command loads (`python -X importtime`): the journal's reader, not the
    installer, the steps, the backends or packaging."""
    loaded, _ = _imported(txdemo1, argv)
    heavy = {"txtool.installer", "txtool.service", "txtool.steps", "txtool.backend", "packaging"}
    heavy |= {"txtool.generations"}  # the generations' steps: `--generations` reads sizes only
    assert loaded and not heavy & loaded, sorted(heavy & loaded)
    # Reading needs neither an event loop nor the lifecycle's machine library nor file locks.
    assert not {"anyio", "transitions", "filelock"} & loaded, argv
    # Nor the class generator of dataclasses (its value classes are Structs and named
    # tuples), nor threads, nor shutil (the parser asks os for the width); json only for
    # --json.
    assert not {"dataclasses", "threading", "shutil"} & loaded, argv
    assert ("json" in loaded) == ("--json" in argv), argv
    if argv == ["--version"]:
        assert "txengine" not in loaded and "anyio" not in loaded


@pytest.mark.parametrize("argv", [["uninstall", "txdemo"], ["upgrade", "txdemo"]])
def test_mutating_commands_import_only_what_they_run(txdemo1, argv: list[str]) -> None:
    """An uninstall starts no uv or pip (their runners stay unimported) and parses no
    requirement (no packaging); neither it nor a no-op upgrade reads package metadata (the
    planner stats the old environment) or imports secrets (ids and names come from
    os.urandom), the pip backend or the config file parsers (there is no config file)."""
    loaded, stdout = _imported(txdemo1, argv)
    assert "txtool.installer" in loaded
    assert not {"importlib.metadata", "secrets"} & loaded, argv
    assert not {"txtool.backend.pip", "tomllib", "configparser"} & loaded, argv
    if argv[0] == "uninstall":
        runners = {"txtool.backend.common", "txtool.backend.uv", "txtool.backend.pip"}
        assert not runners & loaded, sorted(runners & loaded)
        assert not {m for m in loaded if m.split(".")[0] == "packaging"}, argv
    else:
        assert "up to date" in stdout


def test_ctrl_c_while_waiting_for_a_busy_tool_stops_the_wait(txdemo1, reap) -> None:
    """A second upgrade of a tool waits for the first (it says for whom); Ctrl-C ends that
    wait at once with nothing changed, while the first goes on and completes."""
    tx = txdemo1
    busy = tx.spawn("upgrade", "txdemo@latest", failpoints="step.install-env.created=sleep:8")
    reap.append(busy)
    tx.wait_for(tx.building, what="the new environment")
    waiting = tx.spawn("upgrade", "txdemo@latest")
    reap.append(waiting)
    assert waiting.stderr is not None
    line = waiting.stderr.readline()
    assert line.startswith("txtool: waiting for another txtool"), line
    assert f"pid {busy.pid}" in line
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == INTERRUPTED, err
    assert busy.poll() is None, "the wait ended only when the busy upgrade did"
    _, err = busy.communicate(timeout=120)
    assert busy.returncode == OK, err
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()


def test_two_tools_placing_one_executable_name_at_once_never_both_win(tx, reap) -> None:
    """multitool and rival both expose `mt-a` and are installed by two txtools at the same
    moment, each past its check of the bin dir before either places the name: exactly one
    gets it; the other fails, says so and is undone (a placement never replaces a file)."""
    window = "fs.symlink@*mt-a*=sleep:3"  # both make their temp link, then both place it
    procs = {
        name: tx.spawn("install", name, *tx.index, failpoints=window)
        for name in ("multitool", "rival")
    }
    reap.extend(procs.values())
    codes = {name: p.wait(timeout=120) for name, p in procs.items()}
    assert sorted(codes.values()) == [OK, FAILED], codes
    winner = next(n for n, c in codes.items() if c == OK)
    loser = next(n for n, c in codes.items() if c == FAILED)
    assert "appeared during the operation" in procs[loser].stderr.read()
    assert [t["name"] for t in tx.list_json()] == [winner]
    assert f"/tools/{winner}/" in os.readlink(tx.bin / "mt-a")
    assert tx.shim("mt-a") == ("mt-a 2.0" if winner == "multitool" else "mt-a 1.0")
    tx.assert_clean()
