"""What each txtool step records, its intent (before its side effect) and its result: typed
structs, encoded to exactly the dicts txtool 0.1.0 wrote (journal-schema/golden/txtool-0.1.0 holds such journals), so old journals
read and new ones stay readable by 0.1.0's projection.

A step that found nothing to do (resolve found the installed pins) records :class:`Skipped`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:  # a type only: `list` reads results without the engine's step machinery
    from txengine import Result


class _Result(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    def record(self) -> Result:
        """The dict the journal holds."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class Skipped(_Result, frozen=True):
    """The later steps of an upgrade whose resolution matched the installed pins."""

    skipped: bool = True

    def record(self) -> Result:
        return {"skipped": True}  # omit_defaults would drop the one field it has


class Resolved(_Result, frozen=True):
    """resolve: the exact pins, the tool's own version, and whether they are the installed.

    ``version`` is empty when the tool's pin is a direct reference (a directory, a file, a
    URL): its version is known once built (install-env's :class:`EnvInstalled`)."""

    pins: list[str]
    unchanged: bool
    version: str = ""

    def record(self) -> Result:
        # Always with "version", as txtool 0.1.0 wrote it (omit_defaults would drop "").
        return {"pins": self.pins, "version": self.version, "unchanged": self.unchanged}


class EnvInstalled(_Result, frozen=True):
    """install-env: the tool's version and its executables (name -> launcher path)."""

    version: str
    executables: dict[str, str]


class ShimsRemoved(_Result, frozen=True):
    """remove-shims: shim path -> where it was stashed; paths kept as no longer txtool's."""

    stashed: dict[str, str]
    kept: list[str] = []


class ShimsPlaced(_Result, frozen=True):
    """copy-shims: executable name -> shim path, and how they were placed."""

    shims: dict[str, str]
    mode: str


class EnvRemoved(_Result, frozen=True):
    """remove-env: the old environment is in the stash (recorded as ``{}``)."""


class Move(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    stash: str


class ShimMoves(_Result, frozen=True):
    """remove-shims' intent: each shim path and where it goes in the stash."""

    moves: list[Move]


class ShimTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    target: str


class ShimPlan(_Result, frozen=True):
    """copy-shims' intent: executable name -> the shim path and the launcher it exposes."""

    shims: dict[str, ShimTarget]


class EnvStash(_Result, frozen=True):
    """remove-env's intent: where the old environment goes."""

    stash: str


R = TypeVar("R", bound=_Result)


def read(result: Result | None, kind: type[R]) -> R | None:
    """``result`` as ``kind``, or None when it is absent or another kind of result."""
    if not result:
        return None
    try:
        return msgspec.convert(result, kind)
    except msgspec.ValidationError:
        return None


def first(results: Any, kind: type[R]) -> R | None:
    """The first of ``results`` (a step's predecessors) that is a ``kind``."""
    return next((r for r in (read(x, kind) for x in results) if r is not None), None)
