"""Folding the journal into state: operations, where each one stopped, and what fixes it.

This is the read side of the engine. :class:`JournalState` applies records one at a time,
checking each against the lifecycle table and against the step order, so that a journal
that breaks either (a bug, or a hand edit) is refused rather than half understood.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import msgspec

from . import _lifecycle as lc
from ._errors import IllegalTransition
from ._events import (
    EVENT_TYPES,
    OP_DIGITS,
    CleanedUp,
    Committed,
    OpStarted,
    OpSummary,
    PlannedStep,
    Record,
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
from ._lifecycle import AuditAction, OpState, StepStatus

# Status of one step inside an operation.
PENDING: Final = "pending"
STARTED: Final = "started"
DONE: Final = "done"
FAILED: Final = "failed"
REVERTING: Final = "reverting"
REVERTED: Final = "reverted"

# Statuses whose effect may be on disk, in part or whole: these are what a revert undoes.
_TOUCHED = frozenset({STARTED, DONE, FAILED, REVERTING})

# What a forward resume makes of each status (the rest stay as they are).
_RESUMED: dict[StepStatus, StepStatus] = {FAILED: STARTED, REVERTING: STARTED, REVERTED: PENDING}


class Audit(msgspec.Struct, frozen=True):
    """One incomplete operation, dpkg ``--audit`` style: what it is, where it stopped, the fix.

    ``actions`` lists the ways out, best first: ``"resume"`` (roll forward),
    ``"revert"`` (roll back) or ``"cleanup"`` (committed; only clean-up is left).
    """

    op: str
    kind: str
    subject: str
    state: OpState
    where: str
    actions: tuple[AuditAction, ...]


class OperationView:
    """An operation as the journal has it. Read it; only :class:`JournalState` changes it."""

    __slots__ = (
        "compacted",
        "errno",
        "error",
        "id",
        "intents",
        "kind",
        "last_seq",
        "meta",
        "plan",
        "results",
        "started",
        "state",
        "steps",
        "subject",
        "updated",
    )

    def __init__(self, rec: OpStarted) -> None:
        self.id = rec.op
        self.kind = rec.kind
        self.subject = rec.subject
        self.meta: dict[str, Any] = rec.meta
        self.plan: list[PlannedStep] = rec.plan
        self.state: OpState = lc.NEW
        self.steps: list[StepStatus] = [PENDING] * len(rec.plan)
        self.results: list[dict[str, Any] | None] = [None] * len(rec.plan)
        self.intents: list[dict[str, Any] | None] = [None] * len(rec.plan)
        self.error: str | None = None
        self.errno: int | None = None
        self.started = rec.ts
        self.updated = rec.ts
        self.last_seq = rec.seq
        self.compacted = False

    @classmethod
    def from_summary(cls, s: OpSummary) -> OperationView:
        """The view of an operation that compaction folded into ``s``."""
        view = cls.__new__(cls)
        view.id, view.kind, view.subject = s.op, s.kind, s.subject
        view.meta, view.plan, view.state = s.meta, s.plan, s.state
        done = s.state == lc.DONE
        view.steps = [DONE if done else REVERTED] * len(s.plan)
        view.results = list(s.results)
        view.intents = [None] * len(s.plan)
        view.error, view.errno = s.error, None
        view.started, view.updated, view.last_seq = s.started, s.ended, s.seq
        view.compacted = True
        return view

    def summary(self) -> OpSummary:
        """This closed operation folded into one summary (for compaction)."""
        if self.state not in lc.TERMINAL:
            raise ValueError(f"operation {self.id} is not closed ({self.state})")
        return OpSummary(
            seq=self.last_seq,
            op=self.id,
            kind=self.kind,
            subject=self.subject,
            meta=self.meta,
            plan=self.plan,
            results=self.results,
            state="done" if self.state == lc.DONE else "reverted",
            started=self.started,
            ended=self.updated,
            error=self.error,
        )

    @property
    def incomplete(self) -> bool:
        """Neither the old nor the new state: the operation needs resume or revert."""
        return self.state in lc.INCOMPLETE

    @property
    def committed(self) -> bool:
        """The new state is in force (clean-up may still be pending)."""
        return self.state in (lc.COMMITTED, lc.DONE)

    @property
    def closed(self) -> bool:
        """Done or reverted: no record may follow."""
        return self.state in lc.TERMINAL

    def next_forward(self) -> int | None:
        """Index of the first step that is not done, or None when all are."""
        for i, status in enumerate(self.steps):
            if status != DONE:
                return i
        return None

    def next_revert(self) -> int | None:
        """Index of the last step whose effect may be on disk, or None when none is."""
        for i in range(len(self.steps) - 1, -1, -1):
            if self.steps[i] in _TOUCHED:
                return i
        return None

    def step_name(self, index: int) -> str:
        """The kind of step ``index``."""
        return self.plan[index].type

    def where(self) -> str:
        """Where the operation stopped, in words."""
        n = len(self.plan)
        if self.state in (lc.COMMITTED, lc.DONE, lc.REVERTED, lc.NEW):
            return {
                lc.COMMITTED: "committed; clean-up pending",
                lc.DONE: "committed",
                lc.REVERTED: "reverted",
                lc.NEW: "not started",
            }[self.state]
        if self.state in (lc.REVERTING, lc.STEP_REVERTING, lc.REVERT_FAILED):
            i = self.next_revert()
            what = "revert failed" if self.state == lc.REVERT_FAILED else "revert stopped"
            if i is None:
                return f"{what} after undoing every step"
            return f"{what} at step {i + 1}/{n} ({self.step_name(i)})"
        i = self.next_forward()
        if i is None:
            return f"all {n} steps done, not committed"
        if self.steps[i] == FAILED:
            return f"step {i + 1}/{n} ({self.step_name(i)}) failed"
        if self.steps[i] == STARTED:
            return f"stopped inside step {i + 1}/{n} ({self.step_name(i)})"
        return f"stopped before step {i + 1}/{n} ({self.step_name(i)})"

    def audit(self) -> Audit:
        """Where this operation stopped and the ways out."""
        if self.state == lc.COMMITTED:
            actions: tuple[AuditAction, ...] = ("cleanup",)
        elif self.state in (lc.REVERTING, lc.STEP_REVERTING, lc.REVERT_FAILED, lc.FAILED):
            actions = ("revert", "resume")
        elif self.incomplete:
            actions = ("resume", "revert")
        else:
            actions = ()
        return Audit(self.id, self.kind, self.subject, self.state, self.where(), actions)

    def __repr__(self) -> str:
        return f"<OperationView {self.id} {self.kind} {self.subject!r} {self.state}>"


class Checkpoint:
    """One operation as it was before a record was applied: what
    :meth:`JournalState.restore` needs to take that record back when it could not be made
    durable, so that the state never says more than the log holds."""

    __slots__ = ("entry", "fields", "last_seq", "op", "view")

    def __init__(self, state: JournalState, rec: Record) -> None:
        self.op = rec.op
        self.last_seq = state.last_seq
        self.view = view = state.ops.get(rec.op)
        # The view's lists are kept, not copied: a record changes in place only the entries
        # of its own step (resume-started replaces the list of steps, leaving the old one).
        self.fields = (
            None
            if view is None
            else (
                view.state,
                view.steps,
                view.results,
                view.intents,
                view.error,
                view.errno,
                view.updated,
                view.last_seq,
            )
        )
        i: int | None = getattr(rec, "index", None)
        self.entry = (
            (i, view.steps[i], view.results[i], view.intents[i])
            if view is not None and i is not None and 0 <= i < len(view.steps)
            else None
        )


class JournalState:
    """The fold of a journal: every operation and its position, checked record by record."""

    def __init__(self) -> None:
        self.ops: dict[str, OperationView] = {}
        self.last_seq = 0

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[OperationView]:
        return iter(self.ops.values())

    def get(self, op: str) -> OperationView | None:
        """The operation whose id is ``op``, or starts with it when that is unambiguous."""
        found = self.ops.get(op)
        if found is not None:
            return found
        matches = [v for k, v in self.ops.items() if k.startswith(op)] if op else []
        return matches[0] if len(matches) == 1 else None

    def incomplete(self) -> list[OperationView]:
        """Operations that are neither old nor new state, oldest first."""
        return [v for v in self.ops.values() if v.incomplete]

    def uncleaned(self) -> list[OperationView]:
        """Committed operations whose clean-up has not finished."""
        return [v for v in self.ops.values() if v.state == lc.COMMITTED]

    def audit(self) -> list[Audit]:
        """The audit of every incomplete or clean-up-pending operation, oldest first."""
        return [v.audit() for v in self.ops.values() if v.incomplete or v.state == lc.COMMITTED]

    # -- folding -------------------------------------------------------------------------

    def checkpoint(self, rec: Record) -> Checkpoint:
        """The operation of ``rec`` as it is now, before ``rec`` is applied."""
        return Checkpoint(self, rec)

    def restore(self, cp: Checkpoint) -> None:
        """Take back the record applied since ``cp`` (restore several newest first)."""
        view = cp.view
        if view is None or cp.fields is None:
            self.ops.pop(cp.op, None)
        else:
            (
                view.state,
                view.steps,
                view.results,
                view.intents,
                view.error,
                view.errno,
                view.updated,
                view.last_seq,
            ) = cp.fields
            if cp.entry is not None:
                i, view.steps[i], view.results[i], view.intents[i] = cp.entry
        self.last_seq = cp.last_seq

    def add_summary(self, s: OpSummary) -> None:
        """Fold in a compacted operation; refuses one seen twice."""
        if s.op in self.ops:
            raise IllegalTransition(s.op, self.ops[s.op].state, "summary", "operation seen twice")
        self.ops[s.op] = OperationView.from_summary(s)

    def apply_all(self, records: Iterable[Record]) -> None:
        """Apply each of ``records`` in order (see :meth:`apply`)."""
        for rec in records:
            self.apply(rec)

    def apply(self, rec: Record) -> OperationView:
        """Check ``rec`` against the lifecycle and fold it in; raise IllegalTransition if not legal."""
        # Replay's hot path: each lookup is done once, and the lifecycle table is indexed
        # by record type first (_STEP), so that no key tuple is built per record; records
        # that change only the state need no further call.
        cls = type(rec)
        try:
            moves, change = _STEP[cls]
        except KeyError:
            tag = getattr(cls, "__struct_config__", None)
            what = "a line that is not an operation record"
            raise IllegalTransition("-", "-", str(tag and tag.tag), what) from None
        op = rec.op
        view = self.ops.get(op)
        if view is None:
            if cls is not OpStarted:
                raise IllegalTransition(op, "unknown", _TAGS[cls], "operation never started")
            if op.strip(OP_DIGITS):  # decoding checked its length (see StartedOpId)
                raise IllegalTransition(op, "unknown", "op-started", "an id not of hex digits")
            view = OperationView(rec)  # type: ignore[arg-type]
        state, seq = view.state, rec.seq
        if seq <= self.last_seq:
            raise IllegalTransition(op, state, _TAGS[cls], f"sequence {seq} not increasing")
        dest = moves.get(state)  # none for resume-started: its move depends on its direction
        if dest is None and cls is ResumeStarted:
            dest = _TABLE.get((state, f"resume-{rec.direction}"))  # type: ignore[attr-defined]
        if dest is None:
            raise IllegalTransition(op, state, _trigger(rec))
        if change is not None:
            change(view, rec)
        elif state == _NEW:  # only op-started meets a new view, and it changes nothing else
            self.ops[op] = view
        view.state = dest
        view.updated = rec.ts
        view.last_seq = self.last_seq = seq
        return view


# How a record changes a view beyond its lifecycle state. Module functions, not methods:
# replay calls one per step record, and a plain call is the cheapest.


def _expect(view: OperationView, index: int, status: str, record: str) -> None:
    """Refuse ``record`` unless step ``index`` exists and is in ``status``."""
    if not 0 <= index < len(view.steps) or view.steps[index] != status:
        raise IllegalTransition(view.id, view.state, record, f"step {index} is not {status}")


def _step_started(view: OperationView, rec: StepStarted) -> None:
    # Done steps always form a prefix (steps run in order and are undone last first),
    # so "the first step not done" is checked at its two neighbours, not by a scan.
    i, steps = rec.index, view.steps
    if not (0 <= i < len(steps) and steps[i] != DONE and (i == 0 or steps[i - 1] == DONE)):
        raise IllegalTransition(view.id, view.state, "step-started", f"step {i} out of order")
    steps[i] = STARTED
    view.intents[i] = rec.intent


def _step_done(view: OperationView, rec: StepDone) -> None:
    i, steps = rec.index, view.steps
    if not (0 <= i < len(steps) and steps[i] == STARTED):  # _expect, inline: the hottest
        raise IllegalTransition(view.id, view.state, "step-done", f"step {i} is not {STARTED}")
    steps[i] = DONE
    view.results[i] = rec.result


def _step_failed(view: OperationView, rec: StepFailed) -> None:
    _expect(view, rec.index, STARTED, "step-failed")
    view.steps[rec.index] = FAILED
    view.error, view.errno = rec.error, rec.errno


def _step_revert_started(view: OperationView, rec: StepRevertStarted) -> None:
    if rec.index != view.next_revert():
        raise IllegalTransition(
            view.id, view.state, "step-revert-started", f"step {rec.index} out of order"
        )
    view.steps[rec.index] = REVERTING


def _step_reverted(view: OperationView, rec: StepReverted) -> None:
    _expect(view, rec.index, REVERTING, "step-reverted")
    view.steps[rec.index] = REVERTED


def _revert_failed(view: OperationView, rec: RevertFailed) -> None:
    _expect(view, rec.index, REVERTING, "revert-failed")
    view.error, view.errno = rec.error, rec.errno


def _resume_started(view: OperationView, rec: ResumeStarted) -> None:
    if rec.direction == "forward":
        # Anything not done is done again (after a probe). A step that may have left
        # part of its effect stays touched, so that a revert after another
        # interruption still undoes it; only reverted steps start from scratch.
        view.steps = [_RESUMED.get(s, s) for s in view.steps]
    # Going back needs no change: a half-reverted step is reverted again (revert is
    # idempotent), and a started or failed step may have left part of its effect.


def _committed(view: OperationView, rec: Committed) -> None:
    if view.next_forward() is not None:
        raise IllegalTransition(view.id, view.state, "committed", "not every step is done")
    view.error = view.errno = None


def _reverted(view: OperationView, rec: Reverted) -> None:
    if view.next_revert() is not None:
        raise IllegalTransition(view.id, view.state, "reverted", "a step is still applied")


_NEW = lc.NEW
_TABLE = lc.TABLE
_TAGS: dict[type, str] = {cls: str(cls.__struct_config__.tag) for cls in EVENT_TYPES}
# The lifecycle table by record type, then state (resume-started is looked up in _TABLE).
_MOVES: dict[type, dict[str, OpState]] = {
    cls: {state: dest for (state, trigger), dest in _TABLE.items() if trigger == tag}
    for cls, tag in _TAGS.items()
}
# How each record type changes the view, beyond its lifecycle state (None: not at all).
_APPLY: dict[type, Callable[[OperationView, Any], None] | None] = {
    OpStarted: None,
    StepStarted: _step_started,
    StepDone: _step_done,
    StepFailed: _step_failed,
    RevertStarted: None,
    StepRevertStarted: _step_revert_started,
    StepReverted: _step_reverted,
    RevertFailed: _revert_failed,
    ResumeStarted: _resume_started,
    Committed: _committed,
    Reverted: _reverted,
    CleanedUp: None,
}
# Both, in one lookup per record.
_STEP = {cls: (_MOVES[cls], _APPLY[cls]) for cls in EVENT_TYPES}


def _trigger(rec: Record) -> str:
    return f"resume-{rec.direction}" if isinstance(rec, ResumeStarted) else _TAGS[type(rec)]
