"""Generic file steps: place a file, remove a path. Built only on :mod:`txengine._fs`.

For embedders (a dotfiles installer, a plugin manager) and for tests. Both keep what they
replace or remove in the operation's stash, so revert puts it back and clean-up (after
commit) drops it. Each records its pre-state on disk *before* changing the path, so probe
and revert can tell after a crash what is theirs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from ._fs import atomic_write, discard, restore, stash, sweep_temps
from ._steps import Result, Step, StepContext


def _holds(path: Path, data: bytes) -> bool:
    """``path`` is a regular file (not a link) whose bytes are exactly ``data``."""
    if path.is_symlink() or not path.is_file():
        return False
    return path.read_bytes() == data


class PlaceFile(Step, frozen=True):
    """Put ``data`` at ``path`` atomically; a file already there is stashed for undo."""

    kind: ClassVar[str] = "place-file"
    path: str
    data: str
    mode: int = 0o644

    def describe(self) -> str:
        return f"place {self.path}"

    def intent(self, ctx: StepContext) -> Result:
        # "stash" holds the old file; "absent" is a marker saying there was none.
        return {"stash": str(ctx.stash_path("old")), "absent": str(ctx.stash_path("absent"))}

    def _marks(self, ctx: StepContext) -> tuple[Path, Path]:
        intent = ctx.intent or self.intent(ctx)
        return Path(intent["stash"]), Path(intent["absent"])

    async def apply(self, ctx: StepContext) -> Result:
        path, (old, absent) = Path(self.path), self._marks(ctx)
        sweep_temps(path.parent, ctx.fs)  # a temp of a killed attempt
        if not (os.path.lexists(old) or os.path.lexists(absent)):
            # First attempt: record the pre-state before touching the path.
            if os.path.lexists(path):
                stash(ctx.fs, path, old)
            else:
                ctx.fs.mkdir(absent.parent, 0o700)
                ctx.fs.write_new(absent, b"")
                ctx.fs.fsync_dir(absent.parent)
        atomic_write(ctx.fs, path, self.data.encode(), self.mode)
        return {"replaced": os.path.lexists(old)}

    async def probe(self, ctx: StepContext) -> Result | None:
        old, absent = self._marks(ctx)
        if (os.path.lexists(old) or os.path.lexists(absent)) and _holds(
            Path(self.path), self.data.encode()
        ):
            return {"replaced": os.path.lexists(old)}
        return None

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        path, (old, absent) = Path(self.path), self._marks(ctx)
        sweep_temps(path.parent, ctx.fs)  # a temp of a killed attempt
        if not (os.path.lexists(old) or os.path.lexists(absent)):
            return  # the path was never touched (or the revert already finished)
        if _holds(path, self.data.encode()):
            ctx.fs.unlink(path)
            ctx.fs.fsync_dir(path.parent)
        if os.path.lexists(old):
            restore(ctx.fs, old, path)  # refuses to overwrite a file that is not ours
        discard(ctx.fs, absent)

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        for mark in self._marks(ctx):
            if not discard(ctx.fs, mark):
                raise PermissionError(f"{mark} is still in use")


class RemovePath(Step, frozen=True):
    """Remove a file, symlink or directory tree by moving it into the stash."""

    kind: ClassVar[str] = "remove-path"
    path: str

    def describe(self) -> str:
        return f"remove {self.path}"

    def intent(self, ctx: StepContext) -> Result:
        return {"stash": str(ctx.stash_path("removed"))}

    def _stash(self, ctx: StepContext) -> Path:
        return Path((ctx.intent or self.intent(ctx))["stash"])

    async def apply(self, ctx: StepContext) -> Result:
        path, stashed = Path(self.path), self._stash(ctx)
        if os.path.lexists(path):
            stash(ctx.fs, path, stashed)
        return {"removed": os.path.lexists(stashed)}

    async def probe(self, ctx: StepContext) -> Result | None:
        if os.path.lexists(self.path):
            return None
        return {"removed": os.path.lexists(self._stash(ctx))}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        stashed = self._stash(ctx)
        if os.path.lexists(stashed):
            restore(ctx.fs, stashed, Path(self.path))

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        if not discard(ctx.fs, self._stash(ctx)):
            raise PermissionError(f"{self._stash(ctx)} is still in use")
