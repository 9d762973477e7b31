"""Steps: the unit of work of an operation, and the contract each step type keeps.

A step type is a ``msgspec.Struct`` subclass of :class:`Step`; its fields are its arguments
and go into the plan recorded by ``op-started``. It declares:

``intent(ctx)``
    What it is about to do, recorded durably *before* the side effect: everything needed to
    probe and undo it. It must come out the same when computed again on resume (derive it
    from the step's arguments, earlier steps' results and ``ctx.stash_path``).
``apply(ctx)``
    Do it and return a JSON-able result. After a crash the engine may run ``apply`` again on
    a half-done effect, so it must be idempotent, or ``probe`` must detect the effect.
``probe(ctx)``
    On resume, before re-applying a step that had started: return the result if the effect
    is already complete, or None to have ``apply`` run.
``revert(ctx, result)``
    Undo the effect, complete or partial (``result`` is None when the step never finished).
    Must be idempotent: a crash during revert means it runs again.
``cleanup(ctx, result)``
    After commit only: drop what was kept for undo (stashed files). Safe to repeat.

A non-deterministic step (say, resolving versions) returns ``ctx.recorded`` when it is set:
the result of an earlier run of the same step, which a resume must reuse, never recompute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from . import _failpoints as failpoints
from ._events import PlannedStep
from ._fs import FileSystem

Result = dict[str, Any]


class StepError(Exception):
    """A step's own failure, with a one-line message for the user."""


class Step(msgspec.Struct, kw_only=True, frozen=True):
    """Base class of step types. Subclasses set ``kind``, a stable name used in journals."""

    kind: ClassVar[str] = ""

    def describe(self) -> str:
        """A short human label for progress output."""
        return self.kind

    def intent(self, ctx: StepContext) -> Result:
        return {}

    async def apply(self, ctx: StepContext) -> Result:
        raise NotImplementedError

    async def probe(self, ctx: StepContext) -> Result | None:
        return None

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        raise NotImplementedError

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        return None


@dataclass
class StepContext:
    """What a step sees of its operation while it runs."""

    op: str
    index: int
    kind: str
    fs: FileSystem
    stash_dir: Path
    meta: Mapping[str, Any]
    results: Sequence[Result | None]
    recorded: Result | None = None
    intent: Result = field(default_factory=dict)

    def stash_path(self, name: str) -> Path:
        """A place, private to this operation and step, to move a file or tree aside."""
        return self.stash_dir / f"{self.index}-{name}"

    def failpoint(self, name: str, path: str | Path | None = None) -> None:
        """Pass the failpoint ``step.<kind>.<name>`` (see :mod:`txengine._failpoints`)."""
        if failpoints.ACTIVE:
            failpoints.hit(f"step.{self.kind}.{name}", path)


class StepTypes:
    """The step types an engine knows, by ``kind``: how plans are encoded and decoded."""

    def __init__(self, types: Iterable[type[Step]]) -> None:
        self._types: dict[str, type[Step]] = {}
        for t in types:
            if not t.kind or t.kind in self._types:
                raise ValueError(f"step type {t.__name__} needs a unique, non-empty kind")
            self._types[t.kind] = t

    def encode(self, step: Step) -> PlannedStep:
        if self._types.get(step.kind) is not type(step):
            raise ValueError(f"step type {type(step).__name__} is not registered")
        return PlannedStep(type=step.kind, args=msgspec.to_builtins(step))

    def decode(self, planned: PlannedStep) -> Step:
        cls = self._types.get(planned.type)
        if cls is None:
            raise ValueError(f"unknown step type {planned.type!r}")
        return msgspec.convert(planned.args, cls)
