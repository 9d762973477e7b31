"""SIGKILL at every failpoint an operation passes; resume or revert gives exactly old or new."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from txhelpers import make_tree, tree

from txengine import load

OLD = {"b": b"old b", "d": "dir", "d/x": b"x", "d/l": ("link", "x")}
NEW = {"a": b"new a", "b": b"new b"}

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import anyio

    from txengine import Engine, Journal, PlaceFile, RemovePath


    async def main(mode: str, base: Path) -> None:
        root = base / "tree"
        with Journal.open(base / "j") as journal:
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

    def killed_at(base: Path, k: int) -> subprocess.CompletedProcess[str]:
        return _child(script, "run", _fresh(base), TXENGINE_FAILPOINTS=f"*#{k}=kill")

    # Plans hold absolute paths, so each direction gets its own fresh copy, killed at k.
    cases = [(tmp_path / f"{d}{k}", k) for k in range(1, n + 1) for d in ("fwd", "back")]
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda case: killed_at(*case), cases))
    committed: dict[int, bool] = {}
    for (base, k), run in zip(cases, runs, strict=True):
        assert run.returncode == -9, f"kill at #{k} ({points[k - 1]}): {run.stderr}"
        if base.name.startswith("back"):
            committed[k] = any(v.committed for v in load(base / "j"))

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
