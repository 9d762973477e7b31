"""The legal life of an operation, defined once as a ``transitions.Machine``.

Records are checked against this machine when they are written and when they are replayed.
The machine is compiled into a ``(state, trigger) -> state`` table because replay must
handle hundreds of thousands of records a second, and a ``transitions`` trigger costs
several microseconds; the table is derived from the machine's definition, never written
by hand, and a test checks it against the machine itself. ``transitions`` is imported only
to build the machine (to draw it, or for that test): its import cost every command more
than reading a journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

if TYPE_CHECKING:
    from transitions import Machine

#: The lifecycle state of an operation (``OperationView.state``).
OpState = Literal[
    "new",
    "running",
    "step_open",
    "failed",
    "reverting",
    "step_reverting",
    "revert_failed",
    "committed",
    "done",
    "reverted",
]
#: The status of one step inside an operation (``OperationView.steps``).
StepStatus = Literal["pending", "started", "done", "failed", "reverting", "reverted"]
#: A way out of an incomplete operation, as an :class:`Audit` lists them.
AuditAction = Literal["resume", "revert", "cleanup"]

NEW: Final = "new"
RUNNING: Final = "running"
STEP_OPEN: Final = "step_open"
FAILED: Final = "failed"
REVERTING: Final = "reverting"
STEP_REVERTING: Final = "step_reverting"
REVERT_FAILED: Final = "revert_failed"
COMMITTED: Final = "committed"
DONE: Final = "done"
REVERTED: Final = "reverted"

STATES: Final[tuple[OpState, ...]] = get_args(OpState)

#: States from which no further record may follow.
TERMINAL: Final = frozenset({DONE, REVERTED})

#: States in which the operation is neither the old nor the new state: it needs resume.
INCOMPLETE: Final = frozenset(
    {RUNNING, STEP_OPEN, FAILED, REVERTING, STEP_REVERTING, REVERT_FAILED}
)

_INTERRUPTED = [RUNNING, STEP_OPEN, FAILED, REVERTING, STEP_REVERTING, REVERT_FAILED]

# Triggers are the records' tags; "resume-forward"/"resume-revert" are the two
# directions of a resume-started record.
TRANSITIONS: Final[list[Any]] = [
    {"trigger": "op-started", "source": NEW, "dest": RUNNING},
    {"trigger": "step-started", "source": RUNNING, "dest": STEP_OPEN},
    {"trigger": "step-done", "source": STEP_OPEN, "dest": RUNNING},
    {"trigger": "step-failed", "source": STEP_OPEN, "dest": FAILED},
    # From running: a step's intent could not be computed or recorded, so it never started.
    {"trigger": "revert-started", "source": [FAILED, RUNNING], "dest": REVERTING},
    {"trigger": "step-revert-started", "source": REVERTING, "dest": STEP_REVERTING},
    {"trigger": "step-reverted", "source": STEP_REVERTING, "dest": REVERTING},
    {"trigger": "revert-failed", "source": STEP_REVERTING, "dest": REVERT_FAILED},
    {"trigger": "resume-forward", "source": _INTERRUPTED, "dest": RUNNING},
    {"trigger": "resume-revert", "source": _INTERRUPTED, "dest": REVERTING},
    {"trigger": "committed", "source": RUNNING, "dest": COMMITTED},
    {"trigger": "reverted", "source": REVERTING, "dest": REVERTED},
    {"trigger": "cleaned-up", "source": COMMITTED, "dest": DONE},
]


def build_machine(model: object | None = None) -> Machine:
    """The lifecycle as a ``transitions.Machine`` (for a model object, or model-less)."""
    from transitions import Machine

    return Machine(
        model=model,
        states=list(STATES),
        transitions=TRANSITIONS,
        initial=NEW,
        auto_transitions=False,
        send_event=False,
    )


def machine_table(machine: Machine) -> dict[tuple[str, str], OpState]:
    """The ``(state, trigger) -> state`` table of a built machine."""
    table: dict[tuple[str, str], OpState] = {}
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                table[(source, trigger)] = cast(OpState, str(transition.dest))
    return table


def _compile(transitions: list[Any]) -> dict[tuple[str, str], OpState]:
    """The table of :data:`TRANSITIONS` read as ``Machine`` reads them (a source may be a
    list; a later transition wins), without building the machine."""
    table: dict[tuple[str, str], OpState] = {}
    for t in transitions:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for source in sources:
            table[(source, t["trigger"])] = t["dest"]
    return table


TABLE: Final = _compile(TRANSITIONS)


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from the machine."""
    lines = ["stateDiagram-v2", f"    [*] --> {NEW}"]
    for trigger, event in build_machine().events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                lines.append(f"    {source} --> {transition.dest}: {trigger}")
    lines.extend(f"    {state} --> [*]" for state in sorted(TERMINAL))
    return "\n".join(lines) + "\n"
