"""Inter-process locks that name their holder: the journal's, and one per subject.

By default one process at a time writes a journal, holding its lock from open to close.
A journal opened ``shared`` holds it only around each append (and compaction), and an
operation holds the lock of its subject for its whole run instead (:class:`SubjectLock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from ._errors import LockBusy


class JournalLock:
    """An exclusive lock on a journal directory (``filelock``), plus a note of the holder's pid.

    The pid lives in a file of its own because ``filelock`` truncates the lock file when a
    waiter opens it.
    """

    def __init__(self, directory: Path, timeout: float = 30.0, name: str = "lock") -> None:
        self.path = directory / name
        self.owner_path = directory / f"{name}.owner"
        self.timeout = timeout
        # Not thread-local: open_journal takes the lock in a worker thread (and a subject
        # lock is taken in one), and it is released from whichever thread closes it.
        self._lock = filelock.FileLock(self.path, mode=0o600, thread_local=False)

    def holder(self) -> int | None:
        """The pid that last took the lock, if it left a readable note."""
        try:
            return int(self.owner_path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def live_holder(self) -> int | None:
        """The pid of a running process that holds the lock now, if any, without taking it.

        Readers that do not lock use this to tell an operation in progress in that process
        from one left incomplete by a process that died.
        """
        pid = self.holder()
        if pid is None or pid == os.getpid():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # the note of a process that died holding the lock
        except PermissionError:
            pass  # alive, another user's
        # The pid may be reused by an unrelated process, or be a zombie: only the lock
        # itself says whether someone holds it (the kernel drops it when its holder exits).
        return pid if _held(self.path) else None

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never waits."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        self.owner_path.write_text(f"{os.getpid()}\n")
        return True

    def acquire(self, on_wait: Callable[[int | None], None] | None = None) -> None:
        """Take the lock. If it is held, call ``on_wait(pid)`` once, then wait up to the timeout."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            if on_wait is not None:
                on_wait(self.holder())
            try:
                self._lock.acquire(timeout=self.timeout)
            except filelock.Timeout:
                raise LockBusy(self.path, self.holder(), self.timeout) from None
        self.owner_path.write_text(f"{os.getpid()}\n")

    def release(self) -> None:
        if self._lock.is_locked:
            with contextlib.suppress(OSError):
                self.owner_path.write_text("")
            self._lock.release()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for a short critical section (an append), leaving no note."""
        try:
            # Held for a write by other processes: poll often, the wait is short.
            self._lock.acquire(timeout=self.timeout, poll_interval=0.0005)
        except filelock.Timeout:
            raise LockBusy(self.path, self.holder(), self.timeout) from None
        try:
            yield
        finally:
            self._lock.release()


def subject_lock(directory: Path, subject: str, timeout: float) -> JournalLock:
    """The lock of one subject of the journal at ``directory`` (``subjects/<digest>``).

    Named by a digest: a subject is the embedder's data, never a path.
    """
    locks = directory / "subjects"
    locks.mkdir(mode=0o700, exist_ok=True)
    return JournalLock(locks, timeout, _subject_file(subject))


def _subject_file(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()[:32]


def _held(path: Path) -> bool:
    """Whether some process holds the lock at ``path`` now (tried without blocking)."""
    try:
        import fcntl
    except ImportError:  # Windows: the pid check above is all there is
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock just taken
    return False


def live_holder(directory: Path | str, subject: str | None = None) -> int | None:
    """The pid of another running process that holds the lock of the journal at
    ``directory`` now (with ``subject``: that subject's lock), or None. Takes nothing: for
    read-only commands that do not lock."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    if subject is None:
        return JournalLock(directory).live_holder()
    locks = directory / "subjects"
    return JournalLock(locks, 0, _subject_file(subject)).live_holder() if locks.is_dir() else None
