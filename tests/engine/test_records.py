"""Results, intents and plans can never break a journal; ids and kinds read back are data.

Every case goes through the public API on a real journal directory, then reopens the
journal: whatever a step returned, the journal stays readable.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from txhelpers import log_records, raw_line, tree, types_of

from txengine import (
    Engine,
    Journal,
    JournalCorrupt,
    JournalError,
    JournalUnreadable,
    JournalUnsafe,
    JournalUnwritable,
    OperationFailed,
    PlaceFile,
    PlanInvalid,
    Result,
    Step,
    StepContext,
    TxError,
    UnknownStepKind,
    load,
)
from txengine._events import Header, OpStarted, PlannedStep, StepDone, StepStarted
from txengine._journal import frame


class Crash(BaseException):
    """Stands for the process dying: it escapes the engine, which catches only Exception."""


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")


class Returns(Step, frozen=True):
    """Returns whatever ``RETURNS[self.key]`` holds (a list, bytes, an object …)."""

    kind: ClassVar[str] = "returns"
    key: str

    async def apply(self, ctx: StepContext) -> Any:
        return RETURNS[self.key]

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class BadIntent(Step, frozen=True):
    kind: ClassVar[str] = "bad-intent"

    def intent(self, ctx: StepContext) -> Any:
        return ["not", "an", "object"]

    async def apply(self, ctx: StepContext) -> Result:
        raise AssertionError("never applied: its intent cannot be recorded")

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        raise AssertionError("never reverted: it never started")


class Seen(Step, frozen=True):
    """Records what it saw of the first step's result; crashes while ``CRASH`` is set."""

    kind: ClassVar[str] = "seen"

    async def apply(self, ctx: StepContext) -> Result:
        SEEN.append(ctx.results[0])
        if CRASH:
            raise Crash
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class Pins(msgspec.Struct):
    pins: dict[str, str]
    at: float


class Resolve(Step, frozen=True):
    kind: ClassVar[str] = "resolve"

    async def apply(self, ctx: StepContext) -> Pins:
        return Pins(pins={"x": "1.0"}, at=1.5)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class UsePins(Step, frozen=True):
    kind: ClassVar[str] = "use-pins"

    async def apply(self, ctx: StepContext) -> Result:
        pins = ctx.result_of("resolve", Pins)
        same = ctx.result_of(0, Pins)
        assert pins is not None and pins == same
        return {"x": pins.pins["x"]}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


RETURNS: dict[str, Any] = {
    "list": [1, 2],
    "number": 3,
    "none-list": None,
    "object": {"o": object()},
    "odd": {"b": b"\x00\x01", "t": (1, (2, 3)), 7: "int key", "s": {"nested": (4,)}},
}
SEEN: list[Any] = []
CRASH = False
TYPES: list[type[Step]] = [PlaceFile, Returns, BadIntent, Seen, Resolve, UsePins]


def _engine(jdir: Path) -> Engine:
    return Engine(Journal.open(jdir), TYPES)


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["list", "number", "object"])
async def test_unrecordable_result_fails_the_step_and_reverts(tmp_path: Path, key: str) -> None:
    jdir, target = tmp_path / "j", tmp_path / "a"
    engine = _engine(jdir)
    plan = [PlaceFile(str(target), "new"), Returns(key=key)]
    with engine.journal, pytest.raises(OperationFailed) as info:
        await engine.run("install", "thing", plan)
    assert "cannot be recorded" in str(info.value) or "JSON object" in str(info.value)
    assert not target.exists()  # the first step was undone
    view = load(jdir).ops[info.value.view.id]  # the journal still reads
    assert view.state == "reverted"
    assert "step-failed" in types_of(jdir, view.id)


@pytest.mark.anyio
async def test_unrecordable_intent_reverts_earlier_steps(tmp_path: Path) -> None:
    jdir, target = tmp_path / "j", tmp_path / "a"
    engine = _engine(jdir)
    with engine.journal, pytest.raises(OperationFailed) as info:
        await engine.run("install", "thing", [PlaceFile(str(target), "new"), BadIntent()])
    assert "JSON object" in str(info.value)
    assert not target.exists()
    op = info.value.view.id
    assert load(jdir).ops[op].state == "reverted"
    assert types_of(jdir, op)[3:5] == ["revert-started", "step-revert-started"]


@pytest.mark.anyio
async def test_odd_values_read_the_same_in_the_run_and_on_resume(tmp_path: Path) -> None:
    global CRASH
    jdir = tmp_path / "j"
    SEEN.clear()
    CRASH = True
    engine = _engine(jdir)
    with engine.journal, pytest.raises(Crash):
        await engine.run("install", "thing", [Returns(key="odd"), Seen()])
    CRASH = False
    op = load(jdir).incomplete()[0].id
    engine = _engine(jdir)
    with engine.journal:
        view = await engine.resume(op)
    expected = {"b": "AAE=", "t": [1, [2, 3]], "7": "int key", "s": {"nested": [4]}}
    assert [expected, expected] == SEEN  # first run and resume saw the same value
    assert view.results[0] == expected == load(jdir).ops[op].results[0]


@pytest.mark.anyio
async def test_struct_results_are_recorded_and_read_typed(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    engine = _engine(jdir)
    with engine.journal:
        view = await engine.run("install", "thing", [Resolve(), UsePins()])
    assert view.results == [{"pins": {"x": "1.0"}, "at": 1.5}, {"x": "1.0"}]
    assert load(jdir).ops[view.id].results == view.results


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "subject", "plan", "meta", "why"),
    [
        ("install", "x", [PlaceFile(123, "data")], None, "bad arguments"),  # type: ignore[arg-type]
        ("install", "x", [PlaceFile("p", "d", mode="rw")], None, "bad arguments"),  # type: ignore[arg-type]
        ("install", "x", [], {"o": object()}, "meta"),
        ("../evil", "x", [], None, "kind"),
        ("install", "two\nlines", [], None, "subject"),
    ],
)
async def test_bad_plan_is_refused_before_anything_is_written(
    tmp_path: Path, kind: str, subject: str, plan: list[Step], meta: Any, why: str
) -> None:
    jdir = tmp_path / "j"
    engine = _engine(jdir)
    with engine.journal, pytest.raises(PlanInvalid, match=why):
        await engine.run(kind, subject, plan, meta)
    assert [r["type"] for r in log_records(jdir)] == ["header"]
    assert load(jdir).ops == {}


def _journal_with(jdir: Path, op: str, step_kind: str = "place-file") -> int:
    """A log whose op-started carries ``op`` and ``step_kind``; returns that line's offset."""
    jdir.mkdir(mode=0o700)
    plan = [{"type": step_kind, "args": {"path": "x", "data": "y"}}]
    rec = {"type": "op-started", "v": 1, "seq": 1, "op": op, "ts": 0.0}
    line = raw_line({**rec, "kind": "install", "subject": "s", "plan": plan, "meta": {}})
    header = frame(Header(kind="log", created=0.0))
    (jdir / "journal.log").write_bytes(header + line)
    return len(header)


@pytest.mark.parametrize("op", ["../../..", "ABCDEF012345", "0123456789ab/", "short"])
def test_an_id_that_is_not_a_token_is_corrupt(tmp_path: Path, op: str) -> None:
    jdir = tmp_path / "j"
    offset = _journal_with(jdir, op)
    with pytest.raises(JournalCorrupt) as info:
        load(jdir)
    assert info.value.offset == offset
    with pytest.raises(JournalCorrupt):
        Journal.open(jdir)


@pytest.mark.parametrize("op", ["../../../../", "0123456789ab/.."])
def test_a_record_of_an_operation_never_started_is_corrupt(tmp_path: Path, op: str) -> None:
    jdir = tmp_path / "j"
    offset = _journal_with(jdir, "0123456789ab")
    log = jdir / "journal.log"
    good = log.read_bytes()
    log.write_bytes(good + raw_line({"type": "committed", "v": 1, "seq": 2, "op": op, "ts": 0.0}))
    with pytest.raises(JournalCorrupt, match="never started") as info:
        load(jdir)
    assert info.value.offset == len(good) > offset


@pytest.mark.anyio
async def test_a_step_kind_that_is_a_path_is_only_an_unknown_kind(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    _journal_with(jdir, "0123456789ab", step_kind="../../etc")
    with (
        Journal.open(jdir) as journal,
        pytest.raises(UnknownStepKind, match=re.escape("'../../etc'")),
    ):
        await Engine(journal, TYPES).resume("0123456789ab")
    assert os.listdir(jdir / "stash") == []


def test_a_step_kind_longer_than_an_identifier_is_corrupt(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    offset = _journal_with(jdir, "0123456789ab", step_kind="x" * 65)
    with pytest.raises(JournalCorrupt) as info:
        load(jdir)
    assert info.value.offset == offset


def test_journal_and_stash_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with Journal.open(tmp_path / "j") as journal:
            Engine(journal, TYPES)
    finally:
        os.umask(old)
    assert (tmp_path / "j").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "j" / "stash").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    jdir = tmp_path / "j"
    jdir.mkdir()
    os.chmod(jdir, mode)
    with pytest.raises(JournalUnsafe, match=re.escape(f"chmod 700 {jdir}")):
        Journal.open(jdir)
    assert tree(jdir) == {}  # nothing was written there
    os.chmod(jdir, 0o700)
    with Journal.open(jdir) as journal:
        (jdir / "stash").mkdir(mode=0o700)
        os.chmod(jdir / "stash", mode)
        with pytest.raises(JournalUnsafe, match="stash"):
            Engine(journal, TYPES)


@ROOT_ONLY
def test_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    jdir.mkdir(mode=0o700)
    os.chown(jdir, 4242, 4242)
    with pytest.raises(JournalUnsafe, match="owned by uid 4242"):
        Journal.open(jdir)
    assert tree(jdir) == {}


def test_a_directory_in_place_of_the_log_is_unreadable(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    (jdir / "journal.log").mkdir(parents=True)
    os.chmod(jdir, 0o700)
    with pytest.raises(JournalUnreadable, match=r"journal\.log"):
        load(jdir)
    with pytest.raises(JournalUnreadable):
        Journal.open(jdir)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A journal directory on a real tmpfs remounted read-only (root only); unmounted after."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) for a read-only tmpfs")
    mnt = tmp_path / "ro"
    mnt.mkdir(mode=0o700)
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=700", "tmpfs", str(mnt)]
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("sub", ["", "new"])
def test_a_read_only_journal_directory_is_a_journal_error(read_only_dir: Path, sub: str) -> None:
    jdir = read_only_dir / sub if sub else read_only_dir
    with pytest.raises(JournalUnwritable, match="Read-only file system") as info:
        Journal.open(jdir)
    assert info.value.path == jdir and isinstance(info.value, TxError)


@pytest.mark.anyio
@pytest.mark.parametrize("result", [[1, 2], {"o": object()}, "text"])
async def test_a_raw_append_that_would_not_read_back_is_refused(
    tmp_path: Path, result: Any
) -> None:
    jdir = tmp_path / "j"
    with Journal.open(jdir) as journal:
        op = journal.new_op_id()
        plan = [PlannedStep(type="returns", args={"key": "list"})]
        await journal.append(OpStarted, op, kind="k", subject="s", plan=plan)
        await journal.append(StepStarted, op, index=0)
        with pytest.raises(JournalError, match="would not read back"):
            await journal.append(StepDone, op, index=0, result=result)
        with pytest.raises(JournalError, match="would not read back"):
            await journal.append(OpStarted, "../../..", kind="k", subject="s", plan=[])
        await journal.append(StepDone, op, index=0, result={"ok": True})  # still usable
    assert load(jdir).ops[op].results == [{"ok": True}]
