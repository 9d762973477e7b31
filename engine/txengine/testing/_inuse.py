"""The Windows "in use" rule, emulated on any OS: a test double of the filesystem seam.

On Windows a file held open by another process (a running ``.exe``, a file an editor has
open) cannot be unlinked, overwritten or replaced, but it can be renamed, and it stays in
use under its new name. :class:`InUseFileSystem` refuses those calls for the files it is
given, with the error Windows gives (os error 32). ``FileSystem()`` returns one when
``TXENGINE_FS_BUSY`` is set (paths separated by ``os.pathsep``), so a child process of a
test (txtool's campaigns, ``txtool demo``) gets the rule without any code of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .._failpoints import in_use_error
from .._fs import BUSY_ENV, FileSystem, StrPath


class InUseFileSystem(FileSystem):
    """A :class:`~txengine.FileSystem` on which the files at ``busy`` are "in use".

    ``busy`` defaults to the paths in ``TXENGINE_FS_BUSY``. Files are known by identity
    (device and inode), taken now: renaming one keeps it in use, and a new file placed at
    its old name is not.
    """

    def __init__(self, busy: Sequence[StrPath] | None = None) -> None:
        if busy is None:
            busy = [p for p in os.environ.get(BUSY_ENV, "").split(os.pathsep) if p]
        self.busy: set[tuple[int, int]] = set()
        for p in busy:
            try:
                st = os.lstat(p)
            except OSError:
                continue
            self.busy.add((st.st_dev, st.st_ino))

    def in_use(self, path: StrPath) -> bool:
        """Is the file at ``path`` (not following a link) one of the busy files?"""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self.busy

    def _enter(self, call: str, path: StrPath) -> None:
        super()._enter(call, path)  # the failpoint first, as on a real in-use file
        if call in ("replace", "unlink", "rmtree"):  # (replace passes its target)
            self._refuse(path)
        if call == "rmtree" and os.path.isdir(path) and not os.path.islink(path):
            for root, dirs, files in os.walk(path):
                for name in dirs + files:
                    self._refuse(os.path.join(root, name))

    def _refuse(self, path: StrPath) -> None:
        if self.in_use(path):
            raise in_use_error(path)
