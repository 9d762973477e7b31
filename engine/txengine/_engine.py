"""The engine: runs a plan of steps as one journaled operation, resumes it, reverts it.

Each step's intent is durable before its side effect and its result after it; the engine
reports success only once ``committed`` is durable. A failing step makes the engine undo
the completed steps in reverse, each journaled; if an undo fails too, the operation stays
incomplete and says so (:class:`OperationIncomplete`). Cancellation (Ctrl-C) stops the run
between journal writes, never inside one, and leaves an operation that can be resumed.

Intents and results are recorded as the journal will give them back (encoded once, decoded
once), and steps are decoded from the plan only when they are needed, so an operation whose
later step no longer decodes can still be reverted as far as its recorded steps allow.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, NoReturn

import anyio
import anyio.lowlevel

from . import _lifecycle as lc
from ._errors import (
    IntentChanged,
    JournalError,
    OperationFailed,
    OperationIncomplete,
    PlanInvalid,
    UnknownOperation,
)
from ._events import (
    KIND_PATTERN,
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
from ._private import private_dir
from ._replay import _TOUCHED, DONE, REVERTING, OperationView
from ._steps import Step, StepContext, StepTypes, recordable

#: What an :data:`Observer` is told, per step or for the whole operation.
ObserverEvent = Literal["start", "done", "failed", "revert", "reverted", "committed", "rolled-back"]

#: ``observer(event, view, index)``: ``index`` is the step, -1 for the operation as a whole
#: ("committed", "rolled-back").
Observer = Callable[[ObserverEvent, OperationView, int], None]

_KIND = re.compile(KIND_PATTERN)


def describe_error(exc: BaseException) -> str:
    """One line naming the failure, with the file when the OS gave one."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Engine:
    """Runs operations against one open :class:`Journal` with a set of step types.

    ``running`` is the operation the engine is running, resuming or reverting right now
    (None between operations): what an interrupt handler names.
    """

    def __init__(
        self, journal: Journal, steps: Iterable[type[Step]], *, observer: Observer | None = None
    ) -> None:
        self.journal = journal
        self.types = StepTypes(steps)
        self.observer = observer
        self.running: OperationView | None = None
        self.stash_root = journal.directory / "stash"
        # Stashed files are the user's (old executables, whole environments): private.
        private_dir(journal.fs, self.stash_root)

    def _notify(self, event: ObserverEvent, view: OperationView, index: int = -1) -> None:
        if self.observer is not None:
            self.observer(event, view, index)

    async def run(
        self, kind: str, subject: str, plan: Sequence[Step], meta: Mapping[str, Any] | None = None
    ) -> OperationView:
        """Run ``plan`` as a new operation. Return its view once committed.

        Raises :class:`PlanInvalid` (nothing written) when ``kind`` is not a short
        identifier, ``subject`` not one line of text, a step's arguments do not decode back
        to the step, or ``meta`` is not a JSON object; :class:`OperationFailed` (reverted:
        the old state is back) or :class:`OperationIncomplete` (the revert failed: resume
        or revert it later).
        """
        fields = self._op_started(kind, subject, plan, meta)
        op = self.journal.new_op_id()
        await self.journal.append(OpStarted, op, **fields)
        view = self.journal.state.ops[op]
        with self._running(view):
            return await self._forward(view)

    def _op_started(
        self, kind: str, subject: str, plan: Sequence[Step], meta: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise PlanInvalid(f"operation kind {kind!r} must match {KIND_PATTERN}")
        if not isinstance(subject, str) or not subject or not subject.isprintable():
            raise PlanInvalid(f"operation subject {subject!r} must be one line of text")
        try:
            meta_obj = recordable(dict(meta or {}), "the operation's meta")
        except (TypeError, ValueError) as e:
            raise PlanInvalid(str(e)) from None
        planned = [self.types.encode(step) for step in plan]
        return {"kind": kind, "subject": subject, "plan": planned, "meta": meta_obj}

    async def resume(self, op: str, *, revert: bool = False) -> OperationView:
        """Finish an incomplete operation: roll it forward, or back with ``revert``.

        A committed operation whose clean-up is pending only gets its clean-up. Forward
        raises like :meth:`run`; a revert that completes returns the reverted view.
        Raises :class:`UnknownOperation` when the journal has no such operation, and
        :class:`UnknownStepKind`, :class:`PlanUndecodable` or :class:`IntentChanged`
        when a step it needs cannot be run by this release (the operation is unchanged).
        """
        view = self.journal.state.get(op)
        if view is None:
            raise UnknownOperation(op)
        if view.state == lc.COMMITTED:
            await self._cleanup(view)
            return view
        if not view.incomplete:
            return view
        # Decode every step this direction needs, in the order it needs them, before writing
        # anything: a step this release cannot read leaves the operation as it was.
        if revert:
            needed = [i for i in reversed(range(len(view.plan))) if view.steps[i] in _TOUCHED]
        else:
            needed = [i for i in range(len(view.plan)) if view.steps[i] != DONE]
        steps: dict[int, Step] = {}
        for i in needed:
            self._step(view, i, steps)
        with self._running(view):
            direction: Literal["forward", "revert"] = "revert" if revert else "forward"
            await self.journal.append(ResumeStarted, view.id, direction=direction)
            if revert:
                await self._revert(view, steps)
                return view
            return await self._forward(view, steps)

    async def finish_cleanups(self, subjects: Container[str] | None = None) -> list[OperationView]:
        """Run the pending clean-up of committed operations (e.g. files that were in use),
        and delete what closed operations left in the stash when it could not be deleted.

        ``subjects`` limits both to the operations of those subjects: with a shared journal,
        the ones whose :meth:`Journal.subject` lock the caller holds."""
        done = []
        for view in self.journal.state.uncleaned():
            if subjects is not None and view.subject not in subjects:
                continue
            await self._cleanup(view)
            done.append(view)
        for closed in self._stashed_closed():
            if subjects is None or closed.subject in subjects:
                self._drop_stash(closed)
        return done

    def cleanup_subjects(self) -> set[str]:
        """The subjects that :meth:`finish_cleanups` has work for: a committed operation
        not cleaned up, or a closed one whose stash is still on disk."""
        found = {v.subject for v in self.journal.state.uncleaned()}
        return found | {v.subject for v in self._stashed_closed()}

    def _stashed_closed(self) -> list[OperationView]:
        if not self.stash_root.is_dir():
            return []
        views = (self.journal.state.ops.get(e.name) for e in self.stash_root.iterdir())
        return [v for v in views if v is not None and v.closed]

    # -- internals ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _running(self, view: OperationView) -> Iterator[None]:
        self.running = view
        try:
            yield
        finally:
            self.running = None

    def _step(self, view: OperationView, index: int, steps: dict[int, Step]) -> Step:
        """Step ``index`` of ``view``, decoded on first need (decode errors name it)."""
        step = steps.get(index)
        if step is None:
            step = steps[index] = self.types.decode(view.plan[index], view.id, index)
        return step

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
            kinds=[p.type for p in view.plan],
        )

    async def _forward(
        self, view: OperationView, steps: dict[int, Step] | None = None
    ) -> OperationView:
        steps = {} if steps is None else steps
        append = self.journal.append
        while (i := view.next_forward()) is not None:
            # A cancellation (Ctrl-C) lands here, between steps, even when steps never await.
            await anyio.lowlevel.checkpoint()
            step = self._step(view, i, steps)
            ctx = self._context(view, i, step)
            recorded = view.intents[i]
            try:
                intent = recordable(step.intent(ctx), f"the intent of {step.describe()}")
            except Exception as exc:
                await self._fail(view, steps, step, exc, started=False)
            if recorded is not None and intent != recorded:
                raise IntentChanged(view.id, i, step.kind)
            await append(StepStarted, view.id, index=i, intent=intent)
            ctx.intent = intent
            self._notify("start", view, i)
            try:
                outcome = await step.probe(ctx) if recorded is not None else None
                if outcome is None:
                    outcome = await step.apply(ctx)
                result = recordable(outcome, f"the result of {step.describe()}")
            except Exception as exc:
                await self._fail(view, steps, step, exc, started=True)
            await append(StepDone, view.id, index=i, result=result)
            self._notify("done", view, i)
        await append(Committed, view.id)
        self._notify("committed", view)
        await self._cleanup(view, steps)
        return view

    async def _fail(
        self,
        view: OperationView,
        steps: dict[int, Step],
        step: Step,
        exc: Exception,
        *,
        started: bool,
    ) -> NoReturn:
        """Record the failure of ``step`` (one that ``started``, or whose intent failed),
        undo what is done, and raise :class:`OperationFailed`."""
        error = describe_error(exc)
        if started:
            index = view.next_forward()
            await self.journal.append(
                StepFailed, view.id, index=index, error=error, errno=_errno(exc)
            )
            self._notify("failed", view, -1 if index is None else index)
        await self.journal.append(RevertStarted, view.id, reason=f"{step.describe()}: {error}")
        await self._revert(view, steps)
        raise OperationFailed(
            view, f"{step.describe()} failed: {error} (every change was undone)"
        ) from exc

    async def _revert(self, view: OperationView, steps: dict[int, Step]) -> None:
        append = self.journal.append
        while (i := view.next_revert()) is not None:
            step = self._step(view, i, steps)
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

    async def _cleanup(self, view: OperationView, steps: dict[int, Step] | None = None) -> None:
        """Post-commit clean-up; on failure the operation stays 'committed' for a later run."""
        steps = {} if steps is None else steps
        for i in range(len(view.plan)):
            try:
                step = self._step(view, i, steps)
                await step.cleanup(self._context(view, i, step), view.results[i])
            except Exception:
                return
        if not self._drop_stash(view):
            return
        try:
            await self.journal.append(CleanedUp, view.id)
        except (OSError, JournalError) as e:
            # The commit is durable: raising now would report done work as failed. The
            # operation stays "committed" (clean-up pending); finish_cleanups() records it.
            self.journal.warn(
                f"the clean-up of {view.kind} {view.subject} (op {view.id}) could not be"
                f" recorded: {describe_error(e)}; retried by the next run"
            )

    def _drop_stash(self, view: OperationView) -> bool:
        # Best effort: the outcome is already durable; a later finish_cleanups() retries.
        try:
            return discard(self.journal.fs, self.stash_root / view.id)
        except OSError:
            return False


def _errno(exc: BaseException) -> int | None:
    return exc.errno if isinstance(exc, OSError) else None
