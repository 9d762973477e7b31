"""A small file-steps scenario for the crash-test harness (tests/harness is on sys.path).

The child scripts are written into a temporary directory at test time. ``DEMO_BROKEN`` in
the children's environment plants a bug, so the negative tests can prove the harness
catches it: ``revert`` (removing a path cannot be undone) or ``lie`` (a failed operation
exits 0).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from txengine.testing import Scenario, tree_picture

COMMON = '''
import os
import sys
from pathlib import Path

import anyio

from txengine import Engine, Journal, OperationFailed, OperationIncomplete
from txengine._filesteps import PlaceFile, RemovePath

BROKEN = os.environ.get("DEMO_BROKEN", "")


class NoRevertRemove(RemovePath, frozen=True):
    """A bug: removing is never undone."""

    kind = "remove-path-norevert"

    async def revert(self, ctx, result):
        return None


STEPS = [PlaceFile, RemovePath, NoRevertRemove]


def plan(world):
    tree = world / "tree"
    remove = NoRevertRemove if BROKEN == "revert" else RemovePath
    return [
        PlaceFile(path=str(tree / "a.txt"), data="new a\\n", mode=0o644),
        PlaceFile(path=str(tree / "bin" / "tool"), data="#!/bin/sh\\necho new\\n", mode=0o755),
        remove(path=str(tree / "old")),
    ]
'''

RUN = (
    COMMON
    + """

def main():
    world = Path(sys.argv[1])
    with Journal.open(world / ".journal") as journal:
        engine = Engine(journal, STEPS)
        try:
            anyio.run(engine.run, "demo", "tree", plan(world))
        except OperationFailed as e:
            print(f"failed and reverted: {e}", file=sys.stderr)
            return 0 if BROKEN == "lie" else 1
        except OperationIncomplete as e:
            print(f"incomplete: {e}", file=sys.stderr)
            return 2
    print("done")
    return 0


sys.exit(main())
"""
)

RESUME = (
    COMMON
    + """

def main():
    world = Path(sys.argv[1])
    revert = "--revert" in sys.argv[2:]
    with Journal.open(world / ".journal") as journal:
        engine = Engine(journal, STEPS)

        async def go():
            for view in journal.state.incomplete():
                await engine.resume(view.id, revert=revert)
            await engine.finish_cleanups()

        try:
            anyio.run(go)
        except OperationFailed as e:
            print(f"resume failed and reverted: {e}", file=sys.stderr)
            return 1
        except OperationIncomplete as e:
            print(f"still incomplete: {e}", file=sys.stderr)
            return 2
    return 0


sys.exit(main())
"""
)


def setup(world: Path) -> None:
    """The old world: a file to replace, an empty bin dir, a tree to remove, a link."""
    tree = world / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "old" / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("old a\n")
    (tree / "old" / "x").write_text("x\n")
    (tree / "old" / "sub" / "y").write_text("y\n")
    os.symlink("a.txt", tree / "link")


def scenario(scripts: Path, name: str = "file-steps", broken: str = "") -> Scenario:
    """The scenario, with its child scripts written into ``scripts``."""
    scripts.mkdir(parents=True, exist_ok=True)
    run, resume = scripts / "run_op.py", scripts / "resume_op.py"
    run.write_text(RUN)
    resume.write_text(RESUME)
    return Scenario(
        name=name,
        setup=setup,
        run=lambda w: [sys.executable, str(run), str(w)],
        resume=lambda w, revert: (
            [sys.executable, str(resume), str(w)] + (["--revert"] if revert else [])
        ),
        observe=tree_picture,
        env={"DEMO_BROKEN": broken} if broken else {},
        journal_dir=lambda w: w / ".journal",
        timeout=30.0,
    )
