"""The engine: runs a plan of steps as one journaled operation, resumes it, reverts it.

Each step's intent is durable before its side effect and its result after it; the engine
reports success only once ``committed`` is durable. A failing step makes the engine undo
the completed steps in reverse, each journaled; if an undo fails too, the operation stays
incomplete and says so (:class:`OperationIncomplete`). Cancellation (Ctrl-C) stops the run
between journal writes, never inside one, and leaves an operation that can be resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import _lifecycle as lc
from ._errors import OperationFailed, OperationIncomplete, TxError
from ._events import (
    CleanedUp,
    Committed,
    OpStarted,
    ResumeStarted,
    Reverted,
    RevertFailed,
    RevertStarted,
    StepDone,
    StepFailed,
    StepReverted,
    StepRevertStarted,
    StepStarted,
)
from ._fs import discard
from ._journal import Journal
from ._replay import DONE, REVERTING, OperationView
from ._steps import Step, StepContext, StepTypes

#: ``observer(event, view, index)``: event is one of "start", "done", "failed", "revert",
#: "reverted", "committed", "rolled-back"; index is the step (-1 for the operation).
Observer = Callable[[str, OperationView, int], None]


def describe_error(exc: BaseException) -> str:
    """One line naming the failure, with the file when the OS gave one."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Engine:
    """Runs operations against one open :class:`Journal` with a set of step types."""

    def __init__(
        self, journal: Journal, steps: Iterable[type[Step]], *, observer: Observer | None = None
    ) -> None:
        self.journal = journal
        self.types = StepTypes(steps)
        self.observer = observer
        self.stash_root = journal.directory / "stash"
        # Stashed files are the user's (old executables, whole environments): private.
        journal.fs.mkdir(self.stash_root, 0o700)

    def _notify(self, event: str, view: OperationView, index: int = -1) -> None:
        if self.observer is not None:
            self.observer(event, view, index)

    async def run(
        self, kind: str, subject: str, plan: Sequence[Step], meta: Mapping[str, Any] | None = None
    ) -> OperationView:
        """Run ``plan`` as a new operation. Return its view once committed.

        Raises :class:`OperationFailed` (reverted: the old state is back) or
        :class:`OperationIncomplete` (the revert failed: resume or revert it later).
        """
        op = self.journal.new_op_id()
        planned = [self.types.encode(step) for step in plan]
        await self.journal.append(
            OpStarted, op, kind=kind, subject=subject, plan=planned, meta=dict(meta or {})
        )
        return await self._forward(self.journal.state.ops[op])

    async def resume(self, op: str, *, revert: bool = False) -> OperationView:
        """Finish an incomplete operation: roll it forward, or back with ``revert``.

        A committed operation whose clean-up is pending only gets its clean-up. Forward
        raises like :meth:`run`; a revert that completes returns the reverted view.
        """
        view = self.journal.state.get(op)
        if view is None:
            raise TxError(f"no operation {op!r} in the journal")
        if view.state == lc.COMMITTED:
            await self._cleanup(view)
            return view
        if not view.incomplete:
            return view
        direction = "revert" if revert else "forward"
        await self.journal.append(ResumeStarted, view.id, direction=direction)
        if revert:
            await self._revert(view)
            return view
        return await self._forward(view)

    async def finish_cleanups(self) -> list[OperationView]:
        """Run the pending clean-up of committed operations (e.g. files that were in use),
        and delete what closed operations left in the stash when it could not be deleted."""
        done = []
        for view in self.journal.state.uncleaned():
            await self._cleanup(view)
            done.append(view)
        if self.stash_root.is_dir():
            for entry in self.stash_root.iterdir():
                closed = self.journal.state.ops.get(entry.name)
                if closed is not None and closed.closed:
                    self._drop_stash(closed)
        return done

    # -- internals ---------------------------------------------------------------------

    def _steps(self, view: OperationView) -> list[Step]:
        return [self.types.decode(p) for p in view.plan]

    def _context(self, view: OperationView, index: int, step: Step) -> StepContext:
        return StepContext(
            op=view.id,
            index=index,
            kind=step.kind,
            fs=self.journal.fs,
            stash_dir=self.stash_root / view.id,
            meta=view.meta,
            results=view.results,
            recorded=view.results[index],
            intent=view.intents[index] or {},
        )

    async def _forward(self, view: OperationView) -> OperationView:
        steps = self._steps(view)
        append = self.journal.append
        while (i := view.next_forward()) is not None:
            step = steps[i]
            ctx = self._context(view, i, step)
            touched_before = view.intents[i] is not None
            ctx.intent = step.intent(ctx)
            await append(StepStarted, view.id, index=i, intent=ctx.intent)
            self._notify("start", view, i)
            try:
                result = await step.probe(ctx) if touched_before else None
                if result is None:
                    result = await step.apply(ctx)
            except Exception as exc:
                error = describe_error(exc)
                await append(StepFailed, view.id, index=i, error=error, errno=_errno(exc))
                self._notify("failed", view, i)
                await append(RevertStarted, view.id, reason=error)
                await self._revert(view, steps)
                raise OperationFailed(
                    view, f"{step.describe()} failed: {error} (every change was undone)"
                ) from exc
            await append(StepDone, view.id, index=i, result=result)
            self._notify("done", view, i)
        await append(Committed, view.id)
        self._notify("committed", view)
        await self._cleanup(view, steps)
        return view

    async def _revert(self, view: OperationView, steps: list[Step] | None = None) -> None:
        steps = steps if steps is not None else self._steps(view)
        append = self.journal.append
        while (i := view.next_revert()) is not None:
            step = steps[i]
            ctx = self._context(view, i, step)
            result = view.results[i] if view.steps[i] in (DONE, REVERTING) else None
            await append(StepRevertStarted, view.id, index=i)
            self._notify("revert", view, i)
            try:
                await step.revert(ctx, result)
            except Exception as exc:
                error = describe_error(exc)
                await append(RevertFailed, view.id, index=i, error=error, errno=_errno(exc))
                raise OperationIncomplete(
                    view, f"undoing {step.describe()} failed too: {error} (operation incomplete)"
                ) from exc
            await append(StepReverted, view.id, index=i)
            self._notify("reverted", view, i)
        await append(Reverted, view.id)
        self._notify("rolled-back", view)
        self._drop_stash(view)

    async def _cleanup(self, view: OperationView, steps: list[Step] | None = None) -> None:
        """Post-commit clean-up; on failure the operation stays 'committed' for a later run."""
        steps = steps if steps is not None else self._steps(view)
        for i, step in enumerate(steps):
            try:
                await step.cleanup(self._context(view, i, step), view.results[i])
            except Exception:
                return
        if not self._drop_stash(view):
            return
        await self.journal.append(CleanedUp, view.id)

    def _drop_stash(self, view: OperationView) -> bool:
        # Best effort: the outcome is already durable; a later finish_cleanups() retries.
        try:
            return discard(self.journal.fs, self.stash_root / view.id)
        except OSError:
            return False


def _errno(exc: BaseException) -> int | None:
    return exc.errno if isinstance(exc, OSError) else None
