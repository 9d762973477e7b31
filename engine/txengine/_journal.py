"""The durable journal: framed JSON Lines, fsynced appends with group commit, compaction.

On disk, a journal is a directory holding ``journal.log`` (records appended as operations
run), ``journal.snapshot`` (closed operations folded into one summary each, plus the records
of operations still open, written atomically by :meth:`Journal.compact`), and the lock.
Every line is ``CRC32HEX JSON\\n``: the checksum covers the JSON, so each record is checked
on its own. See ``docs/journal-format.md``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import msgspec

from . import _failpoints as failpoints
from ._errors import (
    IllegalTransition,
    JournalCorrupt,
    JournalError,
    JournalTooNew,
    JournalUnreadable,
)
from ._events import (
    EVENT_TYPES,
    FORMAT_VERSION,
    Committed,
    Header,
    Line,
    OpSummary,
    Record,
    Reverted,
    RevertFailed,
    StepRevertStarted,
    StepStarted,
)
from ._fs import FileSystem, atomic_write, sweep_temps
from ._lock import JournalLock
from ._private import lock_private_dir
from ._replay import JournalState

LOG_NAME = "journal.log"
SNAPSHOT_NAME = "journal.snapshot"

Warn = Callable[[str], None]
R = TypeVar("R", bound=Record)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Line).decode
_fsync_data = getattr(os, "fdatasync", os.fsync)


class _Versioned(msgspec.Struct):
    v: int = 0


_decode_version = msgspec.json.Decoder(_Versioned).decode

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


def frame(entry: msgspec.Struct) -> bytes:
    """One journal line: checksum, space, JSON, newline."""
    payload = _encode(entry)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _readable_frame(rec: Record) -> bytes:
    """``frame(rec)``, refused unless it decodes back: nothing written through the public
    ``append`` can make the journal unreadable (a list as a result, an id of another shape)."""
    try:
        data = frame(rec)
        _decode(memoryview(data)[9:-1])
    except (TypeError, msgspec.EncodeError, msgspec.ValidationError) as e:
        tag = rec.__struct_config__.tag
        raise JournalError(f"refusing a {tag} record that would not read back: {e}") from None
    return data


def _check_line(line: bytes) -> bytes | None:
    """The JSON payload of a framed line, or None when the frame or checksum is wrong."""
    if len(line) < 10 or line[8] != 0x20:
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    payload = line[9:]
    return payload if zlib.crc32(payload) == crc else None


def scan(path: Path, data: bytes, *, allow_torn_tail: bool) -> tuple[list[Line], int]:
    """Decode every line of ``data``; return the entries and the length of the valid prefix.

    Lines that fail their check with no valid line after them are a torn tail (a crash
    mid-append): they end the scan when ``allow_torn_tail``. A failing line followed by a
    valid one is corruption, and so is anything from a newer format: both raise.
    """
    # The hot loop of replay. It checks the frame as _check_line does, inline (that saves
    # a call per line), and works out byte offsets only when a line is bad.
    entries: list[Line] = []
    keep, decode, crc32, newest = entries.append, _decode, zlib.crc32, FORMAT_VERSION
    lines = data.split(b"\n")
    tail = lines.pop()  # the piece after the final newline: empty unless torn
    for i, line in enumerate(lines):
        payload = line[9:]
        try:
            good = len(line) > 9 and line[8] == 0x20 and int(line[:8], 16) == crc32(payload)
        except (IndexError, ValueError):
            good = False
        if not good:
            pos = _offset(data, i)
            return _torn(path, data, pos, "checksum mismatch", allow_torn_tail, entries)
        try:
            entry = decode(payload)
        except msgspec.DecodeError as e:
            _refuse_newer(path, payload)
            raise JournalCorrupt(path, _offset(data, i), f"undecodable record ({e})") from None
        if entry.v > newest:
            raise JournalTooNew(path, entry.v, newest)
        keep(entry)
    end = len(data) - len(tail)
    if tail:
        return _torn(path, data, end, "incomplete last line", allow_torn_tail, entries)
    return entries, end


def _refuse_newer(path: Path, payload: bytes) -> None:
    try:
        version = _decode_version(payload).v
    except msgspec.DecodeError:
        return
    if version > FORMAT_VERSION:
        raise JournalTooNew(path, version, FORMAT_VERSION)


def _torn(
    path: Path, data: bytes, pos: int, reason: str, allowed: bool, entries: list[Line]
) -> tuple[list[Line], int]:
    if not allowed:
        raise JournalCorrupt(path, pos, reason)
    for line in data[pos:].split(b"\n")[1:-1]:
        if _check_line(line) is not None:
            raise JournalCorrupt(path, pos, reason)
    return entries, pos


def _read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:  # permission denied, a directory in its place, an I/O error
        raise JournalUnreadable(path, e.strerror or str(e)) from None


def _header(path: Path, entries: list[Line], kind: str) -> Header:
    if not entries or not isinstance(entries[0], Header) or entries[0].kind != kind:
        raise JournalCorrupt(path, 0, f"missing {kind} header")
    return entries[0]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while replay builds its many small objects.

    Records and views hold no reference cycles, so the collector would find nothing, yet
    it would rescan every object built so far, again and again: a quarter of replay's time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fold(
    directory: Path, warn: Warn | None, *, repair: bool
) -> tuple[JournalState, list[Record], int]:
    """Read snapshot and log into a state. Returns the state, live records, and log length."""
    with _gc_paused():
        return _fold_files(directory, warn, repair=repair)


def _fold_files(
    directory: Path, warn: Warn | None, *, repair: bool
) -> tuple[JournalState, list[Record], int]:
    state = JournalState()
    live: list[Record] = []
    snap_path = directory / SNAPSHOT_NAME
    snap = _read(snap_path)
    if snap is not None:
        entries, _ = scan(snap_path, snap, allow_torn_tail=False)
        _header(snap_path, entries, "snapshot")
        for entry in entries[1:]:
            if isinstance(entry, OpSummary):
                state.add_summary(entry)
        _replay(state, entries, snap_path, snap, 0, live)
    log_path = directory / LOG_NAME
    data = _read(log_path)
    if data is None:
        return state, live, 0
    entries, end = scan(log_path, data, allow_torn_tail=True)
    if end < len(data) and warn is not None:
        action = "cut off" if repair else "ignored"
        warn(
            f"{log_path}: {action} {len(data) - end} bytes of a torn last record at byte {end}"
            " (a write interrupted by a crash)"
        )
    if not entries:
        return state, live, 0
    _header(log_path, entries, "log")
    _replay(state, entries, log_path, data, state.last_seq, live)
    return state, live, end


def _replay(
    state: JournalState, entries: list[Line], path: Path, data: bytes, base: int, live: list[Record]
) -> None:
    """Fold the records among ``entries[1:]`` above sequence ``base`` into ``state``."""
    i = 0
    apply, keep, records = state.apply, live.append, _RECORD_TYPES
    try:
        for i, entry in enumerate(entries[1:], 1):  # noqa: B007 (i names the culprit)
            if type(entry) in records:
                if entry.seq > base:  # type: ignore[union-attr]  # at or below: in the snapshot
                    apply(entry)  # type: ignore[arg-type]
                    keep(entry)  # type: ignore[arg-type]
            elif isinstance(entry, Header):
                raise IllegalTransition("-", "-", "header", "a header in the middle of a file")
            elif path.name == LOG_NAME:
                raise IllegalTransition(entry.op, "-", "summary", "a summary in the log")
    except IllegalTransition as e:
        raise JournalCorrupt(path, _offset(data, i), str(e)) from None
    state.last_seq = max(state.last_seq, _base_of(entries))


_RECORD_TYPES = frozenset(EVENT_TYPES)


def _base_of(entries: list[Line]) -> int:
    head = entries[0]
    return head.base_seq if isinstance(head, Header) else 0


def _offset(data: bytes, line_index: int) -> int:
    pos = 0
    for _ in range(line_index):
        pos = data.index(b"\n", pos) + 1
    return pos


def dump(directory: Path | str) -> Iterator[tuple[str, bytes]]:
    """Every line of the journal's files as ``(file name, JSON payload)``, snapshot first,
    without checking them (``load`` checks): for showing a journal as it is on disk."""
    directory = Path(directory)
    for name in (SNAPSHOT_NAME, LOG_NAME):
        data = _read(directory / name)
        for line in (data or b"").splitlines():
            yield name, line[9:]


def load(directory: Path | str, warn: Warn | None = None) -> JournalState:
    """Fold a journal without taking its lock or changing it (for read-only commands)."""
    state, _, _ = _fold(Path(directory), warn, repair=False)
    return state


class Journal:
    """A journal opened for writing: holds the lock, the folded state and the log's fd.

    Appends are checked against the lifecycle, written with one ``os.write`` and made
    durable before they return. Concurrent async appends share one ``fdatasync``.
    """

    def __init__(self, directory: Path, lock: JournalLock, fs: FileSystem) -> None:
        self.directory = directory
        self.path = directory / LOG_NAME
        self.fs = fs
        self._lock = lock
        self._fd = -1
        self._records: list[Record] = []
        self.state = JournalState()
        self._written = 0
        self._synced = 0
        self._broken: BaseException | None = None

    @classmethod
    def open(
        cls,
        directory: Path | str,
        *,
        timeout: float = 30.0,
        on_wait: Callable[[int | None], None] | None = None,
        warn: Warn | None = None,
        fs: FileSystem | None = None,
    ) -> Journal:
        """Lock the journal at ``directory`` (created if missing), sweep the temp files of
        killed writers, fold it, cut a torn tail."""
        directory = Path(directory)
        fs = fs or FileSystem()
        lock = lock_private_dir(fs, directory, timeout, on_wait)
        journal = cls(directory, lock, fs)
        try:
            sweep_temps(directory, fs)  # a snapshot or log temp that a kill left
            journal._load(warn)
        except BaseException:
            lock.release()
            raise
        return journal

    def _load(self, warn: Warn | None) -> None:
        self.state, self._records, end = _fold(self.directory, warn, repair=True)
        self._written = self._synced = self.state.last_seq
        if end == 0:
            self._new_log()
            return
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | _O_BINARY)
        if os.fstat(self._fd).st_size != end:
            os.ftruncate(self._fd, end)
            _fsync_data(self._fd)

    def _new_log(self) -> None:
        """Replace the log with one holding only a header, atomically."""
        header = Header(kind="log", created=time.time(), base_seq=self.state.last_seq)
        atomic_write(self.fs, self.path, frame(header), 0o600)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | _O_BINARY)

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
        return secrets.token_hex(6)

    # -- appending ---------------------------------------------------------------------

    def _write(self, cls: type[R], op: str, fields: dict[str, Any]) -> R:
        """Check and write one record; it is not yet durable. Never awaits."""
        if self._broken is not None:
            raise JournalError(f"an earlier write to {self.path} failed: {self._broken}")
        rec = cls(seq=self.state.last_seq + 1, op=op, ts=time.time(), **fields)
        before, written, _ = _POINTS[cls]
        failpoints.hit(before, self.path)
        data = _readable_frame(rec)
        self.state.apply(rec)  # raises on an illegal record, before anything is written
        size = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except BaseException as e:
            # The in-memory state already holds the record: this journal object can no
            # longer be trusted, so it refuses further appends (the file is cut back).
            self._broken = e
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                pass
            raise
        self._records.append(rec)
        self._written = rec.seq
        failpoints.hit(written, self.path)
        return rec

    def _sync(self) -> None:
        target = self._written
        try:
            _fsync_data(self._fd)
        except BaseException as e:
            self._broken = e
            raise
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

    def compact(self) -> int:
        """Fold closed operations into the snapshot; return how many were folded.

        Crash-safe at every point: the snapshot is replaced atomically and says up to which
        sequence number it covers, so a log not yet emptied is skipped up to there on load.
        """
        folded = self.closed_in_log()
        if not folded:
            return 0
        live = [r for r in self._records if not self.state.ops[r.op].closed]
        lines = [frame(Header(kind="snapshot", created=time.time(), base_seq=self.state.last_seq))]
        lines += [frame(v.summary()) for v in self.state if v.closed]
        lines += [frame(r) for r in live]
        atomic_write(self.fs, self.directory / SNAPSHOT_NAME, b"".join(lines), 0o600)
        for view in self.state:
            if view.closed:
                view.compacted = True
        self._records = live
        self._new_log()
        return folded


_O_BINARY = getattr(os, "O_BINARY", 0)
