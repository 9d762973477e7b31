"""One step type against the step contract, in process: :func:`check_step`.

The campaigns prove a whole operation by killing child processes; this checks a single
step type in a few hundred milliseconds, the way an embedder writes a unit test. Every case
starts from a fresh world (``setup``) at the same path, drives the step's methods the way
the engine does (intent recorded first, results encoded as the journal encodes them), and
compares pictures of the world (``observe``) with the old one and the new one.

A failing file call is an ``OSError`` raised by the seam (``fs.*#m=error:EIO``), so the
step's own error handling runs; what a SIGKILL leaves (no handler runs) is the campaigns'
business (:func:`~txengine.testing.crash_campaign`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .. import _failpoints as failpoints
from .._events import PlannedStep
from .._fs import FileSystem
from .._steps import Result, Step, StepContext, StepTypes
from ._report import Failure, Report
from ._scenario import tree_picture

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class _Bad(Exception):
    """One broken rule of the contract; the message says which."""


@dataclass
class _World:
    """The fixed place where every case runs, and what the step needs there."""

    root: Path
    step_type: type[Step]
    args: Callable[[Path], Mapping[str, Any]]
    setup: Callable[[Path], None]
    observe: Callable[[Path], object]
    meta: Mapping[str, Any]
    results: Sequence[Result | None]

    @property
    def world(self) -> Path:
        return self.root / "world"

    async def fresh(self) -> tuple[Step, object]:
        """A new world from ``setup``; return the step (decoded from its recorded plan) and
        the picture of the old world."""
        for d in (self.world, self.root / "stash"):
            shutil.rmtree(d, ignore_errors=True)
        self.world.mkdir(parents=True)
        # In a thread of its own, so that setup may run the engine itself (anyio.run).
        await anyio.to_thread.run_sync(self.setup, self.world)
        types = StepTypes([self.step_type])
        built = msgspec.convert(dict(self.args(self.world)), self.step_type)
        planned = msgspec.json.decode(_encode(types.encode(built)), type=PlannedStep)
        step = types.decode(planned, "check-step", 0)
        if step != built:
            raise _Bad(f"the recorded plan decodes to {step!r}, not {built!r}")
        return step, self.observe(self.world)

    def again(self, ctx: StepContext) -> StepContext:
        """The context a later run (a resume, a revert) gives the step: the recorded intent."""
        return self.context_for(ctx.kind, ctx.intent)

    def context(self, step: Step, intent: Result | None = None) -> StepContext:
        return self.context_for(step.kind, intent)

    def context_for(self, kind: str, intent: Result | None) -> StepContext:
        return StepContext(
            op="check-step",
            index=len(self.results),
            kind=kind,
            fs=FileSystem(),
            stash_dir=self.root / "stash",
            meta=dict(self.meta),
            results=[*self.results, None],
            intent=dict(intent or {}),
        )


def _recorded(what: str, value: object) -> Result:
    """``value`` as the journal gives it back; it must be an object that survives intact."""
    if not isinstance(value, dict):
        raise _Bad(f"{what} is {type(value).__name__}, not a dict (a JSON object)")
    try:
        back = _decode(_encode(value))
    except (TypeError, ValueError, msgspec.EncodeError) as e:
        raise _Bad(f"{what} cannot be recorded: {e}") from None
    if back != value or _shape(back) != _shape(value):
        raise _Bad(f"{what} {value!r} comes back from the journal as {back!r}")
    return dict(back)


def _shape(value: object) -> object:
    """The types inside ``value`` (``True == 1`` and ``1 == 1.0`` hide a change)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [type(value).__name__, *(_shape(v) for v in value)]
    return type(value).__name__


@contextmanager
def _faulty(m: int | None, errno: str, trace: Path | None = None) -> Iterator[None]:
    spec = f"fs.*#{m}=error:{errno}" if m is not None else None
    with failpoints.configured(spec, str(trace) if trace else None):
        yield


def _fs_hits(trace: Path) -> list[str]:
    try:
        lines = trace.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    trace.unlink()
    return [line.replace("\t", " ", 1) for line in lines if line.startswith("fs.")]


class _Checker:
    def __init__(self, w: _World, errno: str) -> None:
        self.w = w
        self.errno = errno
        self.report = Report(w.step_type.kind, "conformance")
        self.trace = w.root / "trace"
        self.old: object = None
        self.new: object = None

    def expect(self, picture: object, end: str, what: str) -> None:
        if picture != (self.old if end == "old" else self.new):
            got = (
                "the old"
                if picture == self.old
                else "the new"
                if picture == self.new
                else "a mixed"
            )
            raise _Bad(f"{what} left {got} world, expected the {end} one")

    async def case(self, name: str, repro: str, body: Callable[[], Awaitable[None]]) -> None:
        self.report.tried += 1
        try:
            await body()
        except _Bad as e:
            self.report.failures.append(Failure(name, str(e), repro, None))
        except Exception as e:
            message = f"raised {type(e).__name__}: {e}"
            self.report.failures.append(Failure(name, message, repro, None))
        else:
            self.report.passed += 1

    async def apply(
        self, step: Step, m: int | None = None, *, trace: bool = False
    ) -> tuple[StepContext, Result | None]:
        """Record the intent, then apply (with the m-th file call failing); return the
        context and the recorded result, or None if apply failed as it was made to."""
        ctx = self.w.context(step)
        intent = _recorded("the intent", step.intent(ctx))
        ctx = self.w.context(step, intent)
        again = step.intent(ctx)  # what a resume computes, with the recorded intent at hand
        if again != intent:
            raise _Bad(f"the intent comes out different on resume: {intent!r} then {again!r}")
        with _faulty(m, self.errno, self.trace if trace else None):
            try:
                result = await step.apply(ctx)
            except Exception:  # the engine takes any exception as the step's failure
                if m is None:
                    raise
                return ctx, None
        return ctx, _recorded("the result of apply", result)

    def resumed(self, step: Step, ctx: StepContext) -> StepContext:
        """The context of a forward resume, which computes the intent again (the disk has
        changed since): it must come out as recorded."""
        later = self.w.again(ctx)
        again = step.intent(later)
        if again != ctx.intent:
            raise _Bad(f"the intent comes out different on resume: {ctx.intent!r}, then {again!r}")
        return later

    async def revert_twice(self, step: Step, ctx: StepContext, result: Result | None) -> None:
        for attempt in ("revert", "a second revert"):
            await step.revert(self.w.again(ctx), result)
            self.expect(self.w.observe(self.w.world), "old", attempt)

    async def run(self) -> Report:
        w = self.w
        step, self.old = await w.fresh()
        await self.apply(step, trace=True)
        apply_hits = _fs_hits(self.trace)
        self.new = w.observe(w.world)
        if self.new == self.old:
            self.report.notes.append("apply changed nothing in the world")
        self.report.notes.append(f"apply made {len(apply_hits)} file calls")

        async def after_apply(then: Callable[[Step, StepContext, Result], Awaitable[None]]) -> None:
            step, _ = await w.fresh()
            ctx, result = await self.apply(step)
            assert result is not None
            await then(step, ctx, result)

        async def probe_then_apply(step: Step, ctx: StepContext, result: Result) -> None:
            ctx = self.resumed(step, ctx)
            probed = await step.probe(ctx)
            self.expect(w.observe(w.world), "new", "probe after a complete apply")
            if probed is not None:
                _recorded("the result of probe", probed)
                return  # probe-able: the engine does not apply it again
            _recorded("the result of a second apply", await step.apply(ctx))
            self.expect(w.observe(w.world), "new", "a second apply (probe said not done)")

        async def cleanup(step: Step, ctx: StepContext, result: Result) -> None:
            for attempt in ("cleanup", "a second cleanup"):
                await step.cleanup(ctx, result)
                self.expect(w.observe(w.world), "new", attempt)

        async def revert_done(step: Step, ctx: StepContext, result: Result) -> None:
            await self.revert_twice(step, ctx, result)

        async def revert_unrecorded(step: Step, ctx: StepContext, result: Result) -> None:
            await self.revert_twice(step, ctx, None)  # killed before step-done was written

        async def revert_untouched() -> None:
            step, _ = await w.fresh()
            ctx = w.context(step)
            ctx = w.context(step, _recorded("the intent", step.intent(ctx)))
            await self.revert_twice(step, ctx, None)

        await self.case(
            "apply twice", "apply, probe, apply again", partial(after_apply, probe_then_apply)
        )
        await self.case("cleanup", "apply, cleanup twice", partial(after_apply, cleanup))
        await self.case(
            "revert done", "apply, revert(result) twice", partial(after_apply, revert_done)
        )
        await self.case(
            "revert unrecorded",
            "apply, revert(None) twice",
            partial(after_apply, revert_unrecorded),
        )
        await self.case("revert untouched", "intent only, revert(None) twice", revert_untouched)

        for m, hit in enumerate(apply_hits, 1):
            fault = f"file call {m}/{len(apply_hits)} of apply ({hit}) fails with {self.errno}"
            for direction in ("resume", "revert"):
                body = partial(self.partial_apply, m, direction)
                await self.case(f"{direction} after fault #{m}", f"{fault}, then {direction}", body)

        revert_hits = await self.count_revert_hits()
        for k, hit in enumerate(revert_hits, 1):
            fault = f"apply, then file call {k}/{len(revert_hits)} of revert ({hit}) fails"
            body = partial(self.partial_revert, k)
            await self.case(f"revert again after revert fault #{k}", f"{fault}, then revert", body)
        return self.report

    async def partial_apply(self, m: int, direction: str) -> None:
        w = self.w
        step, _ = await w.fresh()
        ctx, result = await self.apply(step, m)
        if result is not None:  # the step absorbed the failure: then it must be done
            self.expect(w.observe(w.world), "new", "apply that returned despite a failing call")
        if direction == "revert":
            await self.revert_twice(step, ctx, None)
            return
        ctx = self.resumed(step, ctx)
        probed = await step.probe(ctx)
        if probed is not None:
            _recorded("the result of probe", probed)
            self.expect(w.observe(w.world), "new", "probe that said done")
            return
        _recorded("the result of apply", await step.apply(ctx))
        self.expect(w.observe(w.world), "new", "apply after a partial apply")

    async def count_revert_hits(self) -> list[str]:
        step, _ = await self.w.fresh()
        ctx, result = await self.apply(step)
        with failpoints.configured(None, str(self.trace)):
            await step.revert(ctx, result)
        return _fs_hits(self.trace)

    async def partial_revert(self, k: int) -> None:
        step, _ = await self.w.fresh()
        ctx, result = await self.apply(step)
        with _faulty(k, self.errno):
            try:
                await step.revert(ctx, result)
            except Exception:
                pass  # the engine records revert-failed; a later run reverts again
        await self.revert_twice(step, self.w.again(ctx), result)


def check_step(
    step_type: type[Step],
    args: Callable[[Path], Mapping[str, Any]],
    setup: Callable[[Path], None] = lambda world: None,
    *,
    observe: Callable[[Path], object] = tree_picture,
    meta: Mapping[str, Any] | None = None,
    results: Sequence[Result | None] = (),
    errno: str = "EIO",
    workdir: Path | None = None,
    backend: str = "asyncio",
) -> Report:
    """Check one step type against the step contract; return a :class:`Report`.

    ``args(world)`` gives the step's fields for a world directory that ``setup(world)``
    has just built (the old world; setup runs in a worker thread, so it may install it with
    the engine itself); ``observe(world)`` pictures it (default
    :func:`tree_picture`). ``meta`` and ``results`` (the earlier steps' results) are what
    the step's context shows. The step is built from its recorded plan (so its fields must
    survive the journal), run once to find its new world and its file calls, then, each
    time from a fresh old world at the same path:

    * intent and results are JSON objects that come back from the journal unchanged, and
      the intent comes out the same when recomputed on resume;
    * apply twice: after a complete apply, ``probe`` returns a result, or a second apply
      gives the same new world; ``cleanup`` (twice) keeps the new world;
    * revert after every prefix: before apply, after a complete apply (with its result,
      and with None as after a kill before ``step-done``), and after the m-th file call of
      apply failed with ``errno`` (every m) gives the old world, twice in a row;
    * probe after a partial apply: from each of those partial states, probe (or apply
      again) gives the new world;
    * a revert whose k-th file call failed gives the old world when run again.

    It runs sequentially in ``workdir`` (default: a temporary directory, removed after)
    with ``anyio.run`` on ``backend``, so call it from synchronous code, not inside an
    event loop. Use it as ``assert report.ok, str(report)``.
    """
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix=f"txengine-check-{step_type.kind}-")) if own else workdir
    assert root is not None
    root.mkdir(parents=True, exist_ok=True)
    world = _World(root, step_type, args, setup, observe, dict(meta or {}), list(results))
    checker = _Checker(world, errno)
    started = time.monotonic()
    try:
        report = anyio.run(checker.run, backend=backend)
    except Exception as e:  # the clean run itself broke: nothing else can be checked
        report = checker.report
        report.tried += 1
        message = str(e) if isinstance(e, _Bad) else f"raised {type(e).__name__}: {e}"
        report.failures.append(Failure("clean apply", message, "setup, apply", None))
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report
