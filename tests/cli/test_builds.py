"""Environments are built at a stable place of the home and then moved to their own path
(cli/txtool/builds.py): the tool works from there, its scripts name their own interpreter,
builds at once take places of their own, and the home keeps no trace of a build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from txcli import OK, Tx

from txengine import FileSystem
from txtool import builds
from txtool.wheelhouse import build_wheel

pytestmark = pytest.mark.skipif(not builds.usable(), reason="build places need POSIX flock")

#: A child holding a place until its stdin closes: another process building at the same time.
HOLD = """
import sys
from pathlib import Path
from txengine import FileSystem
from txtool import builds
with builds.place(Path(sys.argv[1]), sys.argv[2], "tool", FileSystem()) as (p, made):
    p.mkdir()
    print(p, flush=True)
    sys.stdin.read()
"""


def _hold(root: Path, python: str) -> tuple[subprocess.Popen[str], Path]:
    """A child holding a place under ``root`` for ``python``, and that place."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), python],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def _let_go(proc: subprocess.Popen[str]) -> None:
    """The holder's block ends (its stdin closes) and it exits cleanly."""
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def _first_line(path: Path) -> str:
    return path.read_bytes().split(b"\n", 1)[0].decode()


def test_an_installed_tool_names_its_own_interpreter_and_leaves_no_build_place(
    tx: Tx, tmp_path: Path
) -> None:
    # A data script (``#!python`` in the wheel) besides a console script: both are moved.
    build_wheel(
        tmp_path / "wheels",
        "datatool",
        "1.0",
        console_scripts={"datatool": "datatool:main"},
        files={
            "datatool/__init__.py": "def main() -> None:\n    print('datatool 1.0')\n",
            "datatool-1.0.data/scripts/datatool-raw": "#!python\nprint('raw 1.0')\n",
        },
    )
    tx("install", "datatool", "--no-index", "--find-links", str(tmp_path / "wheels"))
    (env,) = tx.envs("datatool")
    for name in ("datatool", "datatool-raw"):
        assert _first_line(env / "bin" / name) == f"#!{env}/bin/python"
        assert tx.shim(name).endswith("1.0")
    assert "relocatable = true" in (env / "pyvenv.cfg").read_text()
    assert not (tx.home / "build").exists()


def test_an_upgrade_is_built_in_place_and_moved(txdemo1: Tx) -> None:
    tx = txdemo1
    tx("upgrade", "txdemo@latest")
    envs = tx.envs("txdemo")
    assert len(envs) == 2
    new = (tx.home / "tools" / "txdemo" / "current").resolve()
    assert _first_line(new / "bin" / "txdemo") == f"#!{new}/bin/python"
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert not (tx.home / "build").exists()
    tx.assert_clean()


def test_a_home_deeper_than_a_shebang_line_runs_its_tools(tmp_path: Path, wheelhouse: Path) -> None:
    """Linux reads 127 bytes of a ``#!`` line: a longer interpreter path goes through
    /bin/sh, as uv and pip write it."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    tx = Tx(deep, wheelhouse)
    tx.install("txdemo==1.0")
    (env,) = tx.envs("txdemo")
    assert len(f"#!{env}/bin/python") > 127
    assert _first_line(env / "bin" / "txdemo") == "#!/bin/sh"
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_builds_at_once_take_places_of_their_own(tmp_path: Path) -> None:
    root = tmp_path / "build"
    holder, held = _hold(root, sys.executable)
    try:
        assert held.parent == root
        with builds.place(root, sys.executable, "tool", FileSystem()) as (mine, made):
            assert not made
            assert mine != held and mine.parent == root
            mine.mkdir()
            assert held.is_dir()  # the other build's place is left alone
        assert not mine.exists() and held.is_dir()
    finally:
        _let_go(holder)
    assert not root.exists()  # the last build out removes the directory of places


def test_what_a_killed_build_left_is_swept_but_not_a_live_build(tmp_path: Path) -> None:
    root = tmp_path / "build"
    killed, left = _hold(root, "/killed/python")
    live, busy = _hold(root, "/live/python")
    try:
        killed.kill()
        killed.wait(timeout=30)
        assert left.is_dir()  # a SIGKILL runs no clean-up
        builds.sweep(root, FileSystem())
        assert not left.exists() and not Path(f"{left}.lock").exists()
        assert busy.is_dir()
    finally:
        _let_go(live)
    assert not root.exists()


def test_a_failed_build_is_undone_and_a_killed_one_finished_by_a_rerun(tx: Tx) -> None:
    failed = tx.install(
        "txdemo==1.0", failpoints="step.install-env.installed=error:ENOSPC", expect=None
    )
    assert failed.returncode != OK and "every change was undone" in failed.stderr
    assert tx.envs("txdemo") == [] and not (tx.home / "build").exists()
    killed = tx.install("txdemo==1.0", failpoints="step.install-env.installed=kill", expect=None)
    assert killed.returncode == -9
    assert [p.name for p in (tx.home / "build").iterdir()] != []  # a SIGKILL cleans nothing
    tx.install("txdemo==1.0")  # the re-run finishes the install
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert not (tx.home / "build").exists()
    tx.assert_clean()


def test_a_long_interpreter_path_gets_a_sh_trampoline() -> None:
    assert builds.shebang(b"/short/bin/python") == b"#!/short/bin/python\n"
    spaced = builds.shebang(b"/with space/it's/bin/python")
    assert spaced == b"#!/bin/sh\n'''exec' '/with space/it'\\''s/bin/python' \"$0\" \"$@\"\n' '''\n"
    assert builds.shebang(b"/" + b"x" * 130).startswith(b"#!/bin/sh\n")


def test_an_install_whose_resolution_fails_leaves_no_environment_made_meanwhile(tx: Tx) -> None:
    """An install makes its empty environment while the resolver runs (Resolve.prepare):
    a resolution that fails takes it back with it."""
    proc = tx.install("txdemo==9.9", expect=None)
    assert proc.returncode != OK and "txdemo==9.9" in proc.stderr
    assert not (tx.home / "build").exists()
    assert tx.envs("txdemo") == []
    killed = tx.install("txdemo==1.0", failpoints="journal.before.step-done#1=kill", expect=None)
    assert killed.returncode == -9  # after the resolve, before its record: a place is left
    assert any(p.is_dir() for p in (tx.home / "build").iterdir())
    tx("resume", "--revert")
    assert not (tx.home / "build").exists()


def test_uv_asks_a_place_s_interpreter_once_for_every_later_build(tx: Tx, tmp_path: Path) -> None:
    """What the places are for: uv keeps what it learnt about an interpreter under the
    interpreter's path. Builds at a place of the home add no entry after the first one;
    every new environment at a path of its own would add one (a ~30 ms ``python`` run)."""
    cache = tmp_path / "uv-cache"

    def entries() -> set[Path]:
        return set(cache.glob("interpreter-v*/**/*.msgpack"))

    tx.install("txdemo==1.0", UV_CACHE_DIR=str(cache))
    first = entries()
    assert first  # uv caches interpreters there (else this test checks nothing)
    tx("upgrade", "txdemo@latest", *tx.index, UV_CACHE_DIR=str(cache))
    tx("reinstall", "txdemo", UV_CACHE_DIR=str(cache))
    assert len(tx.envs("txdemo")) == 3
    assert entries() == first


def test_a_build_sweeps_what_killed_builds_left_in_other_places(txdemo1: Tx) -> None:
    tx = txdemo1
    left = tx.home / "build" / "0123abcd-3"  # a place a killed build used, its lock gone
    (left / "bin").mkdir(parents=True)
    tx("upgrade", "txdemo@latest")
    assert not (tx.home / "build").exists()
    tx.assert_clean()


def test_a_leftover_that_cannot_be_removed_fails_no_build(txdemo1: Tx) -> None:
    """Scratch never fails an operation: a place a killed build left that cannot be
    removed now stays for a later sweep, and the upgrade commits."""
    tx = txdemo1
    left = tx.home / "build" / "0123abcd-3"
    (left / "bin").mkdir(parents=True)
    tx("upgrade", "txdemo@latest", failpoints=f"fs.rmtree@{left}=error:EACCES")
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert left.is_dir()
    tx("upgrade", "txdemo@latest")  # nothing newer: a no-op, which builds nothing
    tx("reinstall", "txdemo")  # the next build sweeps it
    assert not (tx.home / "build").exists()
    tx.assert_clean()
