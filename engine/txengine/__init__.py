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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from ._journal import Journal, Retain, latest_committed
    from ._lifecycle import AuditAction, OpState, StepStatus
    from ._lock import live_holder
    from ._read import dump, iter_history, load
    from ._replay import Audit, JournalState, OperationView
    from ._session import Recover, Recovered, Session, SyncJournal, open_journal
    from ._steps import Result, Step, StepContext, StepError, StepTypes

# Each public name is imported from its module on first use (PEP 562): `import txengine`
# costs nothing, and a reader that calls `load` does not pay for the engine, the event
# loop library or the file primitives. The public surface is the same (see __all__).
_MODULES: dict[str, tuple[str, ...]] = {
    "_engine": (
        "Engine",
        "Observer",
        "ObserverEvent",
        "describe_error",
    ),
    "_errors": (
        "IllegalTransition",
        "IntentChanged",
        "JournalCorrupt",
        "JournalError",
        "JournalTooNew",
        "JournalUnreadable",
        "JournalUnsafe",
        "JournalUnwritable",
        "LockBusy",
        "OperationError",
        "OperationFailed",
        "OperationIncomplete",
        "PlanInvalid",
        "PlanUndecodable",
        "TxError",
        "UnknownOperation",
        "UnknownStepKind",
    ),
    "_events": (
        "FORMAT_VERSION",
        "Event",
        "OpSummary",
        "PlannedStep",
        "Record",
    ),
    "_filesteps": (
        "PlaceFile",
        "RemovePath",
    ),
    "_fs": (
        "FileSystem",
        "atomic_copy",
        "atomic_symlink",
        "atomic_write",
        "discard",
        "is_engine_temp",
        "restore",
        "stash",
        "sweep_temps",
    ),
    "_interrupt": (
        "Interrupted",
        "interruptible",
    ),
    "_journal": ("Journal", "Retain", "latest_committed"),
    "_lifecycle": (
        "AuditAction",
        "OpState",
        "StepStatus",
    ),
    "_lock": ("live_holder",),
    "_read": ("dump", "iter_history", "load"),
    "_replay": (
        "Audit",
        "JournalState",
        "OperationView",
    ),
    "_session": (
        "Recover",
        "Recovered",
        "Session",
        "SyncJournal",
        "open_journal",
    ),
    "_steps": (
        "Result",
        "Step",
        "StepContext",
        "StepError",
        "StepTypes",
    ),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


#: This distribution's version (``txtool-engine``); see docs/embedding.md for what a
#: minor and a major release may change.
__version__ = "0.3.0"

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
