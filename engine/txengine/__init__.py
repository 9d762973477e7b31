"""txengine: an event-sourced state machine engine for install operations.

Every step of an operation is journaled before its side effect (intent) and after it
(done); an operation succeeds only once its ``committed`` record is durable; a later run
finds what was left incomplete and resumes or reverts it. An embedder defines its own
:class:`Step` types and runs plans of them with :class:`Engine`::

    with Journal.open(directory) as journal:
        engine = Engine(journal, [MyStep, OtherStep])
        view = anyio.run(engine.run, "install", "thing", [MyStep(...), OtherStep(...)])

See ``docs/embedding.md``.
"""

from __future__ import annotations

from ._engine import Engine, Observer, ObserverEvent, describe_error
from ._errors import (
    IllegalTransition,
    IntentChanged,
    JournalCorrupt,
    JournalError,
    JournalTooNew,
    JournalUnreadable,
    JournalUnsafe,
    JournalUnwritable,
    LockBusy,
    OperationError,
    OperationFailed,
    OperationIncomplete,
    PlanInvalid,
    PlanUndecodable,
    TxError,
    UnknownOperation,
    UnknownStepKind,
)
from ._events import FORMAT_VERSION, Event, OpSummary, PlannedStep, Record
from ._filesteps import PlaceFile, RemovePath
from ._fs import (
    FileSystem,
    atomic_copy,
    atomic_symlink,
    atomic_write,
    discard,
    is_engine_temp,
    restore,
    stash,
    sweep_temps,
)
from ._interrupt import Interrupted, interruptible
from ._journal import Journal, Retain, dump, iter_history, latest_committed, load
from ._lifecycle import AuditAction, OpState, StepStatus
from ._lock import live_holder
from ._replay import Audit, JournalState, OperationView
from ._session import Recover, Recovered, Session, SyncJournal, open_journal
from ._steps import Result, Step, StepContext, StepError, StepTypes

#: This distribution's version (``txtool-engine``); see docs/embedding.md for what a
#: minor and a major release may change.
__version__ = "0.2.0"

__all__ = [
    "FORMAT_VERSION",
    "Audit",
    "AuditAction",
    "Engine",
    "Event",
    "FileSystem",
    "IllegalTransition",
    "IntentChanged",
    "Interrupted",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalState",
    "JournalTooNew",
    "JournalUnreadable",
    "JournalUnsafe",
    "JournalUnwritable",
    "LockBusy",
    "Observer",
    "ObserverEvent",
    "OpState",
    "OpSummary",
    "OperationError",
    "OperationFailed",
    "OperationIncomplete",
    "OperationView",
    "PlaceFile",
    "PlanInvalid",
    "PlanUndecodable",
    "PlannedStep",
    "Record",
    "Recover",
    "Recovered",
    "RemovePath",
    "Result",
    "Retain",
    "Session",
    "Step",
    "StepContext",
    "StepError",
    "StepStatus",
    "StepTypes",
    "SyncJournal",
    "TxError",
    "UnknownOperation",
    "UnknownStepKind",
    "__version__",
    "atomic_copy",
    "atomic_symlink",
    "atomic_write",
    "describe_error",
    "discard",
    "dump",
    "interruptible",
    "is_engine_temp",
    "iter_history",
    "latest_committed",
    "live_holder",
    "load",
    "open_journal",
    "restore",
    "stash",
    "sweep_temps",
]
