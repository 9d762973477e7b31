"""Eight txtool processes at once on one home: install, upgrade and uninstall over three
tools, then over eight different tools and some shared ones at once. Afterwards the journal
verifies, the disk matches it, and no record is lost: the journal holds one operation per
command that started one (each command's ``--json`` outcome, or its exit status, says
whether it did), and it replays to exactly the tools installed. Operations on different
tools overlap (one finishes while another is inside its own); those on one tool wait."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import txcampaign as tc

from txtool.wheelhouse import build_wheel

#: Eight tools of their own, for processes that never share a tool.
SOLO = [f"solo{i}" for i in range(8)]

COMMANDS = [
    ["install", "txdemo==1.0"],
    ["install", "multitool==1.0"],
    ["install", "slowtool==1.0"],
    ["upgrade", "txdemo@latest"],
    ["upgrade", "multitool@latest"],
    ["uninstall", "slowtool"],
    ["upgrade", "slowtool@latest"],
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


@pytest.fixture(scope="module")
def solo_wheels(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test wheelhouse plus the eight solo tools (1.0 and 2.0)."""
    out = tmp_path_factory.mktemp("solo-wheels")
    for whl in wheels.glob("*.whl"):
        (out / whl.name).write_bytes(whl.read_bytes())
    for name in SOLO:
        for version in ("1.0", "2.0"):
            build_wheel(
                out,
                name,
                version,
                console_scripts={name: f"{name}:main"},
                files={
                    f"{name}/__init__.py": f"def main() -> None:\n    print('{name} {version}')\n"
                },
            )
    return out


def _spawn(world: Path, wheels: Path, cmd: list[str], **env: str) -> subprocess.Popen[str]:
    argv = [tc.PY, "-m", "txtool", *cmd, "--json"]
    if cmd[0] == "install":
        argv += tc.source(wheels)
    return subprocess.Popen(
        argv,
        cwd=world,
        env=tc.base_env(world, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_world(world: Path, started: int) -> set[str]:
    """The journal verifies, the disk matches it, every operation is in it once, nothing is
    left over; return the tools the journal replays to."""
    jv = tc.txtool(world, "journal", "verify")
    assert jv.returncode == 0, jv.stderr
    verify = tc.txtool(world, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    history = json.loads(tc.txtool(world, "history", "--json", check=True).stdout)
    assert len(history) == started, history
    assert len({h["op"] for h in history}) == started, history
    assert all(h["state"] in ("done", "reverted") for h in history), history
    status = json.loads(tc.txtool(world, "status", "--json", check=True).stdout)
    assert status == {"incomplete": [], "cleanup_pending": []}
    picture = tc.picture(world)
    assert picture["strays"] == []
    listed = {t["name"] for t in json.loads(tc.txtool(world, "list", "--json").stdout)}
    assert listed == set(picture["tools"]), (listed, picture["tools"])
    return listed


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
    _check_world(world, started)


def test_different_tools_at_once_and_one_tool_in_turn(solo_wheels: Path, tmp_path: Path) -> None:
    """Eight processes on eight tools of their own, while four more work on two shared
    ones: every solo tool ends installed at the version its process asked for, and the
    journal replays to exactly the tools on disk."""
    world = tmp_path
    tc.txtool(world, "install", "solo0==1.0", "txdemo==1.0", *tc.source(solo_wheels), check=True)
    solo = [["upgrade", "solo0@latest"]] + [["install", f"{n}==1.0"] for n in SOLO[1:]]
    shared = [
        ["upgrade", "txdemo@latest"],
        ["uninstall", "txdemo"],
        ["install", "multitool==1.0"],
        ["install", "multitool==2.0", "--force"],
    ]
    procs = [(cmd, _spawn(world, solo_wheels, cmd)) for cmd in solo + shared]
    started = 2
    for cmd, proc in procs:
        out, err = proc.communicate(timeout=300)
        assert "Traceback" not in err, err
        if cmd in solo:
            assert proc.returncode == 0, (cmd, err)
        started += _ops_started(cmd, proc.returncode, out)
    tools = _check_world(world, started)
    assert set(SOLO) <= tools and "multitool" in tools
    assert tc.txtool(world, "list", check=True).stdout.count("solo0 2.0") == 1
    for name in SOLO[1:]:
        assert f"{name} 1.0" in tc.txtool(world, "list", check=True).stdout


def test_another_tool_finishes_while_one_is_inside_its_operation(
    solo_wheels: Path, tmp_path: Path
) -> None:
    """Real overlap, not start-up: one install sleeps inside its operation (its tool's lock
    held); an install of another tool completes meanwhile, ``status`` names the sleeping
    one as running, and a second install of the sleeping tool waits for it, then finds it
    installed."""
    world = tmp_path
    slow = _spawn(
        world,
        solo_wheels,
        ["install", "solo1==1.0"],
        TXENGINE_FAILPOINTS="step.install-env.created=sleep:8",
    )
    places = world / "home" / "build"  # its environment is built there (cli/txtool/builds.py)
    deadline = time.monotonic() + 60
    while not (places.is_dir() and any(p.is_dir() for p in places.iterdir())):
        assert slow.poll() is None and time.monotonic() < deadline, slow.communicate()
        time.sleep(0.05)
    same = _spawn(world, solo_wheels, ["install", "solo1==1.0"])
    other = tc.txtool(world, "install", "solo2==1.0", *tc.source(solo_wheels), "--json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)[0]["action"] == "installed"
    status = tc.txtool(world, "status")
    assert slow.poll() is None, "the other tool's install should not have waited for it"
    assert status.returncode == 0, status.stdout + status.stderr
    assert "RUNNING install solo1" in status.stdout and f"pid {slow.pid}" in status.stdout
    out, err = slow.communicate(timeout=120)
    assert slow.returncode == 0, err
    assert json.loads(out)[0]["action"] == "installed"
    out, err = same.communicate(timeout=120)
    assert same.returncode == 0, err
    assert json.loads(out)[0]["action"] == "already-installed"
    assert f"waiting for another txtool (pid {slow.pid})" in err
    _check_world(world, 2)
