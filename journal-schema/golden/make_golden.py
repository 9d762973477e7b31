"""Write the golden journals of the current format version, once.

    python journal-schema/golden/make_golden.py

writes ``journal-schema/golden/v<FORMAT_VERSION>/<name>/`` for each scenario below: a real
journal directory (``journal.log``, and ``journal.snapshot`` where compacted) written by
this release's :class:`txengine.Journal` and :class:`txengine.Engine`, plus
``expected.json``: what replaying it must give (state, position and audit of every
operation, and whether a torn tail is cut off).

Run it once per format version, when that version is new. Golden files of a released
version are never regenerated: they are the journals real users have on disk, and
``tests/schema/test_schema.py`` checks that every later release still replays them to the
same states. The script refuses to overwrite an existing version directory.

The steps here touch no files: replay never executes steps, so their arguments are fake,
relative paths and the journals do not depend on where they were written.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from txengine import (
    FORMAT_VERSION,
    Engine,
    Journal,
    OperationError,
    Result,
    Step,
    StepContext,
    load,
)

HERE = Path(__file__).resolve().parent
KEEP = ("journal.log", "journal.snapshot")


class Crash(BaseException):
    """Stands for the process dying: it escapes the engine, which catches only Exception."""


class Place(Step, frozen=True):
    """Pretend to place a file. Options make its revert or clean-up fail, or crash it."""

    kind = "place"
    path: str
    version: str = "1.0"
    fail_revert: bool = False
    crash_revert: bool = False
    fail_cleanup: bool = False

    def intent(self, ctx: StepContext) -> Result:
        return {"path": self.path, "stash": f"stash/{ctx.index}-{Path(self.path).name}"}

    async def apply(self, ctx: StepContext) -> Result:
        return {"path": self.path, "version": self.version}

    async def probe(self, ctx: StepContext) -> Result | None:
        return None

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        if self.crash_revert:
            raise Crash
        if self.fail_revert:
            raise PermissionError(13, "Permission denied", self.path)

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        if self.fail_cleanup:
            raise PermissionError(13, "in use", self.path)


class Resolve(Step, frozen=True):
    """A non-deterministic step: its result must be reused on resume."""

    kind = "resolve"
    requirement: str

    async def apply(self, ctx: StepContext) -> Result:
        if ctx.recorded is not None:
            return ctx.recorded
        return {"pins": {self.requirement.split(">")[0].split("=")[0]: "2.0.1"}}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class Fail(Step, frozen=True):
    """Fails with an OSError (as a full disk would), or crashes the process mid-step."""

    kind = "fail"
    path: str
    crash: bool = False

    async def apply(self, ctx: StepContext) -> Result:
        if self.crash:
            raise Crash
        raise OSError(28, "No space left on device", self.path)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class Flaky(Step, frozen=True):
    """Crashes while ``FLAKY_ARMED`` is set, succeeds once it is cleared (for resume)."""

    kind = "flaky"
    path: str

    async def apply(self, ctx: StepContext) -> Result:
        if FLAKY_ARMED:
            raise Crash
        return {"path": self.path}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


STEPS: list[type[Step]] = [Place, Resolve, Fail, Flaky]
FLAKY_ARMED = True
_ids = itertools.count(1)


class GoldenJournal(Journal):
    """Operation ids that do not change from one run of the script to the next."""

    @staticmethod
    def new_op_id() -> str:
        return f"{next(_ids):012x}"


Phase = Callable[[Engine], Any]


def _phase(directory: Path, body: Phase) -> None:
    """Open the journal, run ``body`` (an async fn of the engine), close, as one process."""
    with GoldenJournal.open(directory) as journal:
        engine = Engine(journal, STEPS)
        try:
            anyio.run(body, engine)
        except (OperationError, Crash):
            pass


def run(kind: str, subject: str, *plan: Step) -> Phase:
    async def body(engine: Engine) -> None:
        await engine.run(kind, subject, list(plan), meta={"requested": subject})

    return body


def resume(op: str, *, revert: bool = False) -> Phase:
    async def body(engine: Engine) -> None:
        await engine.resume(op, revert=revert)

    return body


def install(subject: str, version: str = "1.0") -> Phase:
    return run(
        "install",
        subject,
        Resolve(requirement=f"{subject}>={version}"),
        Place(path=f"tools/{subject}/env", version=version),
        Place(path=f"bin/{subject}", version=version),
    )


def _op_id(n: int) -> str:
    return f"{n:012x}"


# -- scenarios: each writes one journal directory -----------------------------------------


def success(d: Path) -> None:
    _phase(d, install("alpha"))
    _phase(d, install("beta", "3.1"))


def reverted(d: Path) -> None:
    _phase(
        d,
        run(
            "upgrade",
            "alpha",
            Resolve(requirement="alpha>=2"),
            Place(path="tools/alpha/env.new", version="2.0"),
            Fail(path="bin/alpha"),
        ),
    )


def revert_failed(d: Path) -> None:
    _phase(
        d,
        run(
            "upgrade",
            "ruff",
            Place(path="tools/ruff/env.new", version="0.6", fail_revert=True),
            Fail(path="bin/ruff"),
        ),
    )


def interrupted(d: Path) -> None:
    """The process died inside step 2 (step_open) and inside a revert (step_reverting)."""
    _phase(d, run("install", "alpha", Place(path="tools/alpha/env"), Fail(path="x", crash=True)))
    _phase(
        d,
        run(
            "install",
            "beta",
            Place(path="tools/beta/env", crash_revert=True),
            Fail(path="bin/beta"),
        ),
    )


def cleanup_pending(d: Path) -> None:
    _phase(d, run("uninstall", "alpha", Place(path="bin/alpha.exe", fail_cleanup=True)))


def resumed(d: Path) -> None:
    """Interrupted operations taken over by a later run: forward, and back."""
    global FLAKY_ARMED
    _phase(d, run("install", "alpha", Resolve(requirement="alpha"), Flaky(path="bin/alpha")))
    _phase(d, run("install", "beta", Place(path="tools/beta/env"), Flaky(path="bin/beta")))
    FLAKY_ARMED = False
    _phase(d, resume(_op_id(1)))
    _phase(d, resume(_op_id(2), revert=True))
    FLAKY_ARMED = True


def compacted(d: Path) -> None:
    """Closed operations folded into the snapshot; an open one carried over; more after."""
    _phase(d, install("alpha"))
    _phase(d, run("upgrade", "beta", Place(path="tools/beta/env.new"), Fail(path="bin/beta")))
    _phase(d, run("install", "gamma", Place(path="tools/gamma/env"), Fail(path="x", crash=True)))
    with GoldenJournal.open(d) as journal:
        assert journal.compact() == 2
    _phase(d, install("delta"))


def torn_tail(d: Path) -> None:
    """A crash in the middle of an append left half a record at the end of the log."""
    _phase(d, install("alpha"))
    with open(d / "journal.log", "ab") as f:
        f.write(b'0badc0de {"type":"op-started","v":1,"seq":9,"op":"0000000000')


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "success": success,
    "reverted": reverted,
    "revert-failed": revert_failed,
    "interrupted": interrupted,
    "cleanup-pending": cleanup_pending,
    "resumed": resumed,
    "compacted": compacted,
    "torn-tail": torn_tail,
}


def expected(d: Path) -> dict[str, Any]:
    warnings: list[str] = []
    state = load(d, warn=warnings.append)
    return {
        "torn_tail": bool(warnings),
        "last_seq": state.last_seq,
        "ops": [
            {
                "op": v.id,
                "kind": v.kind,
                "subject": v.subject,
                "state": v.state,
                "steps": v.steps,
                "where": v.where(),
                "results": v.results,
                "error": v.error,
                "compacted": v.compacted,
                "audit": list(v.audit().actions),
            }
            for v in state
        ],
    }


def main() -> int:
    out = HERE / f"v{FORMAT_VERSION}"
    if out.exists():
        print(f"{out} exists: golden journals are never regenerated", file=sys.stderr)
        return 1
    global _ids
    for name, scenario in SCENARIOS.items():
        d = out / name
        _ids = itertools.count(1)
        scenario(d)
        for child in d.iterdir():  # the lock, its owner note, empty stash dirs
            if child.name not in KEEP:
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        text = json.dumps(expected(d), indent=2, sort_keys=True) + "\n"
        (d / "expected.json").write_text(text, encoding="utf-8")
        print(f"wrote {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
