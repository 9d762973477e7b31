"""Step evolution: an operation planned by one release is resumed and reverted by the next.

Each "release" is a set of step types with the same kinds. Release 2 renames, adds or
removes a field of the ``write`` step, with ``class_version = 2`` and an upcast; without
the upcast the engine names the operation, the step and the way out, and writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pytest
from txhelpers import log_records, types_of

from txengine import (
    Engine,
    Journal,
    PlanUndecodable,
    Result,
    Step,
    StepContext,
    UnknownStepKind,
    atomic_write,
    load,
)

CRASH_AT: list[str] = []  # a path whose write "kills the process" right after it happened


class Crash(BaseException):
    """Stands for the process dying: it escapes the engine, which catches only Exception."""


def _write(ctx: StepContext, path: str, text: str) -> Result:
    atomic_write(ctx.fs, Path(path), text.encode())
    if path in CRASH_AT:
        raise Crash
    return {"path": path}


def _unwrite(ctx: StepContext, path: str) -> None:
    if os.path.lexists(path):
        ctx.fs.unlink(path)


class WriteV1(Step, frozen=True):
    kind: ClassVar[str] = "write"
    path: str
    text: str
    backup: bool = False

    async def apply(self, ctx: StepContext) -> Result:
        return _write(ctx, self.path, self.text)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        _unwrite(ctx, self.path)


class Renamed(Step, frozen=True):
    """Release 2: ``path`` is now ``target``."""

    kind: ClassVar[str] = "write"
    class_version: ClassVar[int] = 2
    target: str
    text: str
    backup: bool = False

    @staticmethod
    def upcast_v1_v2(args: Result) -> Result:
        args["target"] = args.pop("path")
        return args

    async def apply(self, ctx: StepContext) -> Result:
        return _write(ctx, self.target, self.text)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        _unwrite(ctx, self.target)


class Added(Step, frozen=True):
    """Release 2: a new required field ``mode``."""

    kind: ClassVar[str] = "write"
    class_version: ClassVar[int] = 2
    path: str
    text: str
    mode: int
    backup: bool = False

    @staticmethod
    def upcast_v1_v2(args: Result) -> Result:
        return {**args, "mode": 0o644}

    async def apply(self, ctx: StepContext) -> Result:
        assert self.mode == 0o644
        return _write(ctx, self.path, self.text)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        _unwrite(ctx, self.path)


class Removed(Step, frozen=True, forbid_unknown_fields=True):
    """Release 2: ``backup`` is gone (and unknown fields are refused)."""

    kind: ClassVar[str] = "write"
    class_version: ClassVar[int] = 2
    path: str
    text: str

    @staticmethod
    def upcast_v1_v2(args: Result) -> Result:
        args.pop("backup", None)
        return args

    async def apply(self, ctx: StepContext) -> Result:
        return _write(ctx, self.path, self.text)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        _unwrite(ctx, self.path)


class Extra(Step, frozen=True):
    """A kind that release 2 no longer has."""

    kind: ClassVar[str] = "extra"

    async def apply(self, ctx: StepContext) -> Result:
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


def _no_upcast(cls: type[Step]) -> type[Step]:
    """``cls`` as a release that changed the fields but forgot the version and upcast."""
    return type(cls.__name__, (cls,), {"class_version": 1}, frozen=True)


async def _interrupted(tmp_path: Path, plan_extra: bool = False) -> tuple[Path, str, Path, Path]:
    """Release 1 runs write a, write b and is killed right after b was written."""
    jdir, a, b = tmp_path / "j", tmp_path / "a", tmp_path / "b"
    plan: list[Step] = [WriteV1(path=str(a), text="A"), WriteV1(path=str(b), text="B")]
    if plan_extra:
        plan.append(Extra())
    CRASH_AT[:] = [str(b)]
    try:
        with Journal.open(jdir) as journal, pytest.raises(Crash):
            await Engine(journal, [WriteV1, Extra]).run("install", "thing", plan)
    finally:
        CRASH_AT.clear()
    (view,) = load(jdir).incomplete()
    return jdir, view.id, a, b


@pytest.mark.anyio
@pytest.mark.parametrize("release2", [Renamed, Added, Removed])
@pytest.mark.parametrize("revert", [False, True])
async def test_release2_resumes_and_reverts_what_release1_planned(
    tmp_path: Path, release2: type[Step], revert: bool
) -> None:
    jdir, op, a, b = await _interrupted(tmp_path)
    with Journal.open(jdir) as journal:
        view = await Engine(journal, [release2]).resume(op, revert=revert)
    if revert:
        assert view.state == "reverted" and not a.exists() and not b.exists()
    else:
        assert view.state == "done" and a.read_text() == "A" and b.read_text() == "B"
    assert load(jdir).ops[op].state == view.state


@pytest.mark.anyio
@pytest.mark.parametrize("release2", [Renamed, Added])
@pytest.mark.parametrize("revert", [False, True])
async def test_a_field_change_without_upcast_names_the_step_and_writes_nothing(
    tmp_path: Path, release2: type[Step], revert: bool
) -> None:
    jdir, op, a, b = await _interrupted(tmp_path)
    before = log_records(jdir)
    with Journal.open(jdir) as journal, pytest.raises(PlanUndecodable) as info:
        await Engine(journal, [_no_upcast(release2)]).resume(op, revert=revert)
    err = info.value
    assert (err.op, err.index, err.kind) == (op, 1, "write")
    assert f"operation {op}: step 2 (write)" in str(err) and "upcast_v" in str(err)
    assert log_records(jdir) == before  # the operation is as it was
    assert a.exists() and b.exists()


@pytest.mark.anyio
async def test_unknown_kind_blocks_only_the_direction_that_needs_it(tmp_path: Path) -> None:
    jdir, op, a, b = await _interrupted(tmp_path, plan_extra=True)
    with Journal.open(jdir) as journal, pytest.raises(UnknownStepKind) as info:
        await Engine(journal, [WriteV1]).resume(op)
    assert (info.value.index, info.value.kind) == (2, "extra")
    assert f"operation {op}: step 3 has kind 'extra'" in str(info.value)
    # The revert needs only the two write steps: it runs.
    with Journal.open(jdir) as journal:
        view = await Engine(journal, [WriteV1]).resume(op, revert=True)
    assert view.state == "reverted" and not a.exists() and not b.exists()
    assert types_of(jdir, op)[-1] == "reverted"


@pytest.mark.anyio
async def test_a_plan_from_a_newer_release_is_refused_with_the_way_out(tmp_path: Path) -> None:
    jdir, a = tmp_path / "j", tmp_path / "a"
    CRASH_AT[:] = [str(a)]
    try:
        with Journal.open(jdir) as journal, pytest.raises(Crash):
            await Engine(journal, [Renamed]).run("install", "t", [Renamed(target=str(a), text="A")])
    finally:
        CRASH_AT.clear()
    (record,) = [r for r in log_records(jdir) if r["type"] == "op-started"]
    assert record["plan"][0]["version"] == 2
    op = record["op"]
    with Journal.open(jdir) as journal, pytest.raises(PlanUndecodable, match="upgrade"):
        await Engine(journal, [WriteV1]).resume(op, revert=True)


@pytest.mark.anyio
async def test_version_one_is_not_written(tmp_path: Path) -> None:
    """Plans of unversioned steps are byte-for-byte what 0.1.0 wrote: old readers read them."""
    jdir = tmp_path / "j"
    with Journal.open(jdir) as journal:
        await Engine(journal, [WriteV1]).run(
            "install", "t", [WriteV1(path=str(tmp_path / "a"), text="A")]
        )
    (record,) = [r for r in log_records(jdir) if r["type"] == "op-started"]
    assert record["plan"] == [
        {"type": "write", "args": {"path": str(tmp_path / "a"), "text": "A", "backup": False}}
    ]


def test_a_version_without_its_upcast_cannot_be_registered(tmp_path: Path) -> None:
    class Skipped(Renamed, frozen=True):
        class_version: ClassVar[int] = 3  # upcast_v2_v3 is missing

    with Journal.open(tmp_path / "j") as journal, pytest.raises(ValueError, match="upcast_v2_v3"):
        Engine(journal, [Skipped])
