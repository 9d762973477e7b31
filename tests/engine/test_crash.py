"""SIGKILL at every failpoint an operation passes; resume or revert gives exactly old or new."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from txhelpers import make_tree, tree

from txengine import Journal, iter_history, load
from txengine._events import CleanedUp, Committed, OpStarted, PlannedStep, StepDone, StepStarted

OLD = {"b": b"old b", "d": "dir", "d/x": b"x", "d/l": ("link", "x")}
NEW = {"a": b"new a", "b": b"new b"}

CHILD = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path

    import anyio

    from txengine import Engine, Journal, PlaceFile, RemovePath


    async def main(mode: str, base: Path) -> None:
        # Relative paths only (plan, journal, stash), so a killed copy can be copied.
        os.chdir(base)
        root = Path("tree")
        with Journal.open("j") as journal:
            engine = Engine(journal, [PlaceFile, RemovePath])
            if mode == "run":
                await engine.run(
                    "install",
                    "demo",
                    [
                        PlaceFile(str(root / "a"), "new a"),
                        PlaceFile(str(root / "b"), "new b"),
                        RemovePath(str(root / "d")),
                    ],
                )
                return
            for view in list(journal.state):
                if not view.closed:
                    await engine.resume(view.id, revert=mode == "revert")


    for base in sys.argv[2:]:
        anyio.run(main, sys.argv[1], Path(base))
    """
)


def _child(script: Path, mode: str, *bases: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TXENGINE_")}
    return subprocess.run(
        [sys.executable, str(script), mode, *map(str, bases)],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _fresh(base: Path) -> Path:
    make_tree(base / "tree", OLD)
    return base


def test_kill_at_every_failpoint_then_resume_or_revert(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    trace = tmp_path / "trace"
    clean = _fresh(tmp_path / "clean")
    proc = _child(script, "run", clean, TXENGINE_FAILPOINT_TRACE=str(trace))
    assert proc.returncode == 0, proc.stderr
    assert tree(clean / "tree") == NEW
    points = trace.read_text().splitlines()
    n = len(points)
    assert 30 < n < 200, n

    def killed_at(k: int) -> subprocess.CompletedProcess[str]:
        return _child(
            script, "run", _fresh(tmp_path / f"fwd{k}"), TXENGINE_FAILPOINTS=f"*#{k}=kill"
        )

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(killed_at, range(1, n + 1)))
    committed: dict[int, bool] = {}
    for k, run in enumerate(runs, 1):
        assert run.returncode == -9, f"kill at #{k} ({points[k - 1]}): {run.stderr}"
        # A second fresh copy killed at k: the same bytes, so copy it.
        shutil.copytree(tmp_path / f"fwd{k}", tmp_path / f"back{k}", symlinks=True)
        committed[k] = any(v.committed for v in load(tmp_path / f"back{k}" / "j"))

    forward = [tmp_path / f"fwd{k}" for k in range(1, n + 1)]
    backward = [tmp_path / f"back{k}" for k in range(1, n + 1)]
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(lambda a: _child(script, *a), [("resume", *forward), ("revert", *backward)])
        )
    for proc in results:
        assert proc.returncode == 0, proc.stderr

    for k in range(1, n + 1):
        where = f"killed at #{k} ({points[k - 1]})"
        fwd, back = tmp_path / f"fwd{k}", tmp_path / f"back{k}"
        ops = list(load(fwd / "j"))
        # Killed before op-started was durable: there is nothing to resume, nothing changed.
        assert tree(fwd / "tree") == (NEW if ops else OLD), where
        assert tree(back / "tree") == (NEW if committed[k] else OLD), where
        for base in (fwd, back):
            assert all(v.closed for v in load(base / "j")), where
            stash = base / "j" / "stash"
            assert not stash.exists() or os.listdir(stash) == [], where


COMPACT_CHILD = textwrap.dedent(
    """
    import sys

    from txengine import Journal

    for base in sys.argv[1:]:
        with Journal.open(base) as journal:
            journal.compact()
    """
)


def _compaction_journal(base: Path) -> tuple[list[str], dict[str, str]]:
    """A journal with history behind it and closed operations in its log; returns every
    closed operation in closing order and what current state holds per subject."""
    plan = [PlannedStep(type="x", args={})]
    ops, current = [], {}
    with Journal.open(base) as journal:
        for n, subject in enumerate(["a", "b", "a", "c", "b", "a"]):
            op = journal.new_op_id()
            journal.append_sync(OpStarted, op, kind="install", subject=subject, plan=plan)
            journal.append_sync(StepStarted, op, index=0)
            journal.append_sync(StepDone, op, index=0, result={"n": n})
            journal.append_sync(Committed, op)
            journal.append_sync(CleanedUp, op)
            ops.append(op)
            current[subject] = op
            if n == 2:
                journal.compact()  # the rest sits in the log: the next compaction appends it
        open_op = journal.new_op_id()
        journal.append_sync(OpStarted, open_op, kind="install", subject="d", plan=plan)
        journal.append_sync(StepStarted, open_op, index=0)
    current["d"] = open_op
    return ops, current


def test_kill_at_every_point_of_a_compaction(tmp_path: Path) -> None:
    """Killed anywhere in a compaction, the journal still loads to the same current state,
    the next compaction finishes the job, and history holds every operation once."""
    script = tmp_path / "compact.py"
    script.write_text(COMPACT_CHILD)
    template = tmp_path / "template"
    ops, current = _compaction_journal(template)
    trace = tmp_path / "trace"
    shutil.copytree(template, tmp_path / "clean")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TXENGINE_")}
    run = [sys.executable, str(script)]
    traced = subprocess.run(
        [*run, str(tmp_path / "clean")],
        env={**environ, "TXENGINE_FAILPOINT_TRACE": str(trace)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert traced.returncode == 0, traced.stderr
    points = trace.read_text().splitlines()
    assert any(p.startswith("history.written") for p in points), points
    for k in range(1, len(points) + 1):
        base = tmp_path / f"k{k}"
        shutil.copytree(template, base)
        killed = subprocess.run(
            [*run, str(base)],
            env={**environ, "TXENGINE_FAILPOINTS": f"*#{k}=kill"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        where = f"killed at #{k} ({points[k - 1]})"
        assert killed.returncode == -9, f"{where}: {killed.stderr}"
        state = load(base)
        assert {
            v.subject: v.id for v in state if v.committed or not v.closed
        }.items() >= current.items(), where
        again = subprocess.run(
            [*run, str(base)], env=environ, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 0, f"{where}: {again.stderr}"
        assert {v.subject: v.id for v in load(base)} == current, where
        assert [v.id for v in iter_history(base)] == [*ops, current["d"]], where
