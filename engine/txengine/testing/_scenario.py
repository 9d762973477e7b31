"""What a campaign runs: the :class:`Scenario` of an embedder's operation, and pictures."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

Argv = Sequence[str]


class HarnessError(Exception):
    """The scenario itself is broken (its clean run fails): no campaign can run."""


class Hit(NamedTuple):
    """One failpoint passed by a child: its name and the path it concerned ('' if none)."""

    name: str
    path: str


def _default_journal_dir(workdir: Path) -> Path:
    return workdir / ".journal"


@dataclass
class Scenario:
    """One operation of an embedder, and how to run, resume, revert and observe it.

    ``run`` and ``resume`` give child argvs (``resume(workdir, revert)`` must resume every
    incomplete operation, or revert it when ``revert``, finish pending clean-ups, and exit 0
    once nothing is incomplete). ``observe`` returns a comparable picture of the world
    without the journal (see :func:`tree_picture`). ``old``/``new`` are the expected
    pictures; left None, they are taken after ``setup`` and after a clean run. ``env`` (a
    mapping, or a function of the work directory) is added to the children's environment.
    ``incomplete`` lists incomplete operation ids; by default the journal at
    ``journal_dir(workdir)`` is read with :func:`txengine.load`.
    """

    name: str
    setup: Callable[[Path], None]
    run: Argv | Callable[[Path], Argv]
    resume: Callable[[Path, bool], Argv]
    observe: Callable[[Path], object]
    old: object | None = None
    new: object | None = None
    env: Mapping[str, str] | Callable[[Path], Mapping[str, str]] = field(default_factory=dict)
    incomplete: Callable[[Path], list[str]] | None = None
    journal_dir: Callable[[Path], Path] = _default_journal_dir
    timeout: float = 60.0
    # Filled by enumerate_points: the clean run's hits and timing.
    clean: CleanRun | None = field(default=None, repr=False, compare=False)

    def argv(self, workdir: Path) -> list[str]:
        return list(self.run(workdir) if callable(self.run) else self.run)

    def child_env(self, workdir: Path) -> dict[str, str]:
        extra = self.env(workdir) if callable(self.env) else self.env
        return dict(extra)


@dataclass
class CleanRun:
    """What an uninterrupted run of a scenario did: every hit, and how long it took."""

    hits: list[Hit]
    seconds: float
    active: float  # from the first journal append to the last failpoint hit


def tree_picture(root: Path, exclude: Iterable[str] = (".journal",)) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` by relative path: file bytes and permission bits, link
    targets, directories. Top-level names in ``exclude`` (the journal) are left out."""
    skip = set(exclude)
    picture: dict[str, tuple[Any, ...]] = {}

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if not prefix and entry.name in skip:
                continue
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                picture[rel] = ("link", os.readlink(entry.path))
            elif stat.S_ISDIR(st.st_mode):
                picture[rel] = ("dir",)
                walk(Path(entry.path), rel + "/")
            else:
                picture[rel] = ("file", Path(entry.path).read_bytes(), oct(st.st_mode & 0o777))

    if root.is_dir():
        walk(root, "")
    return picture
