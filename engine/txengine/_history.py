"""The history segment: every closed operation, appended by compaction, read by history readers.

``journal.history`` starts with a ``history`` header, then holds one ``summary`` per closed
operation in the order they closed (increasing ``seq``). Compaction only appends to it, so
its cost follows the operations closed since the last compaction, not all of history; the
snapshot keeps what the embedder calls current state, and commands that fold the journal
never read this file. ``txengine.iter_history`` streams it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import JournalCorrupt
from ._events import Header, OpSummary
from ._framing import HISTORY_NAME, Warn, check_line, decode_line, frame
from ._replay import OperationView

if TYPE_CHECKING:
    from ._fs import FileSystem

_fsync_data = getattr(os, "fdatasync", os.fsync)
_O_BINARY = getattr(os, "O_BINARY", 0)


def _tail(path: Path) -> tuple[int, int] | None:
    """Length of the valid prefix of the segment and the ``seq`` of its last summary.

    Reads back from the end only as far as the last valid line, so it costs about one
    summary, not the file; what lies beyond that line is a torn tail (a crash mid-append).
    None when there is no segment yet.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_BINARY)
    except FileNotFoundError:
        return None
    try:
        size, window = os.fstat(fd).st_size, 1 << 16
        while True:
            start = max(0, size - window)
            chunk = os.pread(fd, size - start, start)
            pos = start + chunk.rfind(b"\n") + 1  # just past the last newline
            lines = chunk[: pos - start].split(b"\n")[:-1]
            for line in reversed(lines[0 if start == 0 else 1 :]):  # a window's first may be cut
                payload = check_line(line)
                if payload is not None:
                    entry = decode_line(path, payload, pos - len(line) - 1)
                    return pos, entry.seq if isinstance(entry, OpSummary) else 0
                pos -= len(line) + 1
            if start == 0:
                raise JournalCorrupt(path, 0, "missing history header")
            window *= 4
    finally:
        os.close(fd)


def archive(fs: FileSystem, directory: Path, views: Iterable[OperationView]) -> None:
    """Append the summaries of the closed ``views`` that the segment does not hold yet.

    Durable before it returns. The segment is created atomically (temp, fsync, rename);
    later batches are appended after cutting off a torn tail, so a crash at any point
    leaves a segment that holds each operation once and whose valid prefix is whole.
    """
    # Imported here: readers of the segment (every command's fold) never write it.
    from . import _failpoints as failpoints
    from ._fs import atomic_write

    path = directory / HISTORY_NAME
    tail = _tail(path)
    last = 0 if tail is None else tail[1]
    new = closed_after(views, last)
    if not new:
        return
    data = b"".join(frame(v.summary()) for v in new)
    if tail is None:
        head = frame(Header(kind="history", created=time.time()))
        atomic_write(fs, path, head + data, 0o600)
        return
    fd = os.open(path, os.O_WRONLY | _O_BINARY)
    try:
        if os.fstat(fd).st_size != tail[0]:
            os.ftruncate(fd, tail[0])
        failpoints.hit("history.append", path)
        view = memoryview(data)
        offset = tail[0]
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
        failpoints.hit("history.written", path)
        _fsync_data(fd)
        failpoints.hit("history.synced", path)
    finally:
        os.close(fd)


def closed_after(views: Iterable[OperationView], seq: int) -> list[OperationView]:
    """The closed ``views`` whose last record is above ``seq``, in the order they closed."""
    return sorted((v for v in views if v.closed and v.last_seq > seq), key=_last_seq)


def _last_seq(view: OperationView) -> int:
    return view.last_seq


def summaries(path: Path, warn: Warn | None) -> Iterator[OpSummary]:
    """The summaries of the segment at ``path``, oldest first, one line read at a time.

    A torn last line is skipped with a warning; a bad line followed by a good one raises
    :class:`~txengine.JournalCorrupt` naming its offset. Nothing when there is no segment.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 (a generator holds it across yields)
    except FileNotFoundError:
        return
    with f:
        offset, bad = 0, -1
        for n, line in enumerate(f):
            payload = check_line(line[:-1]) if line.endswith(b"\n") else None
            if payload is None:
                bad = offset if bad < 0 else bad
            elif bad >= 0:
                raise JournalCorrupt(path, bad, "checksum mismatch")
            else:
                entry = decode_line(path, payload, offset)
                if n == 0:
                    if not (isinstance(entry, Header) and entry.kind == "history"):
                        raise JournalCorrupt(path, 0, "missing history header")
                elif isinstance(entry, OpSummary):
                    yield entry
                else:
                    raise JournalCorrupt(path, offset, "only summaries follow the header")
            offset += len(line)
        if bad >= 0 and warn is not None:
            warn(f"{path}: ignored {offset - bad} bytes of a torn last record at byte {bad}")
