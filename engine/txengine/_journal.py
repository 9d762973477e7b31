"""The durable journal: framed JSON Lines, fsynced appends with group commit, compaction.

On disk, a journal is a directory holding ``journal.log`` (records appended as operations
run), ``journal.snapshot`` (current state: a summary of each closed operation that still
defines it, plus the records of operations still open, written atomically by
:meth:`Journal.compact`), ``journal.history`` (every closed operation, appended by
compaction, read only by :func:`iter_history`), and the lock. Every line is framed by
:mod:`txengine._framing`. See ``docs/journal-format.md``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import anyio
import anyio.lowlevel
import msgspec

from . import _failpoints as failpoints
from ._errors import IllegalTransition, JournalCorrupt, JournalError, LockBusy
from ._events import (
    EVENT_TYPES,
    Committed,
    Header,
    Line,
    OpStarted,
    Record,
    Reverted,
    RevertFailed,
    StepDone,
    StepRevertStarted,
    StepStarted,
)
from ._framing import (
    HISTORY_NAME,
    LOG_NAME,
    SNAPSHOT_NAME,
    Warn,
    frame,
    offset_of,
    scan,
)
from ._fs import FileSystem, atomic_write, sweep_temps
from ._history import archive
from ._lock import JournalLock, subject_lock
from ._private import lock_private_dir
from ._read import RECORD_TYPES, fold, load
from ._replay import Checkpoint, JournalState, OperationView

__all__ = ["HISTORY_NAME", "LOG_NAME", "SNAPSHOT_NAME", "Journal", "frame", "load", "scan"]

R = TypeVar("R", bound=Record)

STASH_NAME = "stash"  # where the engine stashes what steps move aside, one dir per operation

#: What compaction keeps in the snapshot: given the closed operations of one subject,
#: oldest first, the ones that still define its current state (the rest are history only).
Retain = Callable[[Sequence[OperationView]], Iterable[OperationView]]


def latest_committed(views: Sequence[OperationView]) -> Iterable[OperationView]:
    """The default :data:`Retain`: the latest committed operation of the subject, if any."""
    return [v for v in views if v.committed][-1:]


_fsync_data = getattr(os, "fdatasync", os.fsync)

# Failpoint names, built once: before the write, after the write, after the append returned.
_POINTS = {
    cls: tuple(
        f"journal.{when}.{cls.__struct_config__.tag}" for when in ("before", "written", "after")
    )
    for cls in EVENT_TYPES
}


#: Records that are durable before ``append`` returns: each precedes a side effect (the
#: intent of a step or of its undo) or a result that is reported (committed, reverted, or
#: a revert that failed). The others become durable with the next of these, as one
#: fdatasync covers every earlier write: losing one to a power cut costs at most a probe
#: on resume, since nothing acted on it yet. So an operation of S steps costs S+1 syncs.
SYNCED: frozenset[type[Record]] = frozenset(
    {StepStarted, StepRevertStarted, Committed, Reverted, RevertFailed}
)


_decode_line = msgspec.json.Decoder(Line).decode


_FREE_FORM: frozenset[type[Record]] = frozenset({OpStarted, StepStarted, StepDone})


def _readable_frame(rec: Record) -> bytes:
    """``frame(rec)``, refused unless it decodes back: nothing written through the public
    ``append`` can make the journal unreadable (a list as a result, an id of another shape).
    Only records with free-form fields (a plan, an intent, a result) are decoded again: the
    others hold typed scalars that always read back, and the append path is hot."""
    try:
        data = frame(rec)
        if type(rec) in _FREE_FORM:
            _decode_line(memoryview(data)[9:-1])
    except (TypeError, msgspec.EncodeError, msgspec.ValidationError) as e:
        tag = rec.__struct_config__.tag
        raise JournalError(f"refusing a {tag} record that would not read back: {e}") from None
    return data


class Journal:
    """A journal opened for writing: holds the lock, the folded state and the log's fd.

    Appends are checked against the lifecycle, written with one ``os.write`` and made
    durable before they return. Concurrent async appends share one ``fdatasync``.
    """

    def __init__(
        self, directory: Path, lock: JournalLock, fs: FileSystem, retain: Retain = latest_committed
    ) -> None:
        self.directory = directory
        #: What :meth:`compact` keeps as current state (see :data:`Retain`).
        self.retain = retain
        self.path = directory / LOG_NAME
        self.fs = fs
        self._lock = lock
        self._fd = -1
        self._records: list[Record] = []
        self.state = JournalState()
        self._written = 0
        self._synced = 0
        self._broken: BaseException | None = None
        #: Records written since the last fdatasync, oldest first.
        self._unsynced: list[_Written] = []
        #: Opened ``shared``: the journal lock is held only around appends and compaction.
        self.shared = False
        self._warn: Warn | None = None
        self._end = 0  # the log's length as this object last saw it
        self._ino = -1  # and its inode: a compaction elsewhere replaces the file

    @classmethod
    def open(
        cls,
        directory: Path | str,
        *,
        timeout: float = 30.0,
        on_wait: Callable[[int | None], None] | None = None,
        warn: Warn | None = None,
        fs: FileSystem | None = None,
        retain: Retain = latest_committed,
        shared: bool = False,
    ) -> Journal:
        """Lock the journal at ``directory`` (created private if missing), sweep the temp
        files of killed writers, fold it, cut a torn tail.

        ``retain`` tells compaction which closed operations still define current state
        (default: :func:`latest_committed`); the others live on in the history segment only.

        By default the lock is held until :meth:`close`: one process writes at a time.
        ``shared=True`` holds it only while appending (each append first folds what other
        processes appended, so the log stays one ordered truth) and compacting; operations
        then serialize by subject instead, under :meth:`subject`.
        """
        directory = Path(directory)
        fs = fs or FileSystem()
        lock = lock_private_dir(fs, directory, timeout, on_wait)
        journal = cls(directory, lock, fs, retain)
        journal.shared, journal._warn = shared, warn
        try:
            sweep_temps(directory, fs)  # a snapshot or log temp that a kill left
            journal._load()
        except BaseException:
            lock.release()
            raise
        if shared:
            lock.release()
        return journal

    def _load(self) -> None:
        self.state, self._records, end = fold(self.directory, self._warn, repair=True)
        self._unsynced = []  # a log read again: nothing in it is this object's to take back
        self._written = self._synced = self.state.last_seq
        if end == 0:
            self._new_log()
            return
        self._open_log()
        if self._end != end:
            os.ftruncate(self._fd, end)
            _fsync_data(self._fd)
            self._end = end

    def _open_log(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | _O_BINARY)
        st = os.fstat(self._fd)
        self._end, self._ino = st.st_size, st.st_ino

    def _new_log(self) -> None:
        """Replace the log with one holding only a header, atomically."""
        self._unsynced = []  # what they held is in the snapshot now, made durable
        header = Header(kind="log", created=time.time(), base_seq=self.state.last_seq)
        atomic_write(self.fs, self.path, frame(header), 0o600)
        self._open_log()

    def _catch_up(self) -> None:
        """Fold what other processes appended since this object last looked (lock held).

        A log replaced by another process's compaction is folded again from the start;
        views of operations that did not change in between stay the same objects, so a
        running operation keeps its view. A torn tail left by a process that died in the
        middle of an append is cut off before anything is written after it.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or st.st_ino != self._ino:
            before = self.state.ops
            self._load()
            for op, view in self.state.ops.items():
                mine = before.get(op)
                if mine is not None and mine.last_seq == view.last_seq:
                    self.state.ops[op] = mine
            return
        if st.st_size == self._end:
            return
        with open(self.path, "rb") as f:
            f.seek(self._end)
            data = f.read()
        entries, end = scan(self.path, data, allow_torn_tail=True)
        i = 0
        try:
            for i, rec in enumerate(entries):  # noqa: B007 (i names the culprit)
                if type(rec) not in RECORD_TYPES:
                    raise IllegalTransition("-", "-", "header", "not a record, in the log")
                self.state.apply(rec)  # type: ignore[arg-type]
                self._records.append(rec)  # type: ignore[arg-type]
        except IllegalTransition as e:
            raise JournalCorrupt(self.path, self._end + offset_of(data, i), str(e)) from None
        if end < len(data):
            os.ftruncate(self._fd, self._end + end)
            _fsync_data(self._fd)
        self._end += end

    def warn(self, message: str) -> None:
        """Pass ``message`` to the ``warn`` callback given to :meth:`open`, if any."""
        if self._warn is not None:
            self._warn(message)

    def close(self) -> None:
        """Close the log and release the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def new_op_id() -> str:
        """A fresh operation id: 12 hex digits, the only shape a journal accepts."""
        # os.urandom is what secrets.token_hex reads; importing secrets would load hashlib's
        # OpenSSL binding and random into every writing process for nothing else.
        return os.urandom(6).hex()

    # -- appending ---------------------------------------------------------------------

    def _write(self, cls: type[R], op: str, fields: dict[str, Any]) -> R:
        """Check and write one record; it is not yet durable. Never awaits."""
        if not self.shared:
            return self._write_locked(cls, op, fields)
        with self._lock.hold():
            self._catch_up()
            return self._write_locked(cls, op, fields)

    def _write_locked(self, cls: type[R], op: str, fields: dict[str, Any]) -> R:
        if self._broken is not None:
            raise JournalError(f"an earlier write to {self.path} failed: {self._broken}")
        rec = cls(seq=self.state.last_seq + 1, op=op, ts=time.time(), **fields)
        before, written, _ = _POINTS[cls]
        failpoints.hit(before, self.path)
        data = _readable_frame(rec)
        saved = self.state.checkpoint(rec)
        self.state.apply(rec)  # raises on an illegal record, before anything is written
        size = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            done = os.write(self._fd, data)
            while done < len(data):  # a short write: a signal, or a disk filling up
                done += os.write(self._fd, memoryview(data)[done:])
            failpoints.hit(written, self.path)
        except BaseException as e:
            # A full disk, or a signal: the append failed, so the record must not count.
            self._take_back([_Written(size, size + len(data), rec, saved)], e, locked=True)
            raise
        self._records.append(rec)
        self._unsynced.append(_Written(size, size + len(data), rec, saved))
        self._written = rec.seq
        self._end = size + len(data)
        return rec

    def _take_back(self, records: list[_Written], error: BaseException, *, locked: bool) -> None:
        """Undo ``records`` (the last ones written, oldest first), which are not durable:
        take them out of the state, newest first, and cut the log back before the first.

        The state decides what is reported (a commit only once the state says committed),
        so it must never hold a record whose append raised. When the log cannot be cut
        back (or, shared, another process appended among or after them), this object
        refuses further appends. ``locked``: the caller holds the journal lock.
        """
        if not records:
            return
        for w in reversed(records):
            self.state.restore(w.saved)
        gone = {id(w.rec) for w in records}
        self._records = [r for r in self._records if id(r) not in gone]
        self._written = min(self._written, self.state.last_seq)
        start = records[0].start
        ours = all(a.end == b.start for a, b in itertools.pairwise(records))
        try:
            with contextlib.nullcontext() if locked or not self.shared else self._lock.hold():
                if not ours or (not locked and os.fstat(self._fd).st_size != records[-1].end):
                    raise OSError(f"another process appended to {self.path} among them")
                os.ftruncate(self._fd, start)
            self._end = start
        except OSError:
            self._broken = error

    def _sync(self) -> None:
        if self._broken is not None:
            raise JournalError(f"an earlier write to {self.path} failed: {self._broken}")
        target = self._written
        try:
            _fsync_data(self._fd)
        except BaseException as e:
            # What was written since the last sync may be lost (the kernel may drop the
            # pages after a failed fdatasync): none of it counts, and no retry is trusted.
            self._take_back(self._unsynced, e, locked=False)
            self._unsynced = []
            self._broken = e
            raise
        self._unsynced.clear()
        self._synced = max(self._synced, target)
        failpoints.hit("journal.synced", self.path)

    def append_sync(self, cls: type[R], op: str, **fields: Any) -> R:
        """Append one record and make it durable (for callers without an event loop)."""
        rec = self._write(cls, op, fields)
        self._sync()
        failpoints.hit(_POINTS[cls][2], self.path)
        return rec

    async def append(self, cls: type[R], op: str, **fields: Any) -> R:
        """Append one record; for the kinds in :data:`SYNCED`, return once it is durable.

        Cancellation waits for durability.
        """
        rec = self._write(cls, op, fields)
        if cls in SYNCED and self._synced < rec.seq:
            with anyio.CancelScope(shield=True):
                # Let other tasks write their records first, so that one fsync covers all.
                await anyio.lowlevel.checkpoint()
                if self._synced < rec.seq:
                    self._sync()
        failpoints.hit(_POINTS[cls][2], self.path)
        return rec

    # -- compaction --------------------------------------------------------------------

    def closed_in_log(self) -> int:
        """How many closed operations still have their records in the log."""
        return sum(1 for v in self.state if v.closed and not v.compacted)

    def compact(self, retain: Retain | None = None) -> int:
        """Move closed operations out of the log; return how many there were.

        Every closed operation not yet in the history segment is appended to it; the
        snapshot is rewritten with current state only: the summaries of the closed
        operations that ``retain`` (default: the journal's :attr:`retain`) keeps, one call
        per subject, and the records of operations still open. So the cost of compaction,
        and of every later load, follows live work, not history.

        Crash-safe at every point: the history segment is made durable first and holds each
        operation once (a batch appended again after a crash is skipped by ``seq``); the
        snapshot is replaced atomically and says up to which sequence number it covers, so
        a log not yet emptied is skipped up to there on load. A shared journal first folds
        what other processes appended.
        """
        if not self.shared:
            return self._compact(retain)
        with self._lock.hold():
            self._catch_up()
            return self._compact(retain)

    @contextlib.asynccontextmanager
    async def subject(
        self,
        name: str,
        *,
        timeout: float | None = None,
        on_wait: Callable[[int | None], None] | None = None,
    ) -> AsyncIterator[None]:
        """Hold the lock of subject ``name`` for an operation's whole run.

        With a ``shared`` journal, operations on different subjects run at once, from
        different processes; those on the same subject run one after the other. Waits up
        to ``timeout`` (default: the journal's), then raises :class:`~txengine.LockBusy`.
        If it is held, ``on_wait(pid)`` is called once first, as by :meth:`open`. On entry,
        the state holds what other processes did to the subject before.
        """
        wait = self._lock.timeout if timeout is None else timeout
        lock = subject_lock(self.directory, name, wait)
        # Polled, not waited for in a worker thread: a cancellation (Ctrl-C while another
        # process runs an operation on the subject) stops the wait at once, holding nothing.
        acquired = lock.try_acquire()
        if not acquired:
            if on_wait is not None:
                on_wait(lock.holder())
            with anyio.move_on_after(wait):
                while not (acquired := lock.try_acquire()):
                    await anyio.sleep(0.02)
        if not acquired:
            raise LockBusy(lock.path, lock.holder(), wait)
        try:
            if self.shared:
                with self._lock.hold():
                    self._catch_up()
            yield
        finally:
            lock.release()

    def _compact(self, retain: Retain | None) -> int:
        folded = self.closed_in_log()
        if not folded:
            return 0
        closed: dict[str, list[OperationView]] = {}
        for view in self.state:
            if view.closed:
                closed.setdefault(view.subject, []).append(view)
        archive(self.fs, self.directory, (v for views in closed.values() for v in views))
        keep = retain or self.retain
        kept = {v.id for views in closed.values() for v in keep(views) if v in views}
        # An operation whose stash is still on disk (its deletion failed) stays current
        # until a later run sweeps it: the sweep finds stashes by the operations it knows.
        stash = self.directory / STASH_NAME
        if stash.is_dir():
            kept |= {v.id for views in closed.values() for v in views if (stash / v.id).exists()}
        live = [r for r in self._records if not self.state.ops[r.op].closed]
        lines = [frame(Header(kind="snapshot", created=time.time(), base_seq=self.state.last_seq))]
        lines += [frame(v.summary()) for v in self.state if v.id in kept]
        lines += [frame(r) for r in live]
        atomic_write(self.fs, self.directory / SNAPSHOT_NAME, b"".join(lines), 0o600)
        for views in closed.values():
            for view in views:
                if view.id in kept:
                    view.compacted = True
                else:
                    del self.state.ops[view.id]
        self._records = live
        self._new_log()
        return folded


class _Written(NamedTuple):
    """A record this object wrote: where in the log, and the state before it."""

    start: int
    end: int
    rec: Record
    saved: Checkpoint


_O_BINARY = getattr(os, "O_BINARY", 0)
