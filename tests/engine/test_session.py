"""The front door: open_journal (asyncio and trio) and SyncJournal, on real journals,
with a real second process holding the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import anyio
import pytest

from txengine import (
    Journal,
    LockBusy,
    OperationView,
    PlaceFile,
    Result,
    Step,
    StepContext,
    SyncJournal,
    UnknownStepKind,
    iter_history,
    load,
    open_journal,
)


class Crash(BaseException):
    """Stands for the process dying: it escapes the engine, which catches only Exception."""


class Dies(Step, frozen=True):
    """Kills the run while ``ARMED``; succeeds once disarmed."""

    kind: ClassVar[str] = "dies"

    async def apply(self, ctx: StepContext) -> Result:
        if ARMED:
            raise Crash
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


ARMED = True
TYPES: list[type[Step]] = [PlaceFile, Dies]


async def _killed_run(jdir: Path, target: Path) -> str:
    """An install killed inside its second step: its first step's file is in place."""
    global ARMED
    ARMED = True
    try:
        with pytest.raises(Crash):
            async with open_journal(jdir, TYPES) as session:
                await session.engine.run("install", "t", [PlaceFile(str(target), "new"), Dies()])
    finally:
        ARMED = False
    (view,) = load(jdir).incomplete()
    return view.id


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A real second process holding the journal's lock until its stdin closes."""
    code = (
        "import sys; from txengine import Journal\n"
        f"j = Journal.open({str(tmp_path / 'j')!r})\n"
        "print('locked', flush=True); sys.stdin.read(); j.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    yield proc
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=10)


@pytest.mark.anyio
@pytest.mark.parametrize(("recover", "state"), [("resume", "done"), ("revert", "reverted")])
async def test_recovery_policy_finishes_what_a_killed_run_left(
    tmp_path: Path, recover: str, state: str
) -> None:
    jdir, target = tmp_path / "j", tmp_path / "a"
    op = await _killed_run(jdir, target)
    async with open_journal(jdir, TYPES, recover=recover) as session:  # type: ignore[arg-type]
        (done,) = session.recovered
        assert (done.op, done.state, done.error) == (op, state, None)
        assert session.pending == []
    assert target.exists() == (state == "done")
    assert load(jdir).ops[op].state == state


@pytest.mark.anyio
async def test_report_leaves_incomplete_work_alone(tmp_path: Path) -> None:
    jdir, target = tmp_path / "j", tmp_path / "a"
    op = await _killed_run(jdir, target)
    async with open_journal(jdir, TYPES, recover="report") as session:
        assert session.recovered == []
        assert [a.op for a in session.pending] == [op]
    assert target.exists() and load(jdir).ops[op].incomplete


@pytest.mark.anyio
async def test_waiting_for_the_lock_does_not_block_the_loop(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    ticks: list[float] = []
    waited: list[int | None] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await anyio.sleep(0.02)

    async def release_soon() -> None:
        await anyio.sleep(0.5)
        assert holder.stdin is not None
        holder.stdin.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        tg.start_soon(release_soon)
        async with open_journal(tmp_path / "j", TYPES, timeout=20, on_wait=waited.append) as s:
            view = await s.engine.run("install", "t", [PlaceFile(str(tmp_path / "a"), "x")])
        tg.cancel_scope.cancel()
    assert waited == [holder.pid]
    assert len(ticks) >= 10  # the loop kept running while the lock was held elsewhere
    assert view.state == "done"


@pytest.mark.anyio
async def test_a_cancelled_wait_never_keeps_the_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with anyio.move_on_after(0.3) as scope:
        async with open_journal(tmp_path / "j", TYPES, timeout=20):
            raise AssertionError("the lock is held by another process")
    assert scope.cancelled_caught
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)
    # The abandoned worker took the lock once it was free, saw it was abandoned, let go.
    with Journal.open(tmp_path / "j", timeout=10):
        pass


@pytest.mark.anyio
async def test_lock_busy_after_the_timeout(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockBusy, match=str(holder.pid)):
        async with open_journal(tmp_path / "j", TYPES, timeout=0.2):
            pass


@pytest.mark.anyio
@pytest.mark.parametrize(("every", "compacted"), [(3, True), (4, False), (0, False)])
async def test_compaction_policy_on_exit(tmp_path: Path, every: int, compacted: bool) -> None:
    jdir = tmp_path / "j"
    async with open_journal(jdir, TYPES, compact_every=every) as session:
        for i in range(3):
            await session.engine.run("install", f"t{i}", [PlaceFile(str(tmp_path / f"{i}"), "x")])
    assert (jdir / "journal.snapshot").exists() == compacted
    with Journal.open(jdir) as journal:
        assert journal.closed_in_log() == (0 if compacted else 3)
        assert len(journal.state.ops) == 3


@pytest.mark.anyio
async def test_the_retain_hook_decides_what_compaction_keeps_as_current(tmp_path: Path) -> None:
    """Two operations on one subject: the default keeps the latest, a hook may keep both;
    either way history holds every closed operation."""
    jdir = tmp_path / "j"

    def both(views: Sequence[OperationView]) -> list[OperationView]:
        return list(views)

    async with open_journal(jdir, TYPES, compact_every=2, retain=both) as session:
        for i in range(2):
            await session.engine.run("install", "t", [PlaceFile(str(tmp_path / f"{i}"), "x")])
    assert len(load(jdir).ops) == 2
    assert [v.subject for v in iter_history(jdir)] == ["t", "t"]
    async with open_journal(jdir, TYPES, compact_every=1) as session:  # default: the latest
        await session.engine.run("install", "t", [PlaceFile(str(tmp_path / "2"), "x")])
    assert len(load(jdir).ops) == 1
    assert len(list(iter_history(jdir))) == 3


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_journal_from_a_worker_thread(tmp_path: Path, backend: str) -> None:
    jdir, target = tmp_path / "j", tmp_path / "a"
    op = anyio.run(_killed_run, jdir, target)
    out: list[object] = []

    def work() -> None:
        try:
            with SyncJournal(jdir, TYPES, backend=backend) as tx:
                out.append(tx.session.recovered[0].state)
                out.append(tx.run("install", "u", [PlaceFile(str(tmp_path / "b"), "y")]).state)
        except BaseException as e:  # reported to the test's thread
            out.append(e)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert out == ["done", "done"]
    assert load(jdir).ops[op].state == "done" and (tmp_path / "b").read_text() == "y"


@pytest.mark.anyio
async def test_sync_journal_refuses_a_thread_running_an_event_loop(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="event loop is running in this thread"),
        SyncJournal(tmp_path / "j", TYPES),
    ):
        raise AssertionError("refused on entry")
    assert not os.path.exists(tmp_path / "j")  # refused before touching anything


@pytest.mark.anyio
async def test_recovery_that_cannot_run_a_step_is_reported_not_raised(tmp_path: Path) -> None:
    jdir, target = tmp_path / "j", tmp_path / "a"
    op = await _killed_run(jdir, target)
    async with open_journal(jdir, [PlaceFile]) as session:  # this release dropped "dies"
        (done,) = session.recovered
        assert isinstance(done.error, UnknownStepKind) and done.error.op == op
        assert done.state == "step_open"  # untouched: nothing was written for it
        assert [a.op for a in session.pending] == [op]
    # The started "dies" step must be undone too, so a revert is blocked just the same ...
    async with open_journal(jdir, [PlaceFile], recover="revert") as session:
        assert isinstance(session.recovered[0].error, UnknownStepKind)
    # ... until a release registers the type again.
    async with open_journal(jdir, TYPES, recover="revert") as session:
        assert session.recovered[0].state == "reverted" and session.pending == []
    assert not target.exists()
