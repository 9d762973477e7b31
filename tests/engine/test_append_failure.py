"""An append that raises never counts (issue 7: a full disk at ``committed`` gave exit 0).

The journal's state decides what is reported, so a record whose write or fdatasync failed
must be out of the state and out of the log: a commit that is not durable is not a
commit, and an operation whose ``op-started`` never reached the disk does not exist.
The real full disk is ``tests/campaign/test_campaign_enospc.py`` (``record committed``,
``record op-started``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from txhelpers import STEP_TYPES, make_tree, tree

from txengine import Engine, Journal, JournalError, PlaceFile, _journal, load
from txengine import _failpoints as failpoints
from txengine._events import OpStarted, StepStarted

OLD = {"a": b"old a", "b": b"old b"}
NEW = {"a": b"new a", "b": b"new b"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tree(tmp_path / "tree", OLD)
    return tmp_path / "tree"


def _plan(root: Path) -> list[PlaceFile]:
    return [PlaceFile(str(root / "a"), "new a"), PlaceFile(str(root / "b"), "new b")]


def _same_on_disk(journal: Journal) -> None:
    """What the open journal says is exactly what a fresh reader of its files says."""
    on_disk = {v.id: (v.state, list(v.steps)) for v in load(journal.directory)}
    in_memory = {v.id: (v.state, list(v.steps)) for v in journal.state}
    assert in_memory == on_disk


async def _finish(jdir: Path, op: str) -> None:
    engine = Engine(Journal.open(jdir), STEP_TYPES)
    with engine.journal:
        view = await engine.resume(op)
    assert view.state == "done"


@pytest.mark.anyio
@pytest.mark.parametrize("point", ["journal.before.committed", "journal.written.committed"])
async def test_a_commit_whose_append_fails_is_not_a_commit(
    tmp_path: Path, root: Path, point: str
) -> None:
    jdir = tmp_path / "j"
    engine = Engine(Journal.open(jdir), STEP_TYPES)
    with engine.journal:
        failpoints.configure(f"{point}=error:ENOSPC")
        with pytest.raises(OSError) as err:
            await engine.run("install", "thing", _plan(root))
        failpoints.configure(None)
        assert err.value.errno == errno.ENOSPC
        (view,) = engine.journal.state
        assert not view.committed and view.incomplete
        assert view.where() == "all 2 steps done, not committed"
        _same_on_disk(engine.journal)
    await _finish(jdir, view.id)
    assert tree(root) == NEW


@pytest.mark.anyio
async def test_a_failed_fdatasync_takes_back_every_unsynced_record(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's EIO from fdatasync at ``committed``: the pages written since the last
    sync may be lost, so ``step-done`` and ``committed`` are cut back and no retry of the
    sync is trusted (the journal object refuses further appends)."""
    jdir = tmp_path / "j"
    engine = Engine(Journal.open(jdir), STEP_TYPES)
    real = _journal._fsync_data

    def fdatasync(fd: int) -> None:
        if any(v.state == "committed" for v in engine.journal.state):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(_journal, "_fsync_data", fdatasync)
    with engine.journal:
        with pytest.raises(OSError) as err:
            await engine.run("install", "thing", _plan(root))
        assert err.value.errno == errno.EIO
        (view,) = engine.journal.state
        assert not view.committed
        assert view.where() == "stopped inside step 2/2 (place-file)"
        _same_on_disk(engine.journal)
        with pytest.raises(JournalError, match="earlier write"):
            await engine.journal.append(_journal.Reverted, view.id)
    monkeypatch.setattr(_journal, "_fsync_data", real)
    await _finish(jdir, view.id)  # the probe finds step 2 done
    assert tree(root) == NEW


@pytest.mark.anyio
async def test_an_operation_whose_start_was_refused_does_not_exist(
    tmp_path: Path, root: Path
) -> None:
    jdir = tmp_path / "j"
    engine = Engine(Journal.open(jdir), STEP_TYPES)
    with engine.journal:
        failpoints.configure("journal.written.op-started=error:ENOSPC")
        with pytest.raises(OSError):
            await engine.run("install", "thing", _plan(root))
        failpoints.configure(None)
        assert list(engine.journal.state) == []
        _same_on_disk(engine.journal)
        assert tree(root) == OLD
        # The log was cut back, so this journal object can be trusted: the next run works.
        view = await engine.run("install", "thing", _plan(root))
        assert view.state == "done"
    assert tree(root) == NEW


@pytest.mark.anyio
@pytest.mark.parametrize("point", ["journal.before.cleaned-up", "journal.written.cleaned-up"])
async def test_a_failed_clean_up_record_is_a_warning_after_the_commit(
    tmp_path: Path, root: Path, point: str
) -> None:
    jdir = tmp_path / "j"
    warnings: list[str] = []
    engine = Engine(Journal.open(jdir, warn=warnings.append), STEP_TYPES)
    with engine.journal:
        failpoints.configure(f"{point}=error:ENOSPC")
        view = await engine.run("install", "thing", _plan(root))  # returns: it committed
        failpoints.configure(None)
        assert view.state == "committed" and view.committed
        (warning,) = warnings
        assert f"op {view.id}" in warning and "No space left" in warning
        _same_on_disk(engine.journal)
        assert [a.actions for a in engine.journal.state.audit()] == [("cleanup",)]
        await engine.finish_cleanups()  # the next run records it
        assert view.state == "done"
    assert tree(root) == NEW
    assert load(jdir).audit() == []


@pytest.mark.anyio
async def test_a_shared_journal_cuts_back_only_its_own_failed_record(
    tmp_path: Path, root: Path
) -> None:
    """Two processes' worth of journal objects on one shared log: one's failed append is
    cut back under the lock, and both go on appending to one ordered log."""
    jdir = tmp_path / "j"
    first = Engine(Journal.open(jdir, shared=True), STEP_TYPES)
    second = Engine(Journal.open(jdir, shared=True), STEP_TYPES)
    with first.journal, second.journal:
        failpoints.configure("journal.written.op-started=error:ENOSPC")
        with pytest.raises(OSError):
            await first.run("install", "one", [PlaceFile(str(root / "a"), "new a")])
        failpoints.configure(None)
        _same_on_disk(first.journal)
        other = await second.run("install", "two", [PlaceFile(str(root / "b"), "new b")])
        mine = await first.run("install", "one", [PlaceFile(str(root / "a"), "new a")])
    assert {(v.subject, v.state) for v in load(jdir)} == {("one", "done"), ("two", "done")}
    assert mine.id != other.id
    assert tree(root) == NEW


@pytest.mark.anyio
async def test_a_failed_fdatasync_never_cuts_another_process_record(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared: another process appended among this one's unsynced records, so the log is
    not cut (that would lose its records); this object takes its own back and is broken."""
    jdir = tmp_path / "j"
    first = Engine(Journal.open(jdir, shared=True), STEP_TYPES)
    second = Engine(Journal.open(jdir, shared=True), STEP_TYPES)
    with first.journal, second.journal:
        op = first.journal.new_op_id()
        fields = {"kind": "install", "subject": "one", "meta": {}}
        plan = [first.types.encode(PlaceFile(str(root / "a"), "new a"))]
        await first.journal.append(OpStarted, op, plan=plan, **fields)  # unsynced
        other = await second.run("install", "two", [PlaceFile(str(root / "b"), "new b")])

        def fdatasync(fd: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(_journal, "_fsync_data", fdatasync)
        with pytest.raises(OSError):
            await first.journal.append(StepStarted, op, index=0, intent={})
        monkeypatch.undo()
        assert op not in first.journal.state.ops  # nothing of it is known durable
        with pytest.raises(JournalError, match="earlier write"):
            await first.journal.append(_journal.Reverted, op)
    views = {v.id: v.state for v in load(jdir)}
    assert views[other.id] == "done"  # the other process's operation is intact
