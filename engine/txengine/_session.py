"""The front door: open a journal, recover what a killed run left, run, compact, close.

:func:`open_journal` is what most embedders need, in async code; :class:`SyncJournal` is
the same for code without an event loop. Both do, in this order: take the lock (in a
worker thread, so the event loop keeps running while another process holds it), finish
pending clean-ups, apply the recovery policy, and on a clean exit compact by the policy.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import anyio.to_thread
import msgspec

from ._engine import Engine, Observer
from ._errors import OperationFailed, TxError
from ._framing import Warn
from ._fs import FileSystem
from ._journal import Journal, Retain, latest_committed
from ._lifecycle import OpState
from ._replay import Audit, OperationView
from ._steps import Step

#: What :func:`open_journal` does with operations a killed run left incomplete:
#: ``"resume"`` finishes each in the direction its audit recommends (forward, or back when
#: it was already being undone), ``"revert"`` undoes each, ``"report"`` leaves them be.
Recover = Literal["resume", "revert", "report"]


class Recovered(msgspec.Struct, frozen=True):
    """What recovery did with one incomplete operation.

    ``direction`` is the way it was taken; ``state`` the operation's lifecycle state after
    it (``"done"``/``"reverted"`` when it closed); ``error`` the engine error that stopped
    it (it is then still incomplete, and in :attr:`Session.pending`).
    """

    op: str
    kind: str
    subject: str
    direction: Literal["forward", "revert"]
    state: OpState
    error: TxError | None = None


class Session(msgspec.Struct):
    """An open journal with its engine, as :func:`open_journal` yields it.

    ``recovered`` lists what recovery did; ``pending`` what is still incomplete or waiting
    for clean-up after it (everything, with ``recover="report"``).
    """

    journal: Journal
    engine: Engine
    recovered: list[Recovered]

    @property
    def pending(self) -> list[Audit]:
        """Operations still incomplete (or committed with clean-up pending), oldest first."""
        return self.journal.state.audit()


async def _recover(engine: Engine, policy: Recover) -> list[Recovered]:
    await engine.finish_cleanups()
    if policy == "report":
        return []
    done = []
    for audit in engine.journal.state.audit():
        if "cleanup" in audit.actions:
            continue  # committed; its clean-up is retried on the next open
        revert = policy == "revert" or audit.actions[0] == "revert"
        error: TxError | None = None
        try:
            view: OperationView = await engine.resume(audit.op, revert=revert)
        except OperationFailed as e:  # rolled forward, a step failed, undone: closed
            view = e.view
        except TxError as e:
            error = e
            view = engine.journal.state.ops[audit.op]
        direction: Literal["forward", "revert"] = "revert" if revert else "forward"
        done.append(Recovered(audit.op, audit.kind, audit.subject, direction, view.state, error))
    return done


def _compact(journal: Journal, every: int, warn: Warn | None) -> None:
    """Compaction policy: fold closed operations into the snapshot once ``every`` of them
    sit in the log (0: never). Housekeeping only: a failure is a warning, never an error."""
    if every <= 0 or journal.closed_in_log() < every:
        return
    try:
        journal.compact()
    except (OSError, TxError) as e:
        if warn is not None:
            warn(f"compacting {journal.directory} failed, retried next time: {e}")


def _open(
    directory: Path,
    timeout: float,
    on_wait: Callable[[int | None], None] | None,
    warn: Warn | None,
    fs: FileSystem | None,
    retain: Retain,
) -> Journal:
    # Journal.open sweeps the temp files a kill left in the journal directory.
    return Journal.open(
        directory, timeout=timeout, on_wait=on_wait, warn=warn, fs=fs, retain=retain
    )


async def _open_in_thread(directory: Path, **options: Any) -> Journal:
    """``Journal.open`` in a worker thread; a cancelled wait never leaves the lock held."""
    mutex = threading.Lock()
    abandoned = False
    opened: list[Journal] = []

    def worker() -> None:
        journal = _open(directory, **options)
        with mutex:
            if abandoned:
                journal.close()
            else:
                opened.append(journal)

    try:
        await anyio.to_thread.run_sync(worker, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        with mutex:
            abandoned = True
            for journal in opened:
                journal.close()
        raise
    return opened[0]


@contextlib.asynccontextmanager
async def open_journal(
    directory: Path | str,
    step_types: Iterable[type[Step]],
    *,
    recover: Recover = "resume",
    observer: Observer | None = None,
    timeout: float = 30.0,
    on_wait: Callable[[int | None], None] | None = None,
    warn: Warn | None = None,
    compact_every: int = 100,
    fs: FileSystem | None = None,
    retain: Retain = latest_committed,
) -> AsyncIterator[Session]:
    """Open the journal at ``directory`` for ``step_types`` and yield a :class:`Session`.

    Takes the lock without blocking the event loop (``on_wait(pid)`` is called, from a
    worker thread, when another process holds it; :class:`LockBusy` after ``timeout``
    seconds), finishes pending clean-ups and applies ``recover`` (see :data:`Recover`).
    On a clean exit, compacts once ``compact_every`` closed operations are in the log
    (0: never; a failure goes to ``warn``), keeping in the snapshot what ``retain`` says is
    current state (see :data:`Retain`); always releases the lock.
    """
    journal = await _open_in_thread(
        Path(directory), timeout=timeout, on_wait=on_wait, warn=warn, fs=fs, retain=retain
    )
    try:
        engine = Engine(journal, step_types, observer=observer)
        session = Session(journal, engine, await _recover(engine, recover))
        yield session
        await anyio.to_thread.run_sync(_compact, journal, compact_every, warn)
    finally:
        journal.close()


def _running_loop() -> str | None:
    """The event loop library running in this thread, if any (without importing one)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
            return "asyncio"
        except RuntimeError:
            pass
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
            return "trio"
        except RuntimeError:
            pass
    return None


def _no_loop_here(what: str) -> None:
    library = _running_loop()
    if library is not None:
        raise RuntimeError(
            f"{what} blocks, and a {library} event loop is running in this thread:"
            " use open_journal there, or call it from a worker thread"
        )


class SyncJournal:
    """:func:`open_journal` for code without an event loop (pip-like installers).

    ``with SyncJournal(directory, step_types, recover=...) as tx: tx.run(...)``. Each call
    runs an event loop of its own (``backend``: "asyncio" or "trio") in the calling
    thread, so it works from any thread that is not running an event loop already
    (there it raises RuntimeError). Arguments are those of :func:`open_journal`.
    """

    def __init__(
        self,
        directory: Path | str,
        step_types: Iterable[type[Step]],
        *,
        recover: Recover = "resume",
        observer: Observer | None = None,
        timeout: float = 30.0,
        on_wait: Callable[[int | None], None] | None = None,
        warn: Warn | None = None,
        compact_every: int = 100,
        fs: FileSystem | None = None,
        retain: Retain = latest_committed,
        backend: Literal["asyncio", "trio"] = "asyncio",
    ) -> None:
        self._open = (Path(directory), timeout, on_wait, warn, fs, retain)
        self._types = list(step_types)
        self._recover: Recover = recover
        self._observer = observer
        self._warn = warn
        self._compact_every = compact_every
        self._backend = backend
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The open :class:`Session` (journal, engine, what recovery did)."""
        if self._session is None:
            raise RuntimeError("SyncJournal is not open: use it in a with statement")
        return self._session

    def __enter__(self) -> SyncJournal:
        _no_loop_here("SyncJournal")
        journal = _open(*self._open)
        try:
            engine = Engine(journal, self._types, observer=self._observer)
            recovered = anyio.run(_recover, engine, self._recover, backend=self._backend)
        except BaseException:
            journal.close()
            raise
        self._session = Session(journal, engine, recovered)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        journal = self.session.journal
        self._session = None
        try:
            if kind is None:
                _compact(journal, self._compact_every, self._warn)
        finally:
            journal.close()

    def run(
        self, kind: str, subject: str, plan: Sequence[Step], meta: Mapping[str, Any] | None = None
    ) -> OperationView:
        """:meth:`Engine.run`, blocking until the operation committed (or raised)."""
        _no_loop_here("SyncJournal.run")
        engine = self.session.engine
        return anyio.run(engine.run, kind, subject, plan, meta, backend=self._backend)

    def resume(self, op: str, *, revert: bool = False) -> OperationView:
        """:meth:`Engine.resume`, blocking."""
        _no_loop_here("SyncJournal.resume")
        engine = self.session.engine

        async def resume() -> OperationView:
            return await engine.resume(op, revert=revert)

        return anyio.run(resume, backend=self._backend)
