"""Reading a journal without its lock: the fold of snapshot and log into current state
(:func:`load`, and :class:`~txengine.Journal` when it opens), the history streamed
(:func:`iter_history`), the raw lines (:func:`dump`).

Kept apart from the writer so that a reader imports what it reads with and nothing else:
no event loop library, no file primitives, no lock (read-only commands start faster).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import IllegalTransition, JournalCorrupt
from ._events import EVENT_TYPES, Header, OpSummary, Record
from ._framing import (
    HISTORY_NAME,
    LOG_NAME,
    SNAPSHOT_NAME,
    Chunks,
    Warn,
    header,
    offset_of,
    read,
    scan,
)
from ._history import closed_after, summaries
from ._replay import JournalState, OperationView


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while replay builds its many small objects.

    Records and views hold no reference cycles, so the collector would find nothing, yet
    it would rescan every object built so far, again and again: a quarter of replay's time.
    Nor is the state scanned once more on the way out (the first allocation after the pause
    would do it, a fifth of replay's time): what was built is long-lived, so it goes
    straight to the oldest generation, as a freeze and unfreeze put it, and the count of
    young objects starts again from zero. The program's own young objects go with it (any
    garbage among them waits for the next full collection); when the program keeps frozen
    objects itself, nothing is moved, since an unfreeze would release those too.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def fold(
    directory: Path, warn: Warn | None, *, repair: bool, keep: bool = True
) -> tuple[JournalState, list[Record], int]:
    """Read snapshot and log into a state. Returns the state, the live records (none unless
    ``keep``: each is dropped once folded) and the log's length."""
    with _gc_paused():
        return _fold_files(directory, warn, repair=repair, keep=keep)


def _fold_files(
    directory: Path, warn: Warn | None, *, repair: bool, keep: bool
) -> tuple[JournalState, list[Record], int]:
    state = JournalState()
    live: list[Record] | None = [] if keep else None
    snap_path = directory / SNAPSHOT_NAME
    snap = read(snap_path)
    if snap is not None:
        entries, _ = scan(snap_path, snap, allow_torn_tail=False)
        header(snap_path, entries, "snapshot")
        for entry in entries[1:]:
            if isinstance(entry, OpSummary):
                state.add_summary(entry)
        _replay(state, iter([entries]), snap_path, snap, 0, live)
    log_path = directory / LOG_NAME
    data = read(log_path)
    if data is None:
        return state, live or [], 0
    chunks = Chunks(log_path, data, allow_torn_tail=True)
    it = iter(chunks)
    first = next(it, None)
    if first:
        header(log_path, first, "log")
        _replay(state, itertools.chain([first], it), log_path, data, state.last_seq, live)
    end = chunks.end
    if end < len(data) and warn is not None:
        action = "cut off" if repair else "ignored"
        warn(
            f"{log_path}: {action} {len(data) - end} bytes of a torn last record at byte {end}"
            " (a write interrupted by a crash)"
        )
    return state, live or [], end


def _replay(
    state: JournalState,
    chunks: Iterator[list[Any]],  # records, and in a snapshot summaries, after the header
    path: Path,
    data: bytes,
    base: int,
    live: list[Record] | None,
) -> None:
    """Fold the records of a file's ``chunks`` (its header first) above sequence ``base``
    into ``state``; add them to ``live`` unless it is None."""
    # Records at or below ``base`` (already in the snapshot: a crash came between writing
    # it and emptying the log) can only be a prefix, since sequence numbers increase: they
    # are skipped at the start, not tested per record. A snapshot's summaries were folded
    # by the caller; anything else that is not a record is refused by apply.
    log, line, skipping, records = path.name == LOG_NAME, 0, True, RECORD_TYPES
    head = None
    for entries in chunks:
        rest = entries
        if head is None:
            head, rest = entries[0], entries[1:]
        if skipping:
            start = 0
            while start < len(rest) and type(rest[start]) in records and rest[start].seq <= base:
                start += 1
            skipping, rest = start == len(rest), rest[start:]
        if not log:
            rest = [e for e in rest if type(e) is not OpSummary]
        seen = state.last_seq
        try:
            deque(map(state.apply, rest), maxlen=0)  # the loop in C
        except IllegalTransition as e:
            # The culprit follows the last record applied, the one whose seq is the
            # state's (sequence numbers increase): found only now, the loop keeps no index.
            done = state.last_seq
            k = 0 if done == seen else 1 + next(i for i, x in enumerate(rest) if x.seq == done)
            at = line + next(i for i, x in enumerate(entries) if x is rest[k])
            raise JournalCorrupt(path, offset_of(data, at), str(e)) from None
        if live is not None:
            live.extend(rest)
        line += len(entries)
    state.last_seq = max(state.last_seq, head.base_seq if isinstance(head, Header) else 0)


RECORD_TYPES = frozenset(EVENT_TYPES)


def dump(directory: Path | str) -> Iterator[tuple[str, bytes]]:
    """Every line of the journal's files as ``(file name, JSON payload)``, history first,
    then snapshot and log, read line by line and not checked (``load`` and
    :func:`iter_history` check): for showing a journal as it is on disk."""
    directory = Path(directory)
    for name in (HISTORY_NAME, SNAPSHOT_NAME, LOG_NAME):
        try:
            f = open(directory / name, "rb")  # noqa: SIM115 (held across yields)
        except FileNotFoundError:
            continue
        with f:
            for line in f:
                yield name, line.rstrip(b"\n")[9:]


def load(directory: Path | str, warn: Warn | None = None) -> JournalState:
    """Fold a journal's current state without taking its lock or changing it (for
    read-only commands). Its cost follows live work: the history segment is not read."""
    state, _, _ = fold(Path(directory), warn, repair=False, keep=False)
    return state


def iter_history(directory: Path | str, warn: Warn | None = None) -> Iterator[OperationView]:
    """Every operation of the journal at ``directory``, oldest first, streamed.

    Closed operations come in the order they closed: first those of the history segment,
    read one line at a time (memory stays that of one operation), then those closed since
    the last compaction; the operations still open come last. Takes no lock and changes
    nothing. A torn last line of the segment is skipped with a warning; a bad line in the
    middle raises :class:`~txengine.JournalCorrupt` naming its offset.
    """
    directory = Path(directory)
    last = 0
    for summary in summaries(directory / HISTORY_NAME, warn):
        last = summary.seq
        yield OperationView.from_summary(summary)
    views = list(load(directory, warn))
    yield from closed_after(views, last)
    yield from (v for v in views if not v.closed)
