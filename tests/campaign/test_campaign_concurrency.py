"""Eight txtool processes at once on one home: install, upgrade and uninstall over three
tools. Afterwards the journal verifies, the disk matches it, and no record is lost: the
journal holds one operation per command that started one (each command's ``--json``
outcome, or its exit status, says whether it did)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import txcampaign as tc

COMMANDS = [
    ["install", "txdemo==1.0"],
    ["install", "multitool==1.0"],
    ["install", "slowtool==1.0"],
    ["upgrade", "txdemo"],
    ["upgrade", "multitool"],
    ["uninstall", "slowtool"],
    ["upgrade", "slowtool"],
    ["uninstall", "txdemo"],
]


def _ops_started(cmd: list[str], rc: int, stdout: str) -> int:
    """Operations a finished command started, from its exit status and --json outcome."""
    if rc == 2:  # usage / not installed: refused before any operation
        return 0
    assert rc in (0, 1), (cmd, rc)
    if rc == 1:
        return 1  # failed and reverted: the operation is in the journal
    outcomes = json.loads(stdout)
    return sum(1 for o in outcomes if o["action"] not in ("already-installed", "resumed"))


def test_eight_processes_at_once(wheels: Path, tmp_path: Path) -> None:
    world = tmp_path
    world.mkdir(exist_ok=True)
    tc.txtool(world, "install", "slowtool==1.0", *tc.source(wheels), check=True)
    procs = []
    for cmd in COMMANDS:
        argv = [tc.PY, "-m", "txtool", *cmd, "--json"]
        if cmd[0] == "install":
            argv += tc.source(wheels)
        procs.append(
            (
                cmd,
                subprocess.Popen(
                    argv,
                    cwd=world,
                    env=tc.base_env(world),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    started = 1  # the setup's install
    for cmd, proc in procs:
        out, err = proc.communicate(timeout=300)
        assert "Traceback" not in err, err
        started += _ops_started(cmd, proc.returncode, out)
    jv = tc.txtool(world, "journal", "verify")
    assert jv.returncode == 0, jv.stderr
    verify = tc.txtool(world, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    history = json.loads(tc.txtool(world, "history", "--json", check=True).stdout)
    assert len(history) == started, history
    assert all(h["state"] in ("done", "reverted") for h in history), history
    status = json.loads(tc.txtool(world, "status", "--json", check=True).stdout)
    assert status == {"incomplete": [], "cleanup_pending": []}
    assert tc.picture(world)["strays"] == []
