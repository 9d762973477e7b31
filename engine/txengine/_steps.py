"""Steps: the unit of work of an operation, and the contract each step type keeps.

A step type is a ``msgspec.Struct`` subclass of :class:`Step`; its fields are its arguments
and go into the plan recorded by ``op-started``. It declares:

``intent(ctx)``
    What it is about to do, recorded durably *before* the side effect: everything needed to
    probe and undo it. It must come out the same when computed again on resume (derive it
    from the step's arguments, earlier steps' results and ``ctx.stash_path``).
``apply(ctx)``
    Do it and return its result: a dict of JSON values or a ``msgspec.Struct`` (recorded as
    a JSON object; read it back typed with ``ctx.result_of``). After a crash the engine may run ``apply`` again on
    a half-done effect, so it must be idempotent, or ``probe`` must detect the effect.
``probe(ctx)``
    On resume, before re-applying a step that had started: return the result if the effect
    is already complete, or None to have ``apply`` run.
``revert(ctx, result)``
    Undo the effect, complete or partial (``result`` is None when the step never finished).
    Must be idempotent: a crash during revert means it runs again.
``cleanup(ctx, result)``
    After commit only: drop what was kept for undo (stashed files). Safe to repeat.

Every type must define ``revert`` (registration refuses one that does not), so a failure
can never leave an operation stuck half undone; a step with nothing to undo says so with
an empty ``revert``.

Steps evolve: a type whose fields change between releases raises ``class_version`` and
defines ``upcast_vN_vM(args) -> args`` for each step up, applied in order to the arguments
recorded by an older release (the model is eventsourcing's ``class_version``/``upcast``).

A non-deterministic step (say, resolving versions) returns ``ctx.recorded`` when it is set:
the result of an earlier run of the same step, which a resume must reuse, never recompute.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from . import _failpoints as failpoints
from ._errors import PlanInvalid, PlanUndecodable, TxError, UnknownStepKind
from ._events import KIND_PATTERN, PlannedStep
from ._fs import FileSystem

#: A step's result or intent as recorded: a JSON object.
Result = dict[str, Any]

T = TypeVar("T")

_KIND = re.compile(KIND_PATTERN)
_encode = msgspec.json.Encoder().encode
_decode_object = msgspec.json.Decoder(Result).decode


class StepError(TxError):
    """A step's own failure, with a one-line message for the user."""


def recordable(value: object, what: str) -> Result:
    """``value`` as the journal will give it back: encoded once, decoded once.

    Tuples come back as lists, bytes as base64 text, integer keys as strings: handing
    every later reader this decoded value makes a first run and a resume see the same.
    Raises ValueError when ``value`` is not a JSON object or cannot be encoded.
    """
    try:
        return _decode_object(_encode(value))
    except (TypeError, msgspec.EncodeError) as e:
        raise ValueError(f"{what} cannot be recorded: {e}") from None
    except msgspec.ValidationError:
        raise ValueError(f"{what} must be a JSON object, not {type(value).__name__}") from None


class Step(msgspec.Struct, kw_only=True, frozen=True):
    """Base class of step types. Subclasses set ``kind``, a stable name used in journals,
    and raise ``class_version`` (with an ``upcast_vN_vM`` method) when their fields change."""

    kind: ClassVar[str] = ""
    class_version: ClassVar[int] = 1

    def describe(self) -> str:
        """A short human label for progress output."""
        return self.kind

    def intent(self, ctx: StepContext) -> Result:
        """What the step is about to do, recorded before ``apply``; the same on every call."""
        return {}

    async def apply(self, ctx: StepContext) -> Result | msgspec.Struct:
        """Do the step's effect and return its result (a dict or a ``msgspec.Struct``)."""
        raise NotImplementedError

    async def probe(self, ctx: StepContext) -> Result | msgspec.Struct | None:
        """On resume of a started step: its result if the effect is complete, else None."""
        return None

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        """Undo the effect, whole or partial (``result`` is None if it never finished)."""
        raise NotImplementedError

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        """After commit: drop what was kept for undo. Safe to repeat."""
        return None


class StepContext(msgspec.Struct):
    """What a step sees of its operation while it runs.

    ``results`` holds every step's recorded result (None while not done), ``recorded`` this
    step's own from an earlier attempt, ``intent`` its recorded intent.
    """

    op: str
    index: int
    kind: str
    fs: FileSystem
    stash_dir: Path
    meta: Mapping[str, Any]
    results: Sequence[Result | None]
    recorded: Result | None = None
    intent: Result = {}
    kinds: Sequence[str] = ()

    def stash_path(self, name: str) -> Path:
        """A place, private to this operation and step, to move a file or tree aside."""
        return self.stash_dir / f"{self.index}-{name}"

    def result_of(self, step: int | str, as_type: type[T]) -> T | None:
        """The recorded result of step ``step`` (an index, or the last step of that kind
        before this one) converted to ``as_type`` (a Struct, say), or None if it has none."""
        if isinstance(step, int):
            found = self.results[step]
        else:
            before = zip(self.kinds[: self.index], self.results, strict=False)
            found = next((r for k, r in reversed(list(before)) if k == step), None)
        return None if found is None else msgspec.convert(found, as_type)

    def failpoint(self, name: str, path: str | Path | None = None) -> None:
        """Pass the failpoint ``step.<kind>.<name>`` (see :mod:`txengine._failpoints`)."""
        if failpoints.ACTIVE:
            failpoints.hit(f"step.{self.kind}.{name}", path)


def _upcasts(cls: type[Step]) -> list[Callable[[Result], Result]]:
    """``upcast_v1_v2`` … up to ``cls.class_version``, in order; a missing one is a bug."""
    hooks = []
    for v in range(1, cls.class_version):
        hook = getattr(cls, f"upcast_v{v}_v{v + 1}", None)
        if hook is None:
            raise ValueError(
                f"step type {cls.__name__} is at class_version {cls.class_version}"
                f" but has no upcast_v{v}_v{v + 1}"
            )
        hooks.append(hook)
    return hooks


class StepTypes:
    """The step types an engine knows, by ``kind``: how plans are encoded and decoded.

    Registration refuses a type without a ``kind`` of the journal's shape, a kind seen
    twice, a type that does not define ``revert``, and a missing upcast.
    """

    def __init__(self, types: Iterable[type[Step]]) -> None:
        self._types: dict[str, type[Step]] = {}
        self._upcasts: dict[str, list[Callable[[Result], Result]]] = {}
        for t in types:
            if not _KIND.fullmatch(t.kind) or t.kind in self._types:
                raise ValueError(
                    f"step type {t.__name__} needs a unique kind matching {KIND_PATTERN}"
                )
            if t.revert is Step.revert:
                raise ValueError(
                    f"step type {t.__name__} does not define revert (a step with nothing to"
                    " undo defines an empty one)"
                )
            self._types[t.kind] = t
            self._upcasts[t.kind] = _upcasts(t)

    def encode(self, step: Step) -> PlannedStep:
        """``step`` as a plan entry, checked to decode back to an equal step."""
        cls = type(step)
        if self._types.get(step.kind) is not cls:
            raise PlanInvalid(f"step type {cls.__name__} is not registered")
        try:
            args = recordable(msgspec.to_builtins(step), f"the arguments of {step.describe()}")
            msgspec.convert(args, cls)
        except (TypeError, ValueError) as e:  # msgspec.ValidationError is a ValueError
            raise PlanInvalid(f"{step.describe()}: bad arguments: {e}") from None
        version = cls.class_version
        return PlannedStep(type=step.kind, args=args, version=version)

    def decode(self, planned: PlannedStep, op: str, index: int) -> Step:
        """The step recorded as ``planned`` (step ``index`` of ``op``), upcast to this release."""
        cls = self._types.get(planned.type)
        if cls is None:
            raise UnknownStepKind(op, index, planned.type)
        if planned.version > cls.class_version:
            raise PlanUndecodable(
                op,
                index,
                planned.type,
                f"recorded by class_version {planned.version}, this release has"
                f" {cls.class_version} (upgrade to resume it)",
            )
        args = planned.args
        try:
            for hook in self._upcasts[planned.type][planned.version - 1 :]:
                args = hook(dict(args))
            return msgspec.convert(args, cls)
        except Exception as e:  # an upcast bug or a field mismatch: both name the step
            raise PlanUndecodable(op, index, planned.type, str(e) or type(e).__name__) from e
