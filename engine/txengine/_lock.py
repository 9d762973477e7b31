"""Inter-process locks that name their holder: the journal's, and one per subject.

By default one process at a time writes a journal, holding its lock from open to close.
A journal opened ``shared`` holds it only around each append (and compaction), and an
operation holds the lock of its subject for its whole run instead (:func:`subject_lock`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ._errors import LockBusy

_WINDOWS = sys.platform == "win32"
if sys.platform == "win32":
    import msvcrt

    def _lock_fd(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_fd(fd: int) -> None:
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        pass  # closing the fd drops a flock


_O_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path`` (created 0600), or None if another
    holds it. Each call opens the file afresh: the lock belongs to that open file, so two
    holders in one process (two threads, two objects) exclude each other as two processes
    do, and closing the fd (or the process dying) drops it."""
    fd = os.open(path, _O_FLAGS, 0o600)
    try:
        _lock_fd(fd)
    except (BlockingIOError, PermissionError):  # held (EWOULDBLOCK; EACCES on Windows)
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _wait_lock(path: Path, timeout: float, poll: float) -> int | None:
    """:func:`_try_lock` again every ``poll`` seconds for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (fd := _try_lock(path)) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(poll, left))
    return fd


def _unlock(fd: int) -> None:
    _unlock_fd(fd)
    os.close(fd)


class JournalLock:
    """An exclusive lock on a journal directory, plus a note of the holder's pid.

    An OS lock on a file of its own (``flock``; on Windows a byte range of it), which the
    kernel drops when its holder exits, however it exits; taken by polling, so that a wait
    has a timeout. The pid lives in a file of its own, read without the lock.
    """

    def __init__(self, directory: Path, timeout: float = 30.0, name: str = "lock") -> None:
        self.path = directory / name
        self.owner_path = directory / f"{name}.owner"
        self.timeout = timeout
        # Not tied to a thread: open_journal takes the lock in a worker thread (and a
        # subject lock is taken in one), and it is released from whichever thread closes it.
        self._fd = -1

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

    def _took(self, fd: int) -> None:
        self._fd = fd
        self.owner_path.write_text(f"{os.getpid()}\n")

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; never waits."""
        fd = _try_lock(self.path)
        if fd is None:
            return False
        self._took(fd)
        return True

    def acquire(self, on_wait: Callable[[int | None], None] | None = None) -> None:
        """Take the lock. If it is held, call ``on_wait(pid)`` once, then wait up to the timeout."""
        fd = _try_lock(self.path)
        if fd is None:
            if on_wait is not None:
                on_wait(self.holder())
            fd = _wait_lock(self.path, self.timeout, 0.05)
            if fd is None:
                raise LockBusy(self.path, self.holder(), self.timeout)
        self._took(fd)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                self.owner_path.write_text("")
            fd, self._fd = self._fd, -1
            _unlock(fd)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for a short critical section (an append), leaving no note."""
        # Held for a write by other processes: poll often, the wait is short.
        fd = _try_lock(self.path)
        if fd is None:
            fd = _wait_lock(self.path, self.timeout, 0.0005)
            if fd is None:
                raise LockBusy(self.path, self.holder(), self.timeout)
        try:
            yield
        finally:
            _unlock(fd)


def subject_lock(directory: Path, subject: str, timeout: float) -> JournalLock:
    """The lock of one subject of the journal at ``directory`` (``subjects/<digest>``).

    Named by a digest: a subject is the embedder's data, never a path.
    """
    locks = directory / "subjects"
    locks.mkdir(mode=0o700, exist_ok=True)
    return JournalLock(locks, timeout, _subject_file(subject))


def _subject_file(subject: str) -> str:
    import hashlib  # here: its OpenSSL binding costs a reader more than the lookup

    return hashlib.sha256(subject.encode()).hexdigest()[:32]


def _held(path: Path) -> bool:
    """Whether some process holds the lock at ``path`` now (tried without blocking)."""
    if _WINDOWS:  # the pid check above is all there is
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        _lock_fd(fd)
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
