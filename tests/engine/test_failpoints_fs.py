"""Failpoints (parsing, errors, trace) and the Windows "in use" double of the filesystem seam."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from txhelpers import STEP_TYPES, make_tree, tree, types_of

from txengine import (
    Engine,
    FileSystem,
    Journal,
    OperationFailed,
    PlaceFile,
    RemovePath,
    discard,
    load,
    stash,
)
from txengine import _failpoints as failpoints
from txengine._failpoints import IN_USE_TEXT
from txengine.testing import InUseFileSystem

OLD = {"a": b"old a", "d": "dir", "d/x": b"x"}
NEW = {"a": b"new a"}


@pytest.mark.parametrize(
    "spec",
    [
        "no-action",
        "=kill",
        "fs.*=explode",
        "fs.*=error:ENOTANERRNO",
        "fs.*=error",
        "fs.*#two=kill",
        "fs.*=sleep:long",
        "fs.*=kill:now",
        "ok=kill;bad",
    ],
)
def test_bad_specs_are_value_errors(spec: str) -> None:
    with pytest.raises(ValueError):
        failpoints.parse(spec)
    with pytest.raises(ValueError):
        failpoints.configure(spec)


def test_spec_parses() -> None:
    rules = failpoints.parse(" fs.replace@*/bin/*#3=error:ENOSPC ; journal.*=kill;x=sleep:0.5;")
    assert [(r.name, r.path, r.nth, r.action) for r in rules] == [
        ("fs.replace", "*/bin/*", 3, "error:ENOSPC"),
        ("journal.*", None, None, "kill"),
        ("x", None, None, "sleep:0.5"),
    ]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tree(tmp_path / "tree", OLD)
    return tmp_path / "tree"


@pytest.mark.anyio
async def test_enospc_at_replace_fails_the_step_and_reverts(tmp_path: Path, root: Path) -> None:
    jdir = tmp_path / "j"
    with Journal.open(jdir) as journal:
        failpoints.configure(f"fs.replace@{root}/*=error:ENOSPC")
        engine = Engine(journal, STEP_TYPES)
        with pytest.raises(OperationFailed) as info:
            await engine.run(
                "install", "t", [RemovePath(str(root / "d")), PlaceFile(str(root / "a"), "new a")]
            )
    view = info.value.view
    assert view.errno == errno.ENOSPC and "No space left on device" in (view.error or "")
    assert tree(root) == OLD  # no temp file left either
    assert "step-failed" in types_of(jdir, view.id)
    assert load(jdir).ops[view.id].state == "reverted"


@pytest.mark.anyio
async def test_trace_lists_the_points_hit(tmp_path: Path, root: Path) -> None:
    trace = tmp_path / "trace"
    with Journal.open(tmp_path / "j") as journal:
        engine = Engine(journal, STEP_TYPES)
        failpoints.configure(None, trace=str(trace))
        await engine.run("install", "t", [PlaceFile(str(root / "a"), "new a")])
    hits = [line.split("\t") for line in trace.read_text().splitlines()]
    names = [name for name, _ in hits]
    for point in ("before", "written", "after"):
        assert f"journal.{point}.op-started" in names
    assert names[0] == "journal.before.op-started"
    assert names[-1] == "journal.after.cleaned-up"
    assert ["fs.replace", str(root / "a")] in hits
    started = names.index("journal.after.step-started")
    assert started < names.index("fs.replace") < names.index("journal.before.step-done")


def test_busy_file_refuses_unlink_and_replace_but_can_be_stashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy, other = tmp_path / "tool.exe", tmp_path / "new.exe"
    busy.write_bytes(b"running")
    other.write_bytes(b"new")
    monkeypatch.setenv("TXENGINE_FS_BUSY", os.pathsep.join([str(busy), str(tmp_path / "gone")]))
    fs = FileSystem()
    assert isinstance(fs, InUseFileSystem)
    for call in (lambda: fs.unlink(busy), lambda: fs.replace(other, busy)):
        with pytest.raises(PermissionError) as info:
            call()
        assert IN_USE_TEXT in str(info.value) and "os error 32" in str(info.value)
    assert busy.read_bytes() == b"running" and other.exists()

    stashed = stash(fs, busy, tmp_path / "stash" / "0-old")
    assert stashed == tmp_path / "stash" / "0-old" and not busy.exists()
    fs.replace(other, busy)  # the name is free now: placing the new file works
    assert busy.read_bytes() == b"new"
    assert discard(fs, tmp_path / "stash") is False  # still in use under its new name
    assert stashed.read_bytes() == b"running"
    assert discard(InUseFileSystem(busy=[]), tmp_path / "stash") is True
    assert not (tmp_path / "stash").exists()


@pytest.mark.anyio
async def test_in_use_files_leave_cleanup_pending_until_a_later_run(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jdir = tmp_path / "j"
    monkeypatch.setenv("TXENGINE_FS_BUSY", os.pathsep.join([str(root / "a"), str(root / "d/x")]))
    plan = [PlaceFile(str(root / "a"), "new a"), RemovePath(str(root / "d"))]
    with Journal.open(jdir) as journal:
        view = await Engine(journal, STEP_TYPES).run("upgrade", "tool", plan)
    assert view.state == "committed" and view.committed
    assert tree(root) == NEW
    state = load(jdir)
    assert [a.actions for a in state.audit()] == [("cleanup",)]
    assert state.incomplete() == []
    stash_dir = jdir / "stash" / view.id
    assert (stash_dir / "0-old").read_bytes() == b"old a"

    monkeypatch.delenv("TXENGINE_FS_BUSY")  # the editor was closed
    with Journal.open(jdir) as journal:
        cleaned = await Engine(journal, STEP_TYPES).finish_cleanups()
    assert [v.id for v in cleaned] == [view.id]
    assert load(jdir).ops[view.id].state == "done"
    assert not stash_dir.exists()
    assert tree(root) == NEW


def test_the_in_use_double_is_loaded_only_when_asked_for() -> None:
    """A normal run imports no emulation code; TXENGINE_FS_BUSY swaps the double in."""
    code = (
        "import sys, txengine; fs = txengine.FileSystem();"
        " print(type(fs).__name__, 'txengine.testing' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TXENGINE_FS_BUSY"}
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert plain.stdout.split() == ["FileSystem", "False"], plain.stderr
    env["TXENGINE_FS_BUSY"] = "/nonexistent"
    busy = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert busy.stdout.split() == ["InUseFileSystem", "True"], busy.stderr
