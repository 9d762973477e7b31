"""Documented rules, enforced: the error hierarchy, intents that must not change, revert
that must exist, cancellation between steps, and the operation the engine is running."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import anyio
import pytest
from txhelpers import types_of

from txengine import (
    Engine,
    IntentChanged,
    Journal,
    OperationView,
    Result,
    Step,
    StepContext,
    StepError,
    TxError,
    UnknownOperation,
    load,
)

INTENT = {"n": 1}


class Crash(BaseException):
    """Stands for the process dying: it escapes the engine, which catches only Exception."""


class Fickle(Step, frozen=True):
    """Its intent reads a global (a bug): it changes between the run and the resume."""

    kind: ClassVar[str] = "fickle"
    crash: bool = True

    def intent(self, ctx: StepContext) -> Result:
        return dict(INTENT)

    async def apply(self, ctx: StepContext) -> Result:
        if self.crash:
            raise Crash
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        REVERTED_WITH.append(dict(ctx.intent))


class Quick(Step, frozen=True):
    """Never awaits: only the engine's own checkpoint lets a cancellation in."""

    kind: ClassVar[str] = "quick"

    async def apply(self, ctx: StepContext) -> Result:
        RUNNING.append(ENGINES[0].running)
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


REVERTED_WITH: list[Result] = []
RUNNING: list[OperationView | None] = []
ENGINES: list[Engine] = []


def test_step_error_is_a_tx_error() -> None:
    assert issubclass(StepError, TxError) and issubclass(UnknownOperation, TxError)


@pytest.mark.anyio
async def test_resume_of_an_unknown_id(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j") as journal, pytest.raises(UnknownOperation) as info:
        await Engine(journal, [Quick]).resume("feedfacecafe")
    assert info.value.op == "feedfacecafe" and "feedfacecafe" in str(info.value)


@pytest.mark.anyio
async def test_an_intent_that_changes_on_resume_is_refused_and_the_recorded_one_reverts(
    tmp_path: Path,
) -> None:
    jdir = tmp_path / "j"
    INTENT["n"] = 1
    with Journal.open(jdir) as journal, pytest.raises(Crash):
        await Engine(journal, [Fickle]).run("install", "t", [Fickle()])
    (view,) = load(jdir).incomplete()
    INTENT["n"] = 2  # "recomputed on resume" comes out different
    try:
        with Journal.open(jdir) as journal, pytest.raises(IntentChanged) as info:
            await Engine(journal, [Fickle]).resume(view.id)
        assert (info.value.op, info.value.index, info.value.kind) == (view.id, 0, "fickle")
        assert "revert it" in str(info.value)
        assert "step-started" not in types_of(jdir, view.id)[2:]  # the step was not run again
        REVERTED_WITH.clear()
        with Journal.open(jdir) as journal:
            done = await Engine(journal, [Fickle]).resume(view.id, revert=True)
    finally:
        INTENT["n"] = 1
    assert done.state == "reverted"
    assert REVERTED_WITH == [{"n": 1}]  # the recorded intent, not the recomputed one


def test_a_step_type_without_revert_cannot_be_registered(tmp_path: Path) -> None:
    class NoUndo(Step, frozen=True):
        kind: ClassVar[str] = "no-undo"

        async def apply(self, ctx: StepContext) -> Result:
            return {}

    with Journal.open(tmp_path / "j") as journal, pytest.raises(ValueError, match="revert"):
        Engine(journal, [NoUndo])


@pytest.mark.parametrize("kind", ["", "../x", "a b", "x" * 65])
def test_a_kind_must_be_a_short_identifier(tmp_path: Path, kind: str) -> None:
    cls = type("Odd", (Quick,), {"kind": kind}, frozen=True)
    with Journal.open(tmp_path / "j") as journal, pytest.raises(ValueError, match="kind"):
        Engine(journal, [cls])


@pytest.mark.anyio
async def test_cancellation_lands_between_steps_that_never_await(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    with Journal.open(jdir) as journal:
        engine = Engine(journal, [Quick])
        ENGINES[:] = [engine]
        with anyio.CancelScope() as scope:
            scope.cancel()
            await engine.run("install", "t", [Quick(), Quick()])
        assert engine.running is None
    (view,) = load(jdir).incomplete()
    assert types_of(jdir, view.id) == ["op-started"]  # stopped before the first step


@pytest.mark.anyio
async def test_running_names_the_operation_while_it_runs(tmp_path: Path) -> None:
    RUNNING.clear()
    with Journal.open(tmp_path / "j") as journal:
        engine = Engine(journal, [Quick])
        ENGINES[:] = [engine]
        view = await engine.run("install", "t", [Quick(), Quick()])
        assert engine.running is None
    assert len(RUNNING) == 2 and all(seen is view for seen in RUNNING)
