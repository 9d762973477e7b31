"""Directories only the current user may write: the journal and the stash.

Records read from a journal decide what the engine moves, restores and deletes, so a
journal or stash that another local user can write (a pre-created shared home, a
world-writable cache) would let that user steer root's next run. Such a directory is
refused; one the engine creates is made 0700 whatever the umask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from ._errors import JournalUnsafe, JournalUnwritable
from ._fs import FileSystem
from ._lock import JournalLock

_geteuid = getattr(os, "geteuid", None)  # absent on Windows, where ACLs rule instead


def lock_private_dir(
    fs: FileSystem,
    directory: Path,
    timeout: float,
    on_wait: Callable[[int | None], None] | None,
) -> JournalLock:
    """Make sure ``directory`` is private (see :func:`private_dir`), then take its lock.

    An OS error on the way (a read-only or full file system) is :class:`JournalUnwritable`.
    """
    try:
        private_dir(fs, directory)
        lock = JournalLock(directory, timeout)
        lock.acquire(on_wait)
    except OSError as e:
        raise JournalUnwritable(directory, e.strerror or str(e)) from e
    return lock


def private_dir(fs: FileSystem, path: Path) -> None:
    """Make sure ``path`` is a directory owned by this user and writable by no one else.

    Creates it (mode 0700) when missing; raises :class:`JournalUnsafe` otherwise.
    """
    if not path.exists():
        fs.mkdir(path, 0o700)
        if _geteuid is not None:
            os.chmod(path, 0o700)  # makedirs' mode is masked by the umask
    check_private(path)


def check_private(path: Path) -> None:
    """Raise :class:`JournalUnsafe` unless ``path`` is this user's, not group/world-writable."""
    if _geteuid is None:
        return
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise JournalUnsafe(path, "not a directory", "remove it or choose another directory")
    uid = _geteuid()
    if st.st_uid != uid:
        raise JournalUnsafe(
            path,
            f"owned by uid {st.st_uid}, not by uid {uid}",
            "remove it or choose another directory",
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise JournalUnsafe(path, "writable by other users", f"chmod 700 {path}")
