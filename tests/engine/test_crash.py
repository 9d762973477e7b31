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

from txengine import load

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
