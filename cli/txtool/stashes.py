"""Where a step moves a file or tree aside until commit, and how it finds it again.

``stash`` renames into the operation's stash directory, or, when that is on another
filesystem, to a fixed hidden name beside the file (:func:`aside`), so that a revert after
a crash finds it either way; the clean-up after commit deletes what is left beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from txengine import StepContext, StepError, discard, restore, stash


def aside(ctx: StepContext, path: Path) -> Path:
    """Where :func:`txengine.stash` puts ``path`` when the stash is on another filesystem."""
    return path.with_name(f".{path.name}.txtool-{ctx.op}")


def stashed_copy(ctx: StepContext, path: Path, stash_path: Path | None) -> Path | None:
    """Where ``path`` was stashed by this operation, or None when it was not (yet)."""
    for candidate in (stash_path, aside(ctx, path)):
        if candidate is not None and os.path.lexists(candidate):
            return candidate
    return None


def move_aside(ctx: StepContext, path: Path, stash_path: Path) -> bool:
    """Stash ``path`` unless it is gone or stashed already; True when it moved now."""
    if not os.path.lexists(path) or stashed_copy(ctx, path, stash_path):
        return False
    stash(ctx.fs, path, stash_path, aside(ctx, path))
    return True


def put_back(ctx: StepContext, path: Path, stash_path: Path | None) -> None:
    """Undo :func:`move_aside` (safe to repeat)."""
    found = stashed_copy(ctx, path, stash_path)
    if found is not None:
        restore(ctx.fs, found, path)


def drop_aside(ctx: StepContext, path: Path) -> None:
    """After commit: delete what :func:`move_aside` left beside ``path``, if anything."""
    if not discard(ctx.fs, aside(ctx, path)):
        raise StepError(f"{aside(ctx, path)} is still in use")


def remove_if_empty(ctx: StepContext, directory: Path) -> None:
    try:
        if directory.is_dir() and not any(directory.iterdir()):
            ctx.fs.rmtree(directory)
    except FileNotFoundError:
        pass
