"""The engine end to end on real files: run, revert, failed revert, resume, results, cancel, SIGINT."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from txhelpers import STEP_TYPES, Boom, Sleepy, Token, WriteToken, make_tree, tree, types_of

from txengine import (
    Engine,
    Journal,
    OperationFailed,
    OperationIncomplete,
    OperationView,
    PlaceFile,
    RemovePath,
    load,
)
from txengine import _failpoints as failpoints

OLD = {"b": b"old b", "d": "dir", "d/x": b"x", "d/l": ("link", "x")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_tree(tmp_path / "tree", OLD)
    return tmp_path / "tree"


def _plan(root: Path) -> list[PlaceFile | RemovePath]:
    return [
        PlaceFile(str(root / "a"), "new a"),
        PlaceFile(str(root / "b"), "new b", mode=0o600),
        RemovePath(str(root / "d")),
    ]


NEW = {"a": b"new a", "b": b"new b"}


def _engine(jdir: Path, events: list[tuple[str, int]] | None = None) -> Engine:
    def observe(event: str, view: OperationView, index: int) -> None:
        if events is not None:
            events.append((event, index))

    return Engine(Journal.open(jdir), STEP_TYPES, observer=observe)


@pytest.mark.anyio
async def test_run_success(tmp_path: Path, root: Path) -> None:
    jdir = tmp_path / "j"
    events: list[tuple[str, int]] = []
    engine = _engine(jdir, events)
    with engine.journal:
        view = await engine.run("install", "thing", _plan(root), meta={"who": "test"})
    assert view.state == "done" and view.committed
    assert view.results == [{"replaced": False}, {"replaced": True}, {"removed": True}]
    assert tree(root) == NEW
    assert (root / "b").stat().st_mode & 0o777 == 0o600
    assert not (jdir / "stash" / view.id).exists()
    loaded = load(jdir).ops[view.id]
    assert loaded.state == "done" and loaded.meta == {"who": "test"}
    assert types_of(jdir, view.id) == [
        "op-started",
        *["step-started", "step-done"] * 3,
        "committed",
        "cleaned-up",
    ]
    assert events[-1] == ("committed", -1)


@pytest.mark.anyio
async def test_failing_step_reverts_earlier_steps_in_reverse(tmp_path: Path, root: Path) -> None:
    jdir = tmp_path / "j"
    events: list[tuple[str, int]] = []
    engine = _engine(jdir, events)
    with engine.journal, pytest.raises(OperationFailed) as info:
        await engine.run("install", "thing", [*_plan(root), Boom()])
    assert "the disk is on fire" in str(info.value) and "undone" in str(info.value)
    view = info.value.view
    assert view.state == "reverted" and view.error == "the disk is on fire"
    assert tree(root) == OLD
    assert types_of(jdir, view.id) == [
        "op-started",
        *["step-started", "step-done"] * 3,
        "step-started",
        "step-failed",
        "revert-started",
        *[t for i in (3, 2, 1, 0) for t in ("step-revert-started", "step-reverted")],
        "reverted",
    ]
    assert [i for e, i in events if e == "reverted"] == [3, 2, 1, 0]
    assert load(jdir).ops[view.id].state == "reverted"
    assert not (jdir / "stash" / view.id).exists()


@pytest.mark.anyio
async def test_failing_revert_leaves_op_incomplete_until_resumed(
    tmp_path: Path, root: Path
) -> None:
    jdir = tmp_path / "j"
    failpoints.configure(f"fs.unlink@{root}/a=error:EACCES")
    engine = _engine(jdir)
    with engine.journal, pytest.raises(OperationIncomplete) as info:
        await engine.run("install", "thing", [*_plan(root), Boom()])
    op = info.value.view.id
    assert "operation incomplete" in str(info.value)
    failpoints.configure(None)  # the cause is fixed

    state = load(jdir)
    assert [v.id for v in state.incomplete()] == [op]
    (audit,) = state.audit()
    assert audit.op == op and audit.state == "revert_failed"
    assert audit.actions == ("revert", "resume")
    assert audit.where == "revert failed at step 1/4 (place-file)"
    assert state.ops[op].errno == 13
    assert (root / "a").read_bytes() == b"new a"  # a mix, honestly reported

    engine = _engine(jdir)
    with engine.journal:
        view = await engine.resume(op, revert=True)
    assert view.state == "reverted"
    assert tree(root) == OLD
    assert load(jdir).incomplete() == []
    assert types_of(jdir, op)[-5:] == [
        "revert-failed",
        "resume-started",
        "step-revert-started",
        "step-reverted",
        "reverted",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("point", "applied"),
    [
        ("journal.before.step-done#2", True),  # the effect happened, its record did not
        ("journal.after.step-started#2", False),  # intent durable, effect never started
    ],
)
async def test_resume_forward_after_stopping_inside_a_step(
    tmp_path: Path, root: Path, point: str, applied: bool
) -> None:
    jdir = tmp_path / "j"
    failpoints.configure(f"{point}=error:EIO")
    engine = _engine(jdir)
    with engine.journal, pytest.raises(OSError):  # stands in for a crash
        await engine.run("install", "thing", _plan(root))
    failpoints.configure(None)
    (view,) = load(jdir).incomplete()
    assert view.where() == "stopped inside step 2/3 (place-file)"
    assert (root / "b").read_bytes() == (b"new b" if applied else b"old b")

    engine = _engine(jdir)
    with engine.journal:
        done = await engine.resume(view.id)
    assert done.state == "done"
    assert done.results[1] == {"replaced": True}
    assert tree(root) == NEW
    assert types_of(jdir, view.id)[4:7] == ["resume-started", "step-started", "step-done"]


@pytest.mark.anyio
async def test_recorded_result_is_reused_on_resume(tmp_path: Path) -> None:
    jdir, out = tmp_path / "j", tmp_path / "token"
    failpoints.configure("journal.before.step-started#2=error:EIO")
    engine = _engine(jdir)
    with engine.journal, pytest.raises(OSError):
        await engine.run("install", "t", [Token(), WriteToken(str(out))])
    failpoints.configure(None)
    (view,) = load(jdir).incomplete()
    recorded = view.results[0]
    assert recorded is not None
    engine = _engine(jdir)
    with engine.journal:
        done = await engine.resume(view.id)
    assert done.results[0] == recorded
    assert out.read_text() == recorded["token"]


@pytest.mark.anyio
async def test_cancellation_leaves_a_resumable_op(tmp_path: Path, root: Path) -> None:
    jdir, gate = tmp_path / "j", tmp_path / "gate"
    engine = _engine(jdir)
    with engine.journal:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_soon() -> None:
                    while not engine.journal.state.ops or not any(
                        v.steps[1] == "started" for v in engine.journal.state
                    ):
                        await anyio.sleep(0.01)
                    await anyio.sleep(0.05)
                    scope.cancel()

                tg.start_soon(cancel_soon)
                await engine.run("install", "t", [_plan(root)[0], Sleepy(str(gate))])
        assert scope.cancelled_caught
    state = load(jdir)  # the journal verifies
    (view,) = state.incomplete()
    assert view.state == "step_open" and view.steps == ["done", "started"]
    assert (root / "a").read_bytes() == b"new a"

    gate.touch()
    engine = _engine(jdir)
    with engine.journal:
        done = await engine.resume(view.id)
    assert done.state == "done"
    assert load(jdir).ops[view.id].state == "done"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigint_becomes_interrupted_with_journal_intact(tmp_path: Path, backend: str) -> None:
    jdir, gate = tmp_path / "j", tmp_path / "gate"
    (tmp_path / "tree").mkdir()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import anyio
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from txhelpers import STEP_TYPES, Sleepy
        from txengine import Engine, Interrupted, Journal, PlaceFile, interruptible

        async def main():
            with Journal.open({str(jdir)!r}) as journal:
                engine = Engine(journal, STEP_TYPES)

                async def work():
                    async with anyio.create_task_group() as tg:
                        async def kill():
                            while not any(v.steps[-1] == "started" for v in journal.state):
                                await anyio.sleep(0.01)
                            os.kill(os.getpid(), signal.SIGINT)
                        tg.start_soon(kill)
                        return await engine.run(
                            "install", "t",
                            [PlaceFile({str(tmp_path / "tree" / "a")!r}, "A"),
                             Sleepy({str(gate)!r})],
                        )
                try:
                    await interruptible(work)
                except Interrupted as e:
                    print(e)
                    sys.exit(130)

        anyio.run(main, backend={backend!r})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.strip() == "interrupted by SIGINT"
    state = load(jdir)
    (view,) = state.incomplete()
    assert view.steps == ["done", "started"]
    assert view.audit().actions == ("resume", "revert")


@pytest.mark.anyio
async def test_revert_after_an_interrupted_forward_resume_undoes_the_touched_step(
    tmp_path: Path, root: Path
) -> None:
    """Crash inside step 2, resume forward, crash again at once, then revert: old tree."""
    jdir = tmp_path / "j"
    failpoints.configure("journal.before.step-done#2=error:EIO")
    engine = _engine(jdir)
    with engine.journal, pytest.raises(OSError):
        await engine.run("install", "thing", _plan(root))
    assert (root / "b").read_bytes() == b"new b"
    failpoints.configure("journal.after.resume-started=error:EIO")
    (view,) = load(jdir).incomplete()
    engine = _engine(jdir)
    with engine.journal, pytest.raises(OSError):
        await engine.resume(view.id)
    failpoints.configure(None)
    engine = _engine(jdir)
    with engine.journal:
        done = await engine.resume(view.id, revert=True)
    assert done.state == "reverted"
    assert tree(root) == OLD


@pytest.mark.anyio
async def test_stash_removal_error_after_commit_or_revert_does_not_mask_the_outcome(
    tmp_path: Path, root: Path
) -> None:
    jdir = tmp_path / "j"
    # Only the removal of an operation's whole stash directory fails.
    failpoints.configure(f"fs.rmtree@{jdir}/stash/{'[0-9a-f]' * 12}=error:EIO")
    engine = _engine(jdir)
    with engine.journal:
        view = await engine.run("install", "thing", _plan(root))
        assert view.state == "committed"  # clean-up pending, but the run succeeded
        with pytest.raises(OperationFailed):
            await engine.run("install", "again", [PlaceFile(str(root / "c"), "c"), Boom()])
    failpoints.configure(None)
    assert tree(root) == NEW
    engine = _engine(jdir)
    with engine.journal:
        assert [v.id for v in await engine.finish_cleanups()] == [view.id]
    assert load(jdir).ops[view.id].state == "done"
