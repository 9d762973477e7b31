"""``check_step``: the in-process conformance check of one step type.

It passes on the engine's own file steps and catches a step that breaks each rule: an
apply that is neither idempotent nor probe-able, a revert that does nothing, a result
that the journal gives back changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from txengine import PlaceFile, RemovePath, Result, StepContext, atomic_write
from txengine.testing import Report, check_step


def old_tree(world: Path) -> None:
    (world / "d" / "sub").mkdir(parents=True)
    (world / "a").write_text("old a\n")
    (world / "d" / "x").write_text("x\n")
    (world / "d" / "sub" / "y").write_text("y\n")
    os.symlink("a", world / "link")


def assert_ok(report: Report) -> None:
    assert report.ok, str(report)


def test_place_file_over_an_old_file(workroot: Path) -> None:
    report = check_step(
        PlaceFile, lambda w: {"path": str(w / "a"), "data": "new a\n"}, old_tree, workdir=workroot
    )
    assert_ok(report)
    # A case per rule, and two per file call of apply (resume and revert after its fault).
    calls = int(next(n for n in report.notes if "file calls" in n).split()[2])
    assert calls >= 4
    assert report.tried >= 5 + 2 * calls


def test_place_file_where_there_was_none(tmp_path: Path) -> None:
    args = {"path": "", "data": "#!/bin/sh\n", "mode": 0o755}
    report = check_step(
        PlaceFile,
        lambda w: {**args, "path": str(w / "bin" / "tool")},
        lambda w: (w / "bin").mkdir(),
        workdir=tmp_path / "check",
        backend="trio",
    )
    assert_ok(report)
    assert (tmp_path / "check").is_dir()  # a given workdir is kept


def test_remove_path_of_a_tree_and_of_a_link(workroot: Path) -> None:
    assert_ok(check_step(RemovePath, lambda w: {"path": str(w / "d")}, old_tree, workdir=workroot))
    assert_ok(
        check_step(RemovePath, lambda w: {"path": str(w / "link")}, old_tree, workdir=workroot)
    )


# -- broken steps: each must be caught ---------------------------------------------------------


class AppendLine(PlaceFile, frozen=True):
    """A bug: appends on every apply (not idempotent), and probe never says done."""

    kind: ClassVar[str] = "append-line"

    async def apply(self, ctx: StepContext) -> Result:
        path = Path(self.path)
        old = path.read_bytes() if path.exists() else b""
        atomic_write(ctx.fs, path, old + self.data.encode())
        return {}

    async def probe(self, ctx: StepContext) -> Result | None:
        return None


class NoRevert(RemovePath, frozen=True):
    """A bug: revert does nothing."""

    kind: ClassVar[str] = "remove-norevert"

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


class TupleResult(RemovePath, frozen=True):
    """A bug: a result the journal gives back with other types (a list, a string key)."""

    kind: ClassVar[str] = "remove-tuple"

    async def apply(self, ctx: StepContext) -> Result:
        await super().apply(ctx)
        return {"removed": (self.path, True), 1: "one"}


def failures(report: Report) -> dict[str, str]:
    assert not report.ok
    return {f.case: f.message for f in report.failures}


def test_catches_an_apply_that_is_not_idempotent(workroot: Path) -> None:
    found = failures(
        check_step(
            AppendLine, lambda w: {"path": str(w / "a"), "data": "+\n"}, old_tree, workdir=workroot
        )
    )
    assert "a second apply (probe said not done) left a mixed world" in found["apply twice"]
    # It also never recorded the old file, so PlaceFile's revert cannot put it back.
    assert found["revert done"] == "revert left the new world, expected the old one"
    assert "revert untouched" not in found  # nothing to undo before apply ran


def test_catches_a_revert_that_does_nothing(workroot: Path) -> None:
    found = failures(
        check_step(NoRevert, lambda w: {"path": str(w / "d")}, old_tree, workdir=workroot)
    )
    assert found["revert done"] == "revert left the new world, expected the old one"
    assert "revert unrecorded" in found
    assert "apply twice" not in found and "revert untouched" not in found
    # A partial remove (the fault hit its stash rename) needs no undo: that case passes.
    faulted = [case for case in found if "after fault" in case]
    assert not any(case.startswith("resume") for case in faulted)


def test_catches_a_result_that_the_journal_changes(workroot: Path) -> None:
    report = check_step(TupleResult, lambda w: {"path": str(w / "d")}, old_tree, workdir=workroot)
    found = failures(report)
    assert report.tried == 1 and list(found) == ["clean apply"]
    assert "the result of apply" in found["clean apply"] and "comes back" in found["clean apply"]
    assert "[clean apply]" in str(report)


class DriftingIntent(RemovePath, frozen=True):
    """A bug: the intent is read from the disk each time, so a resume records another one."""

    kind: ClassVar[str] = "remove-drifting"

    def intent(self, ctx: StepContext) -> Result:
        return {**super().intent(ctx), "existed": os.path.lexists(self.path)}


def test_catches_an_intent_that_changes_on_resume(workroot: Path) -> None:
    report = check_step(
        DriftingIntent, lambda w: {"path": str(w / "d")}, old_tree, workdir=workroot
    )
    found = failures(report)
    # Before apply it comes out the same; once the path has moved it does not.
    assert "clean apply" not in found
    assert found["apply twice"].startswith("the intent comes out different on resume")
    assert "'existed': True" in found["apply twice"] and "'existed': False" in found["apply twice"]
    assert "revert done" not in found  # revert reads the recorded intent: fine
