"""Build places: where a tool's new environment is built before it moves to its own path.

uv remembers what it learnt about an interpreter (its prefix and install paths: a ``python``
run of some 30 ms) under the interpreter's path. Every new environment of a tool has a path
of its own (``tools/NAME/ID``), so uv would ask again at every install and upgrade. Built at
one of a few stable places under the home (``build/KEY-0``, ``build/KEY-1``, ...) and then renamed to
its own path, every build after a home's first finds uv's answer cached: for a place's path
and a given base interpreter the answer is the same whatever the environment holds.

The environment is built relocatable (``uv venv --relocatable``), so it works after the
rename; its scripts then get their absolute interpreter back (a relocatable script starts
through ``/bin/sh``, ``dirname`` and ``realpath``: some 2 ms at every start of a tool).

A place is held by a ``flock`` on its lock file, which the kernel drops with its holder:
builds of different tools at once each take a place of their own. What a killed build left
in a place is removed by the next build there, or by :func:`sweep`, which every build and
every revert of one runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from txengine import FileSystem

if TYPE_CHECKING:
    from .backend import Backend

from .locations import make_dir

#: What uv writes as a relocatable script's first lines; group 1 is the interpreter's name.
_RELOCATABLE = re.compile(
    rb"\A#!/bin/sh\n'''exec' \"\$\(dirname -- \"\$\(realpath -- \"\$0\"\)\"\)\"/'([^'/\n]+)'"
    rb" \"\$0\" \"\$@\"\n' '''\n"
)
# Linux reads at most this much of a ``#!`` line (BINPRM_BUF_SIZE before 5.1); longer paths,
# or paths with a space, go through /bin/sh as pip and uv do it.
_SHEBANG_MAX = 127


def usable() -> bool:
    """Whether environments can be built at a place and moved (POSIX: flock, rename)."""
    return os.name == "posix"


def places(root: str, backend: Backend) -> Path | None:
    """The build places a step names (``root``), if they are to be used: recorded, on a
    system with flock, for a backend whose environments can be moved."""
    return Path(root) if root and backend.movable and usable() else None


#: Places made ready ahead of their build by :func:`prepare`: (root, python, tool) -> the
#: place and the descriptor that holds its lock.
_ready: dict[tuple[Path, str, str], tuple[Path, int]] = {}


@contextlib.contextmanager
def place(root: Path, python: str, tool: str, fs: FileSystem) -> Iterator[tuple[Path, bool]]:
    """A free place under ``root`` to build ``tool``'s environment of ``python``, held until
    the block ends, and whether its (empty) environment is made already (:func:`prepare`);
    whatever is still there at the end (the block failed before moving it away) is removed,
    and so is the place's lock: a home keeps no trace of a build."""
    ready = _ready.pop((root, python, tool), None)
    path, fd = ready or _free(root, python, fs)
    try:
        yield path, ready is not None
    finally:
        _drop(path, fd, fs)


async def prepare(root: Path, python: str, tool: str, backend: Backend, fs: FileSystem) -> None:
    """Take a place and make the empty environment in it now, while the resolver runs: the
    build of ``tool`` that follows in this process finds it ready. Only ever a head start:
    whatever fails here is left to the build to meet again (and report)."""
    try:
        path, fd = _free(root, python, fs)
    except Exception:
        return
    try:
        await backend.create_env(path, python, movable=True)
    except Exception:
        _drop(path, fd, fs)
        return
    except BaseException:  # a cancellation: the resolver failed, or the user stopped us
        _drop(path, fd, fs)
        raise
    _ready[(root, python, tool)] = (path, fd)


def release_ready(fs: FileSystem) -> None:
    """Give back the places :func:`prepare` made that no build took (the resolution found
    nothing new, or the operation stopped before its build)."""
    while _ready:
        _, (path, fd) = _ready.popitem()
        _drop(path, fd, fs)


def _free(root: Path, python: str, fs: FileSystem) -> tuple[Path, int]:
    """A place no build holds, emptied of what a killed build left there, and its lock.
    Each base interpreter has places of its own: uv's answer for a place's path is then
    never one about another interpreter."""
    key = hashlib.sha256(os.fsencode(python)).hexdigest()[:8]
    for n in range(1024):
        path = root / f"{key}-{n}"
        fd = _take(path)
        if fd is not None:
            try:
                if os.path.lexists(path):
                    fs.rmtree(path)
            except BaseException:
                _release(path, fd)
                raise
            return path, fd
    raise OSError(f"no free build place under {root}")


def _drop(path: Path, fd: int, fs: FileSystem) -> None:
    try:
        _discard(path, fs)
    finally:
        _release(path, fd)


def _discard(path: Path, fs: FileSystem) -> None:
    """Remove a place's contents. Scratch never fails an operation (nor its revert, nor
    what comes after its commit): what cannot go now is removed by a later build there, or
    by a later sweep."""
    with contextlib.suppress(OSError):
        if os.path.lexists(path):
            fs.rmtree(path)


def sweep(root: Path, fs: FileSystem) -> None:
    """Remove what killed builds left in places no build holds now; never fails (see
    :func:`_discard`)."""
    if not usable() or not root.is_dir():
        return
    for name in sorted({p.name.removesuffix(".lock") for p in root.iterdir()}):
        path = root / name
        try:
            fd = _take(path)
        except OSError:
            continue  # its lock cannot be made now (a full disk): a later sweep takes it
        if fd is not None:
            _drop(path, fd, fs)


def _take(path: Path) -> int | None:
    """The lock of the place ``path`` (a descriptor holding its ``flock``), or None when a
    build holds it."""
    import fcntl

    lock = path.with_name(path.name + ".lock")
    while True:
        make_dir(path.parent, 0o700)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue  # the directory went with the last build's release: make it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # A build that ended between our open and our flock removed the file we locked:
        # a lock no one else can find. Another build may hold the file at that name now.
        try:
            held = os.path.samestat(os.stat(lock), os.fstat(fd))
        except FileNotFoundError:
            held = False
        if held:
            return fd
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    """Drop the place's lock, its file first (still held: see :func:`_take`), and the
    directory of places once it is empty."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path.with_name(path.name + ".lock"))
    os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path.parent)


def move(fs: FileSystem, built: Path, env: Path) -> None:
    """Give the environment built at ``built`` its own path ``env``, and its scripts their
    absolute interpreter there."""
    fs.rename(built, env)
    bin_dir = env / "bin"
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as f:
            head = f.read(256)
            found = _RELOCATABLE.match(head)
            if found is None:
                continue
            body = f.read()
        python = os.fsencode(bin_dir / os.fsdecode(found.group(1)))
        data = shebang(python) + head[found.end() :] + body
        mode = stat.S_IMODE(os.stat(script).st_mode)
        tmp = script.with_name(f".{script.name}.txtool-abs")
        fs.write_new(tmp, data, mode)
        os.chmod(tmp, mode)  # the umask must not take the script's x bits
        fs.replace(tmp, script)


def shebang(python: bytes) -> bytes:
    """The first line(s) that run a script with ``python``."""
    if len(python) + 2 <= _SHEBANG_MAX and b" " not in python:
        return b"#!" + python + b"\n"
    quoted = python.replace(b"'", b"'\\''")
    return b"#!/bin/sh\n'''exec' '" + quoted + b"' \"$0\" \"$@\"\n' '''\n"
