"""Helpers shared by the engine tests (imported as a plain module: tests/engine is on sys.path)."""

from __future__ import annotations

import os
import secrets
import zlib
from pathlib import Path
from typing import Any, ClassVar

import anyio
import msgspec

from txengine import PlaceFile, RemovePath, Result, Step, StepContext, StepError, atomic_write
from txengine._journal import LOG_NAME
from txengine._replay import JournalState

Tree = dict[str, object]


def tree(root: Path) -> Tree:
    """Everything under ``root``: path -> bytes (files), ("link", target) or "dir"."""
    out: Tree = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                out[rel] = Path(p).read_bytes()
    return out


def make_tree(root: Path, spec: Tree) -> None:
    """Create ``spec`` (as :func:`tree` returns it) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, value in sorted(spec.items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if value == "dir":
            p.mkdir(exist_ok=True)
        elif isinstance(value, tuple):
            os.symlink(value[1], p)
        else:
            assert isinstance(value, bytes)
            p.write_bytes(value)


def project(state: JournalState) -> dict[str, tuple[Any, ...]]:
    """What a state says about each operation, comparable across loads.

    Step statuses of closed operations are left out: a compacted summary keeps only the
    outcome ("done" or "reverted" for every step), not which steps never started.
    """
    return {
        v.id: (
            v.state,
            () if v.closed else tuple(v.steps),
            tuple(map(str, v.results)),
            v.last_seq,
            v.error,
        )
        for v in state
    }


def raw_line(obj: dict[str, Any]) -> bytes:
    """Frame an arbitrary dict as a journal line (valid checksum, any content)."""
    payload = msgspec.json.encode(obj)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def log_records(directory: Path) -> list[dict[str, Any]]:
    """The decoded lines of a journal's log, header included."""
    lines = (directory / LOG_NAME).read_bytes().splitlines()
    return [msgspec.json.decode(line.split(b" ", 1)[1]) for line in lines]


def types_of(directory: Path, op: str) -> list[str]:
    return [r["type"] for r in log_records(directory) if r.get("op") == op]


# -- step types for tests ------------------------------------------------------------------


class Token(Step, frozen=True):
    """Non-deterministic: a fresh random token, unless a recorded one must be reused."""

    kind: ClassVar[str] = "token"

    async def apply(self, ctx: StepContext) -> Result:
        return ctx.recorded or {"token": secrets.token_hex(8)}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        pass


class WriteToken(Step, frozen=True):
    """Writes the previous step's token to ``path``."""

    kind: ClassVar[str] = "write-token"
    path: str

    async def apply(self, ctx: StepContext) -> Result:
        previous = ctx.results[ctx.index - 1]
        assert previous is not None
        atomic_write(ctx.fs, Path(self.path), previous["token"].encode())
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        if os.path.lexists(self.path):
            ctx.fs.unlink(self.path)


class Boom(Step, frozen=True):
    """Always fails."""

    kind: ClassVar[str] = "boom"

    async def apply(self, ctx: StepContext) -> Result:
        raise StepError("the disk is on fire")

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        pass


class Sleepy(Step, frozen=True):
    """Waits until the file ``gate`` exists (a long step to cancel in the middle of)."""

    kind: ClassVar[str] = "sleepy"
    gate: str

    async def apply(self, ctx: StepContext) -> Result:
        while not os.path.exists(self.gate):
            await anyio.sleep(0.01)
        return {"slept": True}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        pass


STEP_TYPES: list[type[Step]] = [PlaceFile, RemovePath, Token, WriteToken, Boom, Sleepy]
