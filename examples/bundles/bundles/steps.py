"""The steps of a bundle install: stage the files, verify them, switch ``current``.

The manifest is written by the engine's own :class:`txengine.PlaceFile`. Every step changes
files only through ``ctx.fs`` and the engine's primitives, so failpoints reach each call.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar

from txengine import Result, Step, StepContext, StepError, atomic_symlink, sweep_temps


def tree_digest(root: Path) -> str:
    """sha256 over every file under ``root``: its relative path, executable bit and bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(b"x" if os.access(path, os.X_OK) else b"-")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


class Stage(Step, frozen=True):
    """Copy the bundle at ``source`` into ``dest`` (``versions/V``).

    The copy is made in ``.V.partial`` beside it and renamed whole, so ``dest`` exists only
    complete. A ``dest`` that was there before the operation is left alone, then and on undo.
    """

    kind: ClassVar[str] = "bundle-stage"
    source: str
    dest: str

    def describe(self) -> str:
        return f"stage {self.dest}"

    def intent(self, ctx: StepContext) -> Result:
        # The pre-state is read once; on resume the recorded one is kept (the disk has moved on).
        return dict(ctx.intent) or {"existed": os.path.lexists(self.dest)}

    def _partial(self) -> Path:
        dest = Path(self.dest)
        return dest.with_name(f".{dest.name}.partial")

    async def apply(self, ctx: StepContext) -> Result:
        dest, partial, source = Path(self.dest), self._partial(), Path(self.source)
        if ctx.intent["existed"] or dest.is_dir():
            return {"staged": not ctx.intent["existed"]}  # kept, or renamed before a kill
        if os.path.lexists(partial):
            ctx.fs.rmtree(partial)  # the half copy of a killed attempt
        ctx.fs.mkdir(partial)
        for src in sorted(source.rglob("*")):
            target = partial / src.relative_to(source)
            if src.is_dir():
                ctx.fs.mkdir(target)
            else:
                ctx.fs.copy_new(src, target)
        for d in sorted({p.parent for p in partial.rglob("*")} | {partial}):
            ctx.fs.fsync_dir(d)
        ctx.fs.rename(partial, dest)
        ctx.fs.fsync_dir(dest.parent)
        return {"staged": True}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        if ctx.intent.get("existed", True):
            return  # not ours
        for path in (self._partial(), Path(self.dest)):
            if os.path.lexists(path):
                ctx.fs.rmtree(path)
                ctx.fs.fsync_dir(path.parent)


class Verify(Step, frozen=True):
    """Check the staged files against the bundle's checksum. Changes nothing."""

    kind: ClassVar[str] = "bundle-verify"
    path: str
    sha256: str

    def describe(self) -> str:
        return f"verify {self.path}"

    async def apply(self, ctx: StepContext) -> Result:
        got = tree_digest(Path(self.path))
        if got != self.sha256:
            raise StepError(f"{self.path}: checksum {got[:12]}... is not {self.sha256[:12]}...")
        return {"sha256": got}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None  # nothing was changed


class SwitchCurrent(Step, frozen=True):
    """Point the link ``link`` at ``target`` with one atomic rename; undo points it back."""

    kind: ClassVar[str] = "bundle-switch"
    link: str
    target: str

    def describe(self) -> str:
        return f"switch {self.link} to {self.target}"

    def intent(self, ctx: StepContext) -> Result:
        if ctx.intent:
            return dict(ctx.intent)
        link = Path(self.link)
        return {"old": os.readlink(link) if link.is_symlink() else None}

    async def apply(self, ctx: StepContext) -> Result:
        link = Path(self.link)
        sweep_temps(link.parent, ctx.fs)  # the new link of a killed attempt
        if os.path.lexists(link) and not link.is_symlink():
            raise StepError(f"{link} exists and is not a link: not replacing it")
        atomic_symlink(ctx.fs, self.target, link)
        return {"old": ctx.intent["old"]}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        link, old = Path(self.link), ctx.intent.get("old")
        sweep_temps(link.parent, ctx.fs)
        if old is not None:
            if not (link.is_symlink() and os.readlink(link) == old):
                atomic_symlink(ctx.fs, old, link)
        elif link.is_symlink() and os.readlink(link) == self.target:
            ctx.fs.unlink(link)
            ctx.fs.fsync_dir(link.parent)
