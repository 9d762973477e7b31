"""Where txtool keeps things, and the rules that make those places txtool's own.

Environment variables override every location. Before anything changes, :meth:`Locations.secure`
refuses a home, ``tools/`` or bin dir that another user controls (docs/recovery.md, "Ownership
and the threat model"), and creates the missing ones with modes that do not depend on the umask.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

# Home, tools/ and tools/NAME: readable by all (a shim in a shared bin dir must be runnable by
# its users), writable by the owner alone. The journal and stashes are the engine's, 0700.
DIR_MODE = 0o755

DEFAULT_LOCK_TIMEOUT = 60.0

#: Every environment variable txtool reads, and what it means: the one list ``txtool help env``
#: shows (docs/cli.md has the same table with the defaults).
ENVIRONMENT: dict[str, str] = {
    "TXTOOL_HOME": "environments and the journal (default: the user data dir)",
    "TXTOOL_BIN_DIR": "where executables go (default: XDG_BIN_HOME, else ~/.local/bin)",
    "XDG_BIN_HOME": "the bin dir when TXTOOL_BIN_DIR is unset",
    "TXTOOL_MAN_DIR": "where tools' man pages go (default: ~/.local/share/man)",
    "TXTOOL_CACHE_DIR": "environments of `txtool run` (default: the user cache dir)",
    "TXTOOL_RUN_TTL": "seconds a `txtool run` environment is reused (default: 86400)",
    "TXTOOL_RUN_KEEP": "`txtool run` environments kept, least recently used go (default: 8)",
    "TXTOOL_BACKEND": "uv or pip (default: uv, pip if uv is missing)",
    "TXTOOL_SHIMS": "copy: place copies of executables instead of links",
    "TXTOOL_LOCK_TIMEOUT": "seconds to wait for another txtool (default: 60)",
    "UV_INDEX_URL / PIP_INDEX_URL": "how an index password reaches uv/pip (never recorded)",
    "TXENGINE_FAILPOINTS": "test only: fault injection (docs/recovery.md)",
    "TXENGINE_FS_BUSY": "test only: files to treat as in use (the Windows rule)",
}

# A control character (newline above all) in a path breaks the `#!` line uv and pip write into
# every launcher of an environment under it; refused before anything is created.
_SHEBANG_BREAKERS = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeLocation(Exception):
    """A home, tools dir or bin dir another user could write, or a journal naming a path
    outside the directories txtool owns: refused before anything changes (exit 5)."""


class BadSetting(ValueError):
    """An environment variable txtool cannot use (exit 2, nothing changed)."""


def _writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _check_ancestors(path: Path, what: str) -> None:
    """Another user who can rename an ancestor can swap the whole tree under txtool."""
    euid = os.geteuid()
    for parent in path.parents:
        try:
            st = os.lstat(parent)
        except FileNotFoundError:
            continue
        if st.st_uid not in (euid, 0):
            raise UnsafeLocation(
                f"{what} {path} is unsafe: its parent {parent} belongs to uid {st.st_uid}"
            )
        sticky = bool(st.st_mode & stat.S_ISVTX)
        if not stat.S_ISLNK(st.st_mode) and _writable_by_others(st) and not sticky:
            raise UnsafeLocation(
                f"{what} {path} is unsafe: its parent {parent} is writable by other users"
            )


def _check_dir(path: Path, what: str, *, shared: bool = False) -> None:
    """``path`` (if it exists) is a directory of ours that no one else may write.

    ``shared``: a bin dir may belong to root (``/usr/local/bin``) or be a sticky shared dir,
    where others cannot rename or delete our shims; each shim is then checked to be ours."""
    try:
        link = os.lstat(path)
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # made later; what cannot be made fails there, in its step, and is undone
    euid = os.geteuid()
    owners = (euid, 0) if shared else (euid,)
    if link.st_uid not in owners or st.st_uid not in owners:
        raise UnsafeLocation(
            f"{what} {path} belongs to uid {st.st_uid}, not to you (uid {euid}): "
            "use a directory of your own"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeLocation(f"{what} {path} is not a directory")
    if _writable_by_others(st) and not (shared and st.st_mode & stat.S_ISVTX):
        raise UnsafeLocation(
            f"{what} {path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o}): "
            f"run `chmod go-w {path}`"
        )


def make_dir(path: Path, mode: int = DIR_MODE) -> None:
    """Create ``path`` and its missing parents with ``mode`` whatever the umask."""
    missing = []
    for p in (path, *path.parents):
        if os.path.lexists(p):
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, mode)
        except FileExistsError:
            continue  # made meanwhile: checked by the caller like any existing directory
        os.chmod(p, mode)


def _check_chars(path: Path, what: str) -> None:
    if _SHEBANG_BREAKERS.search(str(path)):
        raise BadSetting(
            f"{what} {str(path)!r} contains a control character, which breaks the `#!` line "
            "of every launcher under it: choose another path"
        )


def lock_timeout(environ: Mapping[str, str] | None = None) -> float:
    """``TXTOOL_LOCK_TIMEOUT``: seconds to wait for another txtool (default 60, 0: no wait)."""
    env = os.environ if environ is None else environ
    raw = env.get("TXTOOL_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BadSetting(
            f"TXTOOL_LOCK_TIMEOUT={raw!r} is not a number of seconds (e.g. 60, or 0: no wait)"
        )
    return value


def man_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``TXTOOL_MAN_DIR`` else ``~/.local/share/man`` (pipx's choice, on ``man``'s default
    path): tools' pages go into its ``man1`` ... sections."""
    env = os.environ if environ is None else environ
    raw = env.get("TXTOOL_MAN_DIR") or str(Path.home() / ".local" / "share" / "man")
    path = Path(raw).absolute()
    _check_chars(path, "TXTOOL_MAN_DIR")
    return path


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``TXTOOL_CACHE_DIR`` else the platform's user cache dir: ``txtool run``'s environments."""
    env = os.environ if environ is None else environ
    raw = env.get("TXTOOL_CACHE_DIR")
    if not raw:
        import platformdirs

        raw = platformdirs.user_cache_dir("txtool", appauthor=False)
    path = Path(raw).absolute()
    _check_chars(path, "TXTOOL_CACHE_DIR")
    return path


class Locations(NamedTuple):
    """A home and its bin dir: an immutable value (a named tuple, which costs no
    ``dataclasses`` import on the read-only commands)."""

    home: Path  # environments and the journal
    bin_dir: Path  # where shims go

    @property
    def journal_dir(self) -> Path:
        return self.home / "journal"

    @property
    def stash_dir(self) -> Path:
        return self.journal_dir / "stash"

    @property
    def tools_dir(self) -> Path:
        return self.home / "tools"

    @property
    def build_dir(self) -> Path:
        """Where new environments are built before they move to their own path (builds.py)."""
        return self.home / "build"

    def env_dir(self, tool: str, env_id: str) -> Path:
        return self.tools_dir / tool / env_id

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Locations:
        """``TXTOOL_HOME`` else the platform's user data dir; ``TXTOOL_BIN_DIR`` else
        ``XDG_BIN_HOME`` else ``~/.local/bin`` (where uv tool and pipx put them too).
        Raise :class:`BadSetting` for a path no launcher could live under."""
        env = os.environ if environ is None else environ
        home = env.get("TXTOOL_HOME")
        if not home:
            import platformdirs

            home = platformdirs.user_data_dir("txtool", appauthor=False)
        bin_dir = env.get("TXTOOL_BIN_DIR") or env.get("XDG_BIN_HOME")
        if not bin_dir:
            bin_dir = str(Path.home() / ".local" / "bin")
        loc = cls(Path(home).absolute(), Path(bin_dir).absolute())
        _check_chars(loc.home, "TXTOOL_HOME")
        _check_chars(loc.bin_dir, "the bin dir")
        return loc

    def secure(self) -> None:
        """Refuse (:class:`UnsafeLocation`) a home, ``tools/``, journal or bin dir that another
        user owns or can write; then create the missing home and ``tools/`` (``DIR_MODE``)."""
        _check_ancestors(self.home, "TXTOOL_HOME")
        _check_dir(self.home, "TXTOOL_HOME")
        for sub, what in ((self.tools_dir, "the tools dir"), (self.journal_dir, "the journal")):
            _check_dir(sub, what)
        _check_ancestors(self.bin_dir, "the bin dir")
        _check_dir(self.bin_dir, "the bin dir", shared=True)
        make_dir(self.tools_dir)
        # Made by another process between the checks and here: checked once more. The bin dir
        # is made by the step that places shims (mode 0755), within the operation.
        _check_dir(self.home, "TXTOOL_HOME")

    def inside(self, path: str | Path, root: Path, what: str, *, depth: int = 1) -> Path:
        """``path`` read from the journal, if it lies exactly ``depth`` levels below ``root``
        (no ``..``, no separators smuggled into a part); else raise :class:`UnsafeLocation`."""
        p = Path(path)
        parts = p.parts[len(root.parts) :]
        if (
            not p.is_absolute()
            or p.parts[: len(root.parts)] != root.parts
            or len(parts) != depth
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise UnsafeLocation(
                f"the journal names {what} {str(p)!r} outside {root}; refusing to act on it "
                "(a journal from another home or TXTOOL_BIN_DIR, or one tampered with)"
            )
        return p

    def bin_on_path(self) -> bool:
        entries = os.environ.get("PATH", "").split(os.pathsep)
        return any(e and Path(e).absolute() == self.bin_dir for e in entries)
