"""``interruptible``: real signals sent to this process while an engine run is at a chosen
point, on both anyio backends (``anyio_backend`` is parametrised in conftest)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import pytest

from txengine import (
    Engine,
    Interrupted,
    Journal,
    OperationView,
    PlaceFile,
    Result,
    Step,
    StepContext,
    interruptible,
    load,
)

pytestmark = pytest.mark.anyio


class SignalThenBlock(Step, frozen=True):
    """Sends ``count`` real SIGINTs to this process, then blocks the loop: not cancellable."""

    kind = "signal-then-block"
    count: int = 1

    async def apply(self, ctx: StepContext) -> Result:
        for _ in range(self.count):
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # a blocking step: the signal is handled once it returns
        return {"blocked": True}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class SignalThenWait(Step, frozen=True):
    """Sends SIGINT to this process, then awaits: the cancellation stops it here."""

    kind = "signal-then-wait"

    async def apply(self, ctx: StepContext) -> Result:
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep(30)
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


TYPES = [PlaceFile, SignalThenBlock, SignalThenWait]


async def test_a_run_that_commits_despite_the_signal_returns_its_result(tmp_path: Path) -> None:
    received: list[int] = []
    target = tmp_path / "tree" / "a"
    target.parent.mkdir()
    with Journal.open(tmp_path / "j") as journal:
        engine = Engine(journal, TYPES)
        plan = [SignalThenBlock(count=2), PlaceFile(str(target), "A")]

        async def work() -> OperationView:
            return await engine.run("install", "thing", plan)

        view = await interruptible(work, journal=journal, on_signal=received.append)
    assert view.state in ("committed", "done")
    # Seen (two kills may coalesce into one delivery), and never a KeyboardInterrupt.
    assert received and set(received) == {signal.SIGINT}
    assert target.read_text() == "A"
    assert load(tmp_path / "j").ops[view.id].state == "done"


async def test_the_exception_names_the_operation_and_says_it_is_incomplete(
    tmp_path: Path,
) -> None:
    target = tmp_path / "tree" / "a"
    target.parent.mkdir()
    with Journal.open(tmp_path / "j") as journal:
        engine = Engine(journal, TYPES)

        async def work() -> OperationView:
            return await engine.run(
                "upgrade", "thing", [PlaceFile(str(target), "A"), SignalThenWait()]
            )

        with pytest.raises(Interrupted) as info:
            await interruptible(work, journal=journal)
    e = info.value
    assert e.signum == signal.SIGINT and e.incomplete
    assert e.view is not None and e.view.kind == "upgrade" and e.view.subject == "thing"
    assert f"op {e.view.id}" in str(e) and "upgrade thing" in str(e) and "incomplete" in str(e)
    (view,) = load(tmp_path / "j").incomplete()
    assert view.id == e.view.id and view.steps == ["done", "started"]


async def test_the_handlers_in_place_before_are_put_back() -> None:
    seen: list[int] = []

    def mine(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    old = signal.signal(signal.SIGTERM, mine)
    try:

        async def nothing() -> int:
            return 7

        assert await interruptible(nothing) == 7
        assert signal.getsignal(signal.SIGTERM) is mine
        os.kill(os.getpid(), signal.SIGTERM)  # after the wrapper returned: the caller's handler
        time.sleep(0.05)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old)


def test_off_the_main_thread_it_runs_without_watching_signals(
    tmp_path: Path, anyio_backend: str
) -> None:
    target = tmp_path / "tree" / "a"
    target.parent.mkdir()
    out: list[Any] = []

    def thread_main() -> None:
        try:
            with Journal.open(tmp_path / "j") as journal:
                engine = Engine(journal, TYPES)

                async def work() -> OperationView:
                    return await engine.run("install", "t", [PlaceFile(str(target), "A")])

                out.append(anyio.run(interruptible, work, backend=anyio_backend))
        except BaseException as e:  # reported by the assertion below
            out.append(e)

    t = threading.Thread(target=thread_main)
    t.start()
    t.join(30)
    (result,) = out
    assert isinstance(result, OperationView), result
    assert result.state in ("committed", "done") and target.read_text() == "A"
