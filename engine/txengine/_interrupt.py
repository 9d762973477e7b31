"""Ctrl-C and SIGTERM as cancellation: :func:`interruptible` and :class:`Interrupted`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel

from ._errors import TxError

if TYPE_CHECKING:
    from ._journal import Journal
    from ._replay import OperationView

T = TypeVar("T")

#: Event-loop passes a signal needs from its C handler to the watching task (asyncio: the
#: self-pipe read, the handler callback, then the receiver's wake-up).
_DRAIN_PASSES = 4

#: The signals :func:`interruptible` turns into cancellation.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(TxError):
    """SIGINT or SIGTERM cancelled a run before it finished.

    ``view`` is the operation the run was working on when the signal took effect (``None``
    when it had not started one, or when :func:`interruptible` was given no journal);
    ``incomplete`` says whether that operation is left to resume or revert. A run that
    finished anyway is never reported with this exception.
    """

    def __init__(self, signum: int, view: OperationView | None = None) -> None:
        self.signum = signum
        self.view = view
        self.incomplete = view is not None and view.incomplete
        message = f"interrupted by {signal.Signals(signum).name}"
        if view is not None:
            where = "left incomplete" if self.incomplete else f"already {view.state}"
            message += f" during {view.kind} {view.subject} (op {view.id}, {where})"
        super().__init__(message)


async def interruptible(
    fn: Callable[[], Awaitable[T]],
    *,
    journal: Journal | None = None,
    on_signal: Callable[[int], None] | None = None,
) -> T:
    """Await ``fn()``; on SIGINT or SIGTERM cancel it, and raise :class:`Interrupted` if it
    did not finish.

    With Python's default handling a Ctrl-C raises KeyboardInterrupt anywhere, even between
    a record's write and its fsync; here the signal becomes a cancellation, which the
    journal's shielded writes wait out. A blocking step cannot be cancelled: when ``fn``
    finishes anyway its result (or its own error, e.g. :class:`OperationFailed`) is what
    you get, and ``on_signal(signum)``, called as each signal arrives, is how you learn that
    one came. Later signals do not cancel twice and never raise KeyboardInterrupt inside the
    run. ``journal`` lets :class:`Interrupted` name the operation that was cut short.

    Signals can only be received on the main thread. Called on another thread, this awaits
    ``fn()`` as it is: it can still be cancelled by the caller's own cancel scope, and
    Ctrl-C is the main thread's to handle. The signal handlers in place before the call are
    put back after it (anyio's asyncio backend alone would leave the defaults).
    """
    if threading.current_thread() is not threading.main_thread():
        return await fn()
    since = journal.state.last_seq if journal is not None else 0
    received: list[int] = []
    results: list[T] = []
    errors: list[Exception] = []
    run = anyio.CancelScope()

    async def watch(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(*SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                received.append(signum)
                if on_signal is not None:
                    on_signal(signum)
                run.cancel()

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(watch)
            with run:
                try:
                    results.append(await fn())
                except Exception as exc:  # re-raised below, unwrapped by the task group
                    errors.append(exc)
            # A signal that came during a blocking call is still on its way to the watcher
            # (asyncio passes it through its self-pipe): let it arrive before closing.
            for _ in range(_DRAIN_PASSES):
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
    if errors:
        raise errors[0]
    if results:
        return results[0]
    raise Interrupted(received[0], _touched(journal, since))


def _touched(journal: Journal | None, since: int) -> OperationView | None:
    """The operation the run wrote to last, after journal sequence number ``since``."""
    if journal is None:
        return None
    views: list[Any] = [v for v in journal.state if v.last_seq > since]
    return max(views, key=lambda v: v.last_seq, default=None)
