"""The filesystem seam, and the safe primitives that steps build on.

Every file mutation of the engine and of its steps goes through one :class:`FileSystem`
object. Each call first passes the failpoint ``fs.<call>`` with its path, so a test can
make any single call die or fail with any errno. ``TXENGINE_FS_BUSY`` (paths separated by
``os.pathsep``) makes ``FileSystem()`` return the test double
:class:`txengine.testing.InUseFileSystem`, which applies the Windows "in use" rule to
those files.

Temp files of the atomic primitives are named ``.NAME.txengine-PID-TOKEN.tmp``: every
failure removes its own, and :func:`sweep_temps` removes those a killed process left.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from . import _failpoints as failpoints

BUSY_ENV = "TXENGINE_FS_BUSY"

StrPath = str | os.PathLike[str]


class FileSystem:
    """The seam: the only door through which the engine and steps change files."""

    def __new__(cls, *args: Any, **kwargs: Any) -> FileSystem:
        # The emulation of Windows' "in use" rule is a test double, loaded only when a
        # test asks for it through the environment: a normal run carries none of it.
        if cls is FileSystem and os.environ.get(BUSY_ENV):
            from .testing._inuse import InUseFileSystem

            return object.__new__(InUseFileSystem)
        return object.__new__(cls)

    def _enter(self, call: str, path: StrPath) -> None:
        """Every call starts here: its failpoint ``fs.<call>`` (a test double adds its rules)."""
        if failpoints.ACTIVE:
            failpoints.hit(f"fs.{call}", path)

    def rename(self, src: StrPath, dst: StrPath) -> None:
        """Rename, refusing to replace an existing ``dst``."""
        self._enter("rename", src)
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", os.fspath(dst))
        os.rename(src, dst)

    def link_new(self, src: StrPath, dst: StrPath) -> None:
        """Give ``src`` (a file or a symlink, not followed) the new name ``dst`` too; fails
        with FileExistsError when ``dst`` exists, atomically (no check-then-act race)."""
        self._enter("link", dst)
        os.link(src, dst, follow_symlinks=False)

    def replace(self, src: StrPath, dst: StrPath) -> None:
        """Rename over ``dst`` atomically (what placing a new file is)."""
        self._enter("replace", dst)
        os.replace(src, dst)

    def unlink(self, path: StrPath) -> None:
        """Remove the file or symlink ``path``."""
        self._enter("unlink", path)
        os.unlink(path)

    def rmtree(self, path: StrPath) -> None:
        """Remove the directory tree ``path`` (or the file or link there)."""
        self._enter("rmtree", path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def mkdir(self, path: StrPath, mode: int = 0o777) -> None:
        """Make ``path`` and its parents; an existing directory is fine."""
        self._enter("mkdir", path)
        os.makedirs(path, mode=mode, exist_ok=True)

    def symlink(self, target: StrPath, path: StrPath) -> None:
        """Create the symlink ``path`` pointing at ``target``."""
        self._enter("symlink", path)
        os.symlink(target, path)

    def write_new(self, path: StrPath, data: bytes, mode: int = 0o666) -> None:
        """Create ``path`` (it must not exist), write ``data`` and fsync it.

        On failure (a full disk) nothing is left at ``path``.
        """
        self._enter("write", path)
        _write_file(path, (data,), mode)

    def copy_new(self, src: StrPath, path: StrPath) -> None:
        """Copy ``src``'s bytes and permission bits into a new ``path``, fsynced.

        On failure nothing is left at ``path``.
        """
        self._enter("copy", path)
        with open(src, "rb") as fin:
            mode = stat.S_IMODE(os.fstat(fin.fileno()).st_mode)
            _write_file(path, _read_chunks(fin), mode)

    def fsync_dir(self, path: StrPath) -> None:
        """Make a directory's entries (creations, renames) durable."""
        self._enter("fsync_dir", path)
        if os.name == "nt":  # Windows cannot open a directory for fsync.
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_O_BINARY = getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 20


def _write_file(path: StrPath, chunks: Iterable[bytes], mode: int) -> None:
    """Create ``path`` (O_EXCL), write ``chunks``, fsync; on any failure remove it again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, mode)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _discard(path)  # we created it (O_EXCL): a partial file is nobody's
        raise
    os.close(fd)


def _read_chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


# -- the engine's temporary files ------------------------------------------------------------

#: ``.NAME.txengine-PID-TOKEN.tmp``: hidden, beside the file it becomes (so the rename is
#: atomic), naming the process that writes it (so a sweep can tell a live writer's temp
#: from one a killed process left) and unique (TOKEN: 8 random hex digits).
_TEMP = re.compile(r"\.(?P<name>.+)\.txengine-(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{8}\.tmp")
_NAME_MAX = 255

#: A temp older than this is swept even when its pid is alive (the pid was reused): placing
#: one file takes seconds, not hours.
TEMP_MAX_AGE = 6 * 3600.0


def temp_sibling(path: Path) -> Path:
    """A fresh temp name beside ``path`` for this process (see :func:`is_engine_temp`)."""
    suffix = f".txengine-{os.getpid()}-{os.urandom(4).hex()}.tmp"
    name = path.name
    room = _NAME_MAX - 1 - len(suffix.encode())
    if len(name.encode()) > room:  # keep the name legal: NAME is only a hint
        name = name.encode()[:room].decode(errors="ignore")
    return path.with_name(f".{name}{suffix}")


def is_engine_temp(path: StrPath) -> bool:
    """Is this the name of a temp file made by txengine's atomic primitives?

    Only the name is checked (``.NAME.txengine-PID-TOKEN.tmp``); :func:`sweep_temps` also
    checks that the file is a plain file or link of this user whose writer is gone.
    """
    return _TEMP.fullmatch(os.path.basename(os.fspath(path))) is not None


def _temp_pid(name: str) -> int | None:
    m = _TEMP.fullmatch(name)
    return int(m["pid"]) if m else None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of ours may be writing it right now
    if os.name == "nt":
        return True  # no cheap, harmless probe there: only the age bound applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    try:  # a zombie has finished writing for good
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:
        return True


def sweep_temps(
    directory: StrPath, fs: FileSystem | None = None, *, max_age: float = TEMP_MAX_AGE
) -> list[Path]:
    """Remove the temp files that killed processes left in ``directory``; return them.

    A file goes only if its name is an engine temp (:func:`is_engine_temp`), it is a plain
    file or a symlink owned by this user, and its writer is gone: that pid is not running
    (or is a zombie), or the file is older than ``max_age`` seconds (the pid was reused).
    Anything else, including a look-alike, stays. A missing directory is empty.
    """
    fs = fs or FileSystem()
    now = time.time()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        pid = _temp_pid(entry.name)
        if pid is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # its writer renamed it into place meanwhile
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            continue
        if _pid_alive(pid) and now - st.st_mtime < max_age:
            continue
        try:
            fs.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Path(entry.path))
    return removed


# What link() fails with where a filesystem has no hard links (FAT, some network mounts).
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
)


def _place(fs: FileSystem, path: Path, make: Callable[[Path], None], replace: bool) -> None:
    """Make the new file beside ``path`` with ``make(tmp)``, then rename it over ``path``
    (``replace``), or give it the name ``path`` only if nothing has it.

    Whatever fails (the write on a full disk, the rename of a file in use, a cancellation)
    removes the temp: only a kill can leave one, and :func:`sweep_temps` finds it by name.
    """
    tmp = temp_sibling(path)
    try:
        make(tmp)
        if replace:
            fs.replace(tmp, path)
        else:
            _claim(fs, tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    fs.fsync_dir(path.parent)


def _claim(fs: FileSystem, tmp: Path, path: Path) -> None:
    """``tmp`` becomes ``path`` unless something is there (FileExistsError): a hard link,
    which the kernel refuses atomically when the name is taken; then the temp name goes."""
    try:
        fs.link_new(tmp, path)
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        fs.rename(tmp, path)  # no hard links here: rename() checks, then renames
        return
    fs.unlink(tmp)


def atomic_write(fs: FileSystem, path: Path, data: bytes, mode: int = 0o666) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new, never a mix."""
    _place(fs, path, lambda tmp: fs.write_new(tmp, data, mode), replace=True)


def atomic_copy(fs: FileSystem, src: Path, path: Path, *, replace: bool = True) -> None:
    """Place a copy of ``src`` at ``path`` atomically (the Windows shim, or where links fail).

    ``replace=False``: only if nothing is at ``path`` (FileExistsError otherwise, decided
    atomically, so two processes never both think they placed it)."""
    _place(fs, path, lambda tmp: fs.copy_new(src, tmp), replace)


def atomic_symlink(fs: FileSystem, target: StrPath, path: Path, *, replace: bool = True) -> None:
    """Point ``path`` at ``target`` atomically: a new link renamed over the old name
    (``replace=False``: only if nothing is at ``path``, as for :func:`atomic_copy`)."""
    _place(fs, path, lambda tmp: fs.symlink(target, tmp), replace)


def stash(fs: FileSystem, path: Path, stash_path: Path, aside: Path | None = None) -> Path:
    """Move ``path`` out of the way to ``stash_path``; return where it went.

    A rename, so it works on a file in use and costs nothing for a tree. When the stash
    is on another filesystem, the file is renamed to ``aside`` (default: a hidden unique
    name) in its own directory instead; pass a fixed ``aside`` to find it after a crash.
    """
    fs.mkdir(stash_path.parent, 0o700)
    try:
        fs.rename(path, stash_path)
        target = stash_path
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        target = aside or path.with_name(f".{path.name}.txengine-aside-{os.urandom(4).hex()}")
        fs.rename(path, target)
    fs.fsync_dir(path.parent)
    fs.fsync_dir(target.parent)
    return target


def restore(fs: FileSystem, stashed: Path, path: Path) -> None:
    """Undo :func:`stash`: move ``stashed`` back to ``path``. Safe to repeat."""
    if not os.path.lexists(stashed):
        if os.path.lexists(path):
            return  # already restored
        raise FileNotFoundError(errno.ENOENT, "stashed copy is missing", os.fspath(stashed))
    fs.rename(stashed, path)
    fs.fsync_dir(path.parent)


def discard(fs: FileSystem, path: Path) -> bool:
    """Delete a stashed file or tree for good. Safe to repeat.

    Returns False when something in it is still in use (Windows): it stays where it is
    and a later run deletes it.
    """
    if not os.path.lexists(path):
        return True
    try:
        fs.rmtree(path)
    except PermissionError:
        return False
    return True


def _discard(path: StrPath) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
