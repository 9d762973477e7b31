"""Journal records: one tagged union of msgspec Structs.

Every record carries the format version ``v``, its sequence number ``seq`` (unique and
increasing across the whole journal), the operation id ``op`` and a wall-clock timestamp
``ts``. The tag (``type``) names the lifecycle trigger the record fires, so the state
machine in :mod:`txengine._lifecycle` checks records by their tag alone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

#: The format this release writes. It reads every format up to this one.
FORMAT_VERSION = 1

#: The shape of an operation id (``secrets.token_hex(6)``). Ids read from a journal become
#: parts of paths (the stash), so a record whose id has another shape is corrupt.
OP_PATTERN = "^[0-9a-f]{12}$"
#: The shape of a step kind (and of an operation kind): a short identifier. Step types are
#: checked against it when registered; a recorded kind is only ever looked up among them,
#: so decoding checks just its length (a pattern per step would slow replay threefold).
KIND_PATTERN = "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"

#: A line's format version, as read: a newer one does not decode (the reader then names
#: the version it found), so that replay needs no separate pass over the versions.
Version = Annotated[int, msgspec.Meta(le=FORMAT_VERSION)]
OpId = Annotated[str, msgspec.Meta(pattern=OP_PATTERN)]
#: The id of an op-started record as decoded: its length is checked there, its digits
#: (:data:`OP_DIGITS`) by the fold, once per operation, since a pattern (a call into
#: ``re``) costs a third of decoding the record. The schema states the pattern.
StartedOpId = Annotated[
    str, msgspec.Meta(min_length=12, max_length=12, extra_json_schema={"pattern": OP_PATTERN})
]
OP_DIGITS = "0123456789abcdef"
StepKind = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class PlannedStep(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """One step of a plan: its registered kind, the step type's ``class_version`` when it
    was planned (absent means 1, as in every journal written before versions existed) and
    its arguments as that version had them."""

    type: StepKind
    args: dict[str, Any]
    version: Annotated[int, msgspec.Meta(ge=1)] = 1


class Record(msgspec.Struct, tag_field="type", kw_only=True, frozen=True, gc=False):
    """Fields every operation record carries (see the module docstring)."""

    v: Version = FORMAT_VERSION
    seq: int
    op: str
    ts: float


class OpStarted(Record, tag="op-started", frozen=True):
    """An operation begins; ``plan`` is the whole of it, so replay needs nothing else.

    Only here (and in a summary) is the id's shape checked: every other record must name
    an operation already started, so a stray id is refused as corrupt anyway, and replay
    does not pay for a pattern match per record.
    """

    op: StartedOpId
    kind: str
    subject: str
    plan: list[PlannedStep]
    meta: dict[str, Any] = {}


class StepStarted(Record, tag="step-started", frozen=True):
    """Intent, written before the step's side effect: everything needed to probe and undo."""

    index: int
    intent: dict[str, Any] = {}


class StepDone(Record, tag="step-done", frozen=True):
    """The step's effect happened; ``result`` is reused on resume, never recomputed."""

    index: int
    result: dict[str, Any] = {}


class StepFailed(Record, tag="step-failed", frozen=True):
    index: int
    error: str
    errno: int | None = None


class RevertStarted(Record, tag="revert-started", frozen=True):
    """The engine decided to undo the completed steps after ``reason``."""

    reason: str


class StepRevertStarted(Record, tag="step-revert-started", frozen=True):
    index: int


class StepReverted(Record, tag="step-reverted", frozen=True):
    index: int


class RevertFailed(Record, tag="revert-failed", frozen=True):
    """Undoing a step failed: the operation stays incomplete until resumed or reverted."""

    index: int
    error: str
    errno: int | None = None


class ResumeStarted(Record, tag="resume-started", frozen=True):
    """A later run takes over an incomplete operation, rolling it forward or back."""

    direction: Literal["forward", "revert"]


class Committed(Record, tag="committed", frozen=True):
    """Every step is done: from here on the new state is the state."""


class Reverted(Record, tag="reverted", frozen=True):
    """Every completed step was undone: the old state is the state."""


class CleanedUp(Record, tag="cleaned-up", frozen=True):
    """Post-commit clean-up (stashes, old files) finished; the operation is closed."""


#: Any operation record, as ``Journal.append`` writes it and replay reads it.
Event = (
    OpStarted
    | StepStarted
    | StepDone
    | StepFailed
    | RevertStarted
    | StepRevertStarted
    | StepReverted
    | RevertFailed
    | ResumeStarted
    | Committed
    | Reverted
    | CleanedUp
)

EVENT_TYPES: tuple[type[Record], ...] = (
    OpStarted,
    StepStarted,
    StepDone,
    StepFailed,
    RevertStarted,
    StepRevertStarted,
    StepReverted,
    RevertFailed,
    ResumeStarted,
    Committed,
    Reverted,
    CleanedUp,
)


class OpSummary(msgspec.Struct, tag="summary", tag_field="type", kw_only=True, frozen=True):
    """A closed operation folded by compaction: what history and projections still need."""

    v: Version = FORMAT_VERSION
    seq: int
    op: OpId
    kind: str
    subject: str
    meta: dict[str, Any]
    plan: list[PlannedStep]
    results: list[dict[str, Any] | None]
    state: Literal["done", "reverted"]
    started: float
    ended: float
    error: str | None = None


class Header(msgspec.Struct, tag="header", tag_field="type", kw_only=True, frozen=True):
    """First line of every journal file. ``base_seq``: records at or below it live elsewhere."""

    v: Version = FORMAT_VERSION
    kind: Literal["log", "snapshot", "history"]
    created: float
    base_seq: int = 0


Line = Header | OpSummary | Event
