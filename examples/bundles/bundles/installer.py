"""Plans and runs bundle operations on a prefix's journal (``PREFIX/.journal``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from txengine import Engine, Journal, OperationView, PlaceFile, Step

from .steps import Stage, SwitchCurrent, Verify, tree_digest

STEPS: list[type[Step]] = [Stage, Verify, SwitchCurrent, PlaceFile]
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def journal_dir(prefix: Path) -> Path:
    return prefix / ".journal"


def current(prefix: Path) -> str | None:
    """The installed version: where ``current`` points (``versions/V``), or None."""
    link = prefix / "current"
    return Path(os.readlink(link)).name if link.is_symlink() else None


def plan(prefix: Path, source: Path, version: str, sha256: str | None = None) -> list[Step]:
    """The steps that make ``version`` (the files at ``source``) current in ``prefix``."""
    if not VERSION.fullmatch(version):
        raise ValueError(f"bad version {version!r}: letters, digits and ._+- only")
    if not source.is_dir():
        raise ValueError(f"{source} is not a directory")
    digest = sha256 or tree_digest(source)
    dest = prefix / "versions" / version
    manifest = {"version": version, "sha256": digest}
    return [
        Stage(source=str(source), dest=str(dest)),
        Verify(path=str(dest), sha256=digest),
        SwitchCurrent(link=str(prefix / "current"), target=f"versions/{version}"),
        PlaceFile(path=str(prefix / "manifest.json"), data=json.dumps(manifest, indent=1) + "\n"),
    ]


async def resume(engine: Engine, *, revert: bool = False) -> list[OperationView]:
    """Finish (or undo) what a killed run left incomplete, then pending clean-ups."""
    done = [
        await engine.resume(view.id, revert=revert) for view in engine.journal.state.incomplete()
    ]
    await engine.finish_cleanups()
    return done


async def install(
    prefix: Path, source: Path, version: str, sha256: str | None = None, *, timeout: float = 30
) -> OperationView:
    """Install ``version`` from ``source`` and make it current: one operation.

    A run killed earlier is finished first (re-running the command is the fix). Raises
    ``ValueError`` for bad input before anything changes, and the engine's
    ``OperationFailed`` (every change undone) or ``OperationIncomplete``.
    """
    steps = plan(prefix, source, version, sha256)
    with Journal.open(journal_dir(prefix), timeout=timeout) as journal:
        engine = Engine(journal, STEPS)
        await resume(engine)
        return await engine.run("install", version, steps, meta={"prefix": str(prefix)})
