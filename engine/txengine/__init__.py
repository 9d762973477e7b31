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

from ._engine import Engine, Interrupted, Observer, describe_error, interruptible
from ._errors import (
    IllegalTransition,
    JournalCorrupt,
    JournalError,
    JournalTooNew,
    LockBusy,
    OperationError,
    OperationFailed,
    OperationIncomplete,
    TxError,
)
from ._events import FORMAT_VERSION, Event, OpSummary, PlannedStep, Record
from ._filesteps import PlaceFile, RemovePath
from ._fs import (
    FileSystem,
    atomic_copy,
    atomic_symlink,
    atomic_write,
    discard,
    restore,
    stash,
)
from ._journal import Journal, Retain, dump, iter_history, latest_committed, load
from ._lock import live_holder
from ._replay import Audit, JournalState, OperationView
from ._steps import Result, Step, StepContext, StepError, StepTypes

__all__ = [
    "FORMAT_VERSION",
    "Audit",
    "Engine",
    "Event",
    "FileSystem",
    "IllegalTransition",
    "Interrupted",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalState",
    "JournalTooNew",
    "LockBusy",
    "Observer",
    "OpSummary",
    "OperationError",
    "OperationFailed",
    "OperationIncomplete",
    "OperationView",
    "PlaceFile",
    "PlannedStep",
    "Record",
    "RemovePath",
    "Result",
    "Retain",
    "Step",
    "StepContext",
    "StepError",
    "StepTypes",
    "TxError",
    "atomic_copy",
    "atomic_symlink",
    "atomic_write",
    "describe_error",
    "discard",
    "dump",
    "interruptible",
    "iter_history",
    "latest_committed",
    "live_holder",
    "load",
    "restore",
    "stash",
]
