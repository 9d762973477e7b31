"""The installer-level service: everything a front end needs to change tools, without printing.

A command line (or any other front end) parses, calls one method and renders the
:class:`Report`. The service owns the rest: the journal's lock and its wait message,
pending clean-ups, re-running as the fix of an interrupted operation, the per-item runner,
Ctrl-C/SIGTERM/SIGHUP, the post-commit rule and compaction.

Tools run in parallel: the journal is opened ``shared`` (its lock held only around each
append), and each item runs under its tool's subject lock, so commands on different tools,
in different processes, overlap while those on one tool serialize. Everything that acts on
an operation left incomplete or unclean (re-running as the fix, clean-ups, reverting on
Ctrl-C) does so only under the lock of its tool: an incomplete operation of a tool whose
lock another live process holds is that process's work in progress, never ours to touch.

The post-commit rule: once an operation's ``committed`` record is durable the operation is
done, whatever fails afterwards (the ``cleaned-up`` record, compaction, output); such a
failure is a warning, retried by the next command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any, Literal

import anyio
import msgspec

from txengine import (
    FileSystem,
    Interrupted,
    Journal,
    JournalError,
    JournalState,
    LockBusy,
    OperationFailed,
    OperationIncomplete,
    OperationView,
    TxError,
    describe_error,
    interruptible,
)

from . import builds, names
from . import messages as msg
from .errors import NeedsResume, UsageError, code_of
from .exitcodes import FAILED, INCOMPLETE, INTERRUPTED, OK
from .installer import Installer, Options, Outcome, Plan, outcome
from .locations import Locations
from .names import BadName, canonical
from .output import Reporter
from .reading import read_state
from .steps import check_journal
from .tools import current

#: What happened to one item of a command (a tool, or an operation for ``resume``).
Status = Literal["done", "failed", "incomplete", "interrupted", "not-attempted"]
Command = Literal["install", "upgrade", "uninstall", "reinstall", "inject", "uninject"]

#: Step kinds without a side effect: an operation interrupted in them has nothing to undo.
PURE_STEPS = frozenset({"resolve", "use-generation"})

#: Closed operations kept in the log before the service folds them into the snapshot.
COMPACT_EVERY = 100


_BUILDS = frozenset({"install", "upgrade", "reinstall", "inject", "uninject"})


def recovery_direction(command: Command, interrupted_kind: str) -> Literal["forward", "revert"]:
    """Which way re-running ``command`` takes an interrupted operation of the same tool:
    the way that leads to what the command asks for (docs/cli.md has the table)."""
    # The kinds that build the tool's environment (reinstall and inject are upgrades with
    # the same or more requirements); a rollback or gc is undone by any of them.
    wants_tool = command in _BUILDS
    builds_tool = interrupted_kind in _BUILDS
    return "forward" if wants_tool == builds_tool else "revert"


class Item(msgspec.Struct):
    """One tool (or one operation, for ``resume``) of a command, and what became of it."""

    name: str
    status: Status = "not-attempted"
    outcome: Outcome | None = None
    error: str | None = None
    code: int = OK
    notes: list[str] = []
    tool: str | None = None
    plan: Plan | None = None
    since: int = 0  # the journal's last sequence number when the item began
    op_state: str | None = None  # for resume: the state the operation was left in

    def to_json(self) -> dict[str, Any]:
        data = self.outcome.to_json() if self.outcome else {"tool": self.tool or self.name}
        action = self.outcome.action if self.outcome and self.status == "done" else self.status
        extra = {"state": self.op_state} if self.op_state else {}
        return (
            data
            | extra
            | {
                "action": action,
                "status": self.status,
                "error": self.error,
                "recovered": self.notes,
            }
        )


class Report(msgspec.Struct):
    """Every item's fate, the warnings, and the signal that came once the work was done."""

    items: list[Item]
    warnings: list[str] = []
    late_signal: int | None = None

    @property
    def code(self) -> int:
        codes = [i.code for i in self.items]
        if len(codes) == 1:
            return codes[0]
        for code in (INCOMPLETE, INTERRUPTED):
            if code in codes:
                return code
        return FAILED if any(codes) else OK


class SignalGuard:
    """Signals outside the engine's run: once the lock is held they are recorded, not
    raised, so that nothing is stopped between two journal writes or after a commit;
    SIGHUP (a closed terminal) is ignored, by the children too, as an output problem."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def record(self, signum: int, frame: FrameType | None = None) -> None:
        self.received.append(signum)

    def defer(self) -> None:
        """From now until the front end restores its handlers (or the process exits)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread: that front end handles them
        signal.signal(signal.SIGINT, self.record)
        signal.signal(signal.SIGTERM, self.record)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)


class _Session:
    """One locked journal, its engine, and the signals received while it is open."""

    def __init__(self, installer: Installer, guard: SignalGuard) -> None:
        self.installer = installer
        self.guard = guard
        # The journal up to here was checked by the open (check_journal).
        self.checked = installer.engine.journal.state.last_seq

    @property
    def journal(self) -> Journal:
        return self.installer.engine.journal

    def op_since(self, item: Item) -> OperationView | None:
        """The latest operation of the item's tool written since the item began."""
        views = [
            v
            for v in self.journal.state
            if v.last_seq > item.since and item.tool in (None, v.subject)
        ]
        return max(views, key=lambda v: v.last_seq, default=None)


class Service:
    """Installs, upgrades, uninstalls and resumes; reads the state for ``list``/``status``.

    ``notify`` receives the lines a user should see while work goes on (the lock wait, an
    interrupted operation finished first); results come back as a :class:`Report`.
    """

    def __init__(
        self,
        locations: Locations,
        *,
        notify: Callable[[str], None],
        live: bool = False,
        lock_timeout: float = 60.0,
    ) -> None:
        self.loc = locations
        self.notify = notify
        self.live = live
        self.lock_timeout = lock_timeout
        self.guard = SignalGuard()

    # -- reading -------------------------------------------------------------------------

    def state(self) -> JournalState:
        return read_state(self.loc, lambda m: self.notify(f"warning: {m}"))

    def planner(self) -> Any:
        """A planner over the unlocked journal, to refuse bad input before the lock."""
        from .installer import Planner

        return Planner(self.loc, self.state(), locked=False)

    # -- changing ------------------------------------------------------------------------

    def install(self, specs: Sequence[str], opts: Options) -> Report:
        async def act(session: _Session, item: Item) -> Outcome:
            resumed = await self._recover(session, item, "install")
            if resumed is not None:
                return resumed
            plan = session.installer.planner().install(item.name, opts)
            return await self._run_plan(session, item, plan)

        return self._session([Item(s, tool=_tool_of(s)) for s in specs], act, jobs=1)

    def uninstall(self, tools: Sequence[str], *, everything: bool = False) -> Report:
        """Uninstall each tool; ``everything``: every tool installed (or left incomplete)."""

        async def act(session: _Session, item: Item) -> Outcome:
            resumed = await self._recover(session, item, "uninstall")
            if resumed is not None:
                return resumed
            planner = session.installer.planner()
            if everything and item.name not in planner.tools:
                # Its interrupted first install was just undone: nothing is left of it.
                view = max(
                    (v for v in session.journal.state if v.subject == item.name),
                    key=lambda v: v.last_seq,
                )
                return Outcome(item.name, "reverted", op=view.id, kind=view.kind)
            return await self._run_plan(session, item, planner.uninstall(item.name))

        return self._session(
            [Item(n, tool=names.tool_name(n)) for n in tools],
            act,
            jobs=1,
            items_of=_every_tool if everything else None,
        )

    def upgrade(
        self, tools: Sequence[str], opts: Options, *, everything: bool = False, jobs: int = 4
    ) -> Report:
        async def act(session: _Session, item: Item) -> Outcome:
            resumed = await self._recover(session, item, "upgrade")
            if resumed is not None:
                return resumed
            return await self._run_plan(
                session, item, session.installer.planner().upgrade(item.name, opts)
            )

        if everything:  # one batch: `rollback --all` undoes what this run upgraded
            opts = msgspec.structs.replace(opts, batch=os.urandom(4).hex())
        return self._session(
            [Item(n, tool=_tool_of(n)) for n in tools],
            act,
            jobs=jobs,
            items_of=_every_tool if everything else None,
        )

    def reinstall(self, tools: Sequence[str], opts: Options, *, everything: bool = False) -> Report:
        """Rebuild each tool from what its record says (``everything``: every tool)."""

        return self._session(
            [Item(n, tool=names.tool_name(n)) for n in tools],
            self._planned("reinstall", lambda planner, name: planner.reinstall(name, opts)),
            jobs=1,
            items_of=_every_tool if everything else None,
        )

    def inject(self, tool: str, specs: Sequence[str], opts: Options, include_apps: bool) -> Report:
        """Rebuild the tool's environment with ``specs`` as plugins too."""
        act = self._planned(
            "inject", lambda planner, name: planner.inject(name, list(specs), opts, include_apps)
        )
        return self._session([Item(tool, tool=names.tool_name(tool))], act, jobs=1)

    def uninject(self, tool: str, dists: Sequence[str], opts: Options) -> Report:
        """Rebuild the tool's environment without the plugins ``dists``."""
        act = self._planned(
            "uninject", lambda planner, name: planner.uninject(name, list(dists), opts)
        )
        return self._session([Item(tool, tool=names.tool_name(tool))], act, jobs=1)

    def _planned(
        self, command: Command, plan_of: Callable[[Any, str], Plan | Outcome]
    ) -> Callable[[_Session, Item], Awaitable[Outcome]]:
        """An item's work: re-running as the fix of its tool's interrupted operation, then
        the plan ``plan_of`` makes under the tool's lock."""

        async def act(session: _Session, item: Item) -> Outcome:
            resumed = await self._recover(session, item, command)
            if resumed is not None:
                return resumed
            return await self._run_plan(
                session, item, plan_of(session.installer.planner(), item.name)
            )

        return act

    def rollback(
        self,
        tools: Sequence[str],
        to: str | None = None,
        *,
        everything: bool = False,
        force: bool = False,
    ) -> Report:
        """Switch tools back to a kept generation, offline (``everything``: the tools the
        latest ``upgrade --all`` changed, each to the generation before it)."""

        async def act(session: _Session, item: Item) -> Outcome:
            return await self._run_plan(
                session, item, session.installer.planner().rollback(item.name, to, force=force)
            )

        def batch(session: _Session) -> list[Item]:
            return [Item(t, tool=t) for t in session.installer.planner().batch_tools()]

        return self._session(
            [Item(n, tool=names.tool_name(n)) for n in tools],
            act,
            jobs=1,
            items_of=batch if everything else None,
        )

    def gc(self, tools: Sequence[str], keep: int | None = None) -> Report:
        """Prune generations past the window of each tool (every installed one by default)."""

        async def act(session: _Session, item: Item) -> Outcome:
            return await self._run_plan(
                session, item, session.installer.planner().gc(item.name, keep)
            )

        def installed(session: _Session) -> list[Item]:
            return [Item(t, tool=t) for t in sorted(session.installer.planner().tools)]

        return self._session(
            [Item(n, tool=names.tool_name(n)) for n in tools],
            act,
            jobs=1,
            items_of=None if tools else installed,
        )

    def resume(self, op: str | None, *, revert: bool = False) -> Report:
        """Finish (or undo) one incomplete operation, or every one."""

        async def act(session: _Session, item: Item) -> Outcome:
            view = session.journal.state.get(item.name)
            if view is None:
                raise UsageError(
                    f"no operation {item.name!r} in the journal (see `txtool history`)"
                )
            item.tool = view.subject
            view = await session.installer.resume(view.id, revert=revert)
            item.op_state = view.state
            verb = "reverted" if view.state == "reverted" else "finished"
            return Outcome(view.subject, verb, op=view.id, kind=view.kind)

        def targets(session: _Session) -> list[Item]:
            if op is not None:
                view = session.journal.state.get(op)
                return [Item(view.id, tool=view.subject) if view else Item(op)]
            return [Item(v.id, tool=v.subject) for v in session.journal.state.incomplete()]

        return self._session([], act, jobs=1, items_of=targets)

    def compact(self) -> int:
        journal = self._open()
        try:
            return journal.compact()
        finally:
            journal.close()

    # -- the session ---------------------------------------------------------------------

    def _open(self) -> Journal:
        """Open the journal of a home that is ours alone, shared with other txtool processes
        (each tool's operations serialize under its subject lock), and refuse a journal that
        names paths outside the directories txtool owns, before anything changes."""

        self.loc.secure()
        journal = Journal.open(
            self.loc.journal_dir,
            timeout=self.lock_timeout,
            on_wait=self._waiting,
            warn=lambda m: self.notify(f"warning: {m}"),
            retain=current,
            shared=True,
        )
        try:
            check_journal(self.loc, journal.state)
        except BaseException:
            journal.close()
            raise
        return journal

    def _waiting(self, pid: int | None) -> None:
        self.notify(msg.waiting_for(pid))

    def _session(
        self,
        items: list[Item],
        act: Callable[[_Session, Item], Awaitable[Outcome]],
        *,
        jobs: int,
        items_of: Callable[[_Session], list[Item]] | None = None,
    ) -> Report:
        """Clean-ups of tools no one else is working on, then each item through ``act``
        under its tool's lock, ``jobs`` at a time.

        A Ctrl-C before the journal is open raises KeyboardInterrupt (nothing changed); from
        then on signals are recorded, and inside the run they cancel it between journal
        writes. Whatever was cut short is settled from the journal, never guessed.
        """
        journal = self._open()
        report = Report(items)
        try:
            self.guard.defer()  # the journal is open: from here on a signal stops nothing midway
            with Reporter(self.live) as reporter:
                session = _Session(
                    Installer.create(self.loc, journal, observer=reporter), self.guard
                )

                async def main() -> None:
                    await self._cleanups(session, report)
                    if items_of is not None:
                        report.items[:] = items_of(session)
                    await self._run_items(session, report, act, jobs)

                try:
                    anyio.run(
                        lambda: interruptible(main, journal=journal, on_signal=self.guard.record)
                    )
                except Interrupted:
                    self._settle_interrupted(session, report)
                self._compact(journal, report)
        finally:
            builds.release_ready(FileSystem())  # made for a build that did not come
            journal.close()
        if self.guard.received and report.code == OK:
            report.late_signal = self.guard.received[0]
        return report

    async def _cleanups(self, session: _Session, report: Report) -> None:
        """The pending clean-ups of every tool whose lock is free now; a busy tool's are
        left to the process that holds it (each item also cleans up its own tool)."""
        for tool in sorted(session.installer.engine.cleanup_subjects()):
            try:
                async with session.journal.subject(tool, timeout=0):
                    await self._cleanup(session, report, tool)
            except LockBusy:
                continue

    async def _cleanup(self, session: _Session, report: Report, tool: str) -> None:
        """Under the tool's lock: finish what its committed operations left to clean up."""
        try:
            await session.installer.engine.finish_cleanups(subjects={tool})
        except OSError as e:
            report.warnings.append(msg.cleanup_failed(describe_error(e)))

    def _compact(self, journal: Journal, report: Report) -> None:
        try:
            if journal.closed_in_log() >= COMPACT_EVERY:
                journal.compact()
        except (OSError, JournalError) as e:
            report.warnings.append(msg.compaction_failed(describe_error(e)))

    async def _run_items(
        self,
        session: _Session,
        report: Report,
        act: Callable[[_Session, Item], Awaitable[Outcome]],
        jobs: int,
    ) -> None:
        """One runner for every command: each item carries on past another's failure, and
        runs under its tool's lock (an item without a tool is bad input that ``act`` refuses)."""
        limiter = anyio.CapacityLimiter(jobs)

        async def one(item: Item) -> None:
            async with limiter:
                if session.guard.received:
                    item.code, item.error = (
                        INTERRUPTED,
                        msg.not_attempted(item.tool or item.name),
                    )
                    return
                # "interrupted" until it ends: a cancellation leaves it so, to be settled.
                item.since, item.status = session.journal.state.last_seq, "interrupted"
                lock = (
                    session.journal.subject(item.tool, on_wait=self._waiting)
                    if item.tool
                    else contextlib.nullcontext()
                )
                try:
                    async with lock:
                        # Only what is written from here on is this item's (the tool's
                        # earlier operations, by other processes, are folded in by now).
                        item.since = session.journal.state.last_seq
                        # What other processes appended since the open is checked as the
                        # open checked the rest, before anything acts on it.
                        session.checked = check_journal(
                            self.loc, session.journal.state, since=session.checked
                        )
                        if item.tool:
                            await self._cleanup(session, report, item.tool)
                        item.outcome = await act(session, item)
                except Exception as e:
                    self._settle(session, item, e)
                else:
                    item.status = "done"

        async with anyio.create_task_group() as tg:
            for item in report.items:
                tg.start_soon(one, item)

    async def _recover(self, session: _Session, item: Item, command: Command) -> Outcome | None:
        """Re-running the command is the fix: take the tool's interrupted operation the
        way the command implies. Return the outcome when that was the command's work."""
        view = session.installer.planner().incomplete.get(item.tool or "")
        if view is None:
            return None
        direction = recovery_direction(command, view.kind)
        view = await session.installer.resume(view.id, revert=direction == "revert")
        item.notes.append(msg.recovered(view, forward=direction == "forward"))
        self.notify(item.notes[-1])
        if direction == "forward" and view.kind == command:
            now = session.installer.planner().tools.get(view.subject)
            return Outcome(view.subject, "resumed", now.version if now else None, op=view.id)
        item.since = session.journal.state.last_seq
        return None

    async def _run_plan(self, session: _Session, item: Item, plan: Plan | Outcome) -> Outcome:
        if isinstance(plan, Outcome):
            return plan
        item.plan = plan
        return await session.installer.run(plan)

    def _settle(self, session: _Session, item: Item, error: Exception) -> None:
        """An item's error, read against the journal: after ``committed`` it is a warning."""
        view = session.op_since(item)
        message = describe_error(error)
        if view is not None and view.committed:
            item.status, item.outcome = "done", _committed(item, view)
            item.notes.append(f"warning: {msg.after_commit(view, message)}")
            return
        own = isinstance(error, (UsageError, BadName, NeedsResume))  # already names the tool
        item.error = str(error) if own else f"{item.tool or item.name}: {message}"
        if view is not None and view.incomplete:
            item.status, item.code = "incomplete", INCOMPLETE
            if not isinstance(error, OperationIncomplete):
                item.error += f"; {msg.how_to_fix(view)}"
        elif (
            isinstance(error, (OperationFailed, UsageError, BadName, NeedsResume))
            or view is not None
        ):
            item.status, item.code = "failed", code_of(error)
        else:
            # Stopped before its operation wrote anything (e.g. the journal cannot be written).
            item.status, item.code = "not-attempted", code_of(error)
            if isinstance(error, (OSError, JournalError)):
                item.code = FAILED
                item.error += " (nothing was changed)"

    def _settle_interrupted(self, session: _Session, report: Report) -> None:
        """After Ctrl-C: each item in flight is done, undone on the spot, or incomplete."""
        for item in report.items:
            if item.status == "not-attempted" and item.code == OK:
                item.code, item.error = (
                    INTERRUPTED,
                    msg.not_attempted(item.tool or item.name),
                )
            if item.status != "interrupted":
                continue
            view = session.op_since(item)
            if view is not None and view.committed:
                item.status, item.outcome = "done", _committed(item, view)
                continue
            item.code = INTERRUPTED
            if view is None or not view.incomplete:
                item.error = msg.nothing_changed(item.tool or item.name)
            elif _nothing_to_undo(view) and self._revert_now(session, view):
                item.error = msg.closed_as_reverted(view)
            else:
                item.status, item.code = "incomplete", INCOMPLETE
                item.error = msg.left_incomplete(view)

    def _revert_now(self, session: _Session, view: OperationView) -> bool:
        """Close an operation with nothing to undo as reverted, under its tool's lock again;
        False if that failed too (a second Ctrl-C, the journal unwritable, the tool busy):
        it then stays incomplete, as after a crash."""

        async def revert() -> None:
            async with session.journal.subject(view.subject):
                now = session.journal.state.get(view.id)
                if now is not None and now.incomplete:
                    await session.installer.resume(view.id, revert=True)

        try:
            anyio.run(lambda: interruptible(revert))
        except (Interrupted, OSError, TxError):
            return False
        now = session.journal.state.get(view.id)
        return now is not None and now.state == "reverted"


def _committed(item: Item, view: OperationView) -> Outcome:
    """What a committed operation did, for an item whose run did not return normally."""
    if item.plan is not None:
        return outcome(item.plan, view)
    return Outcome(view.subject, "resumed", op=view.id)  # the operation it finished first


def _every_tool(session: _Session) -> list[Item]:
    """``--all``: every installed tool, and every one left incomplete, read under the lock."""
    planner = session.installer.planner()
    return [Item(t, tool=t) for t in sorted(set(planner.tools) | set(planner.incomplete))]


def _tool_of(spec: str) -> str:
    return canonical(names.requirement(spec).name)


def _nothing_to_undo(view: OperationView) -> bool:
    touched = [p.type for p, s in zip(view.plan, view.steps, strict=True) if s != "pending"]
    return all(kind in PURE_STEPS for kind in touched)
