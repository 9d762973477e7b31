"""The ``txtool`` runner the CLI tests share: a home, a bin dir and ``python -m txtool`` as a
real subprocess. Imported by ``conftest.py`` and by tests that name :class:`Tx` (a module of
its own: ``conftest`` is ambiguous when several test directories have one)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from txtool.cli import OK

TIMEOUT = 120


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("txtool: error:")]


def _one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``txtool: error:`` line of a failed run; no traceback anywhere."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _tree_digest(*roots: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry under ``roots``: its kind, link target or content hash (no times)."""
    out: dict[str, str] = {}
    for root in roots:
        if not os.path.lexists(root):
            out[str(root)] = "absent"
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                p = Path(dirpath) / name
                if any(str(p).startswith(str(e)) for e in exclude):
                    continue
                if p.is_symlink():
                    out[str(p)] = "link:" + os.readlink(p)
                elif p.is_dir():
                    out[str(p)] = "dir"
                else:
                    out[str(p)] = "file:" + hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Tx:
    """One isolated txtool installation: ``tx("install", ...)`` runs the real CLI."""

    one_error = staticmethod(_one_error)
    error_lines = staticmethod(_error_lines)
    tree_digest = staticmethod(_tree_digest)
    wait_for = staticmethod(_wait_for)

    def __init__(self, root: Path, wheelhouse: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.bin = root / "bin"
        self.wheelhouse = wheelhouse
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TXENGINE_", "TXTOOL_"))}
        env.update(TXTOOL_HOME=str(self.home), TXTOOL_BIN_DIR=str(self.bin), TERM="dumb")
        # A narrow terminal, as under xdist or CI: uv then wraps its messages.
        env["COLUMNS"] = "80"
        env["TXTOOL_MAN_DIR"] = str(root / "man")  # never the real ~/.local/share/man
        self.env = env

    @property
    def journal(self) -> Path:
        return self.home / "journal"

    @property
    def index(self) -> list[str]:
        return ["--no-index", "--find-links", str(self.wheelhouse)]

    def environ(self, failpoints: str | None = None, **extra: str) -> dict[str, str]:
        env = dict(self.env)
        if failpoints:
            env["TXENGINE_FAILPOINTS"] = failpoints
        env.update(extra)
        return env

    def __call__(
        self,
        *args: str,
        failpoints: str | None = None,
        expect: int | None = OK,
        **extra: str,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "txtool", *args],
            env=self.environ(failpoints, **extra),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=self.root,
        )
        if expect is not None:
            assert proc.returncode == expect, (
                f"txtool {' '.join(args)}: exit {proc.returncode}, expected {expect}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def spawn(
        self, *args: str, failpoints: str | None = None, **extra: str
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "txtool", *args],
            env=self.environ(failpoints, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.root,
        )

    def install(
        self, *specs: str, expect: int | None = OK, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return self("install", *specs, *self.index, expect=expect, **kw)

    def shim(self, name: str = "txdemo") -> str:
        """Run the shim ``bin/NAME``; return its first stdout line."""
        path = self.bin / name
        assert os.path.lexists(path), f"{path} is missing"
        proc = subprocess.run([str(path)], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def list_json(self, expect: int | None = OK) -> list[dict[str, Any]]:
        return json.loads(self("list", "--json", expect=expect).stdout)

    def tool(self, name: str) -> dict[str, Any]:
        (entry,) = [t for t in self.list_json(expect=None) if t["name"] == name]
        return entry

    def envs(self, tool: str) -> list[Path]:
        """The tool's environments (its generations), without its stable path (a link)."""
        d = self.home / "tools" / tool
        return sorted(p for p in d.iterdir() if not p.is_symlink()) if d.is_dir() else []

    def building(self) -> bool:
        """Whether an environment is being built: it is in one of the home's build places
        (``build/KEY-N``, cli/txtool/builds.py) until it moves to its own path."""
        d = self.home / "build"
        return d.is_dir() and any(p.is_dir() for p in d.iterdir())

    def digest(self, *, journal: bool = True) -> dict[str, str]:
        exclude = () if journal else (str(self.journal),)
        return _tree_digest(self.home, self.bin, exclude=exclude)

    def assert_clean(self) -> None:
        """``status`` and ``verify`` both say everything is complete and on disk."""
        self("status")
        self("verify")

    @property
    def releases(self) -> Path:
        """A find-links dir of this test's own: an index that gains releases over time."""
        return self.root / "releases"

    def install_first_releases(self, *names: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Install ``names`` unpinned (``upgrade`` keeps a pin) while only the 1.0 releases
        are published in :attr:`releases`; :meth:`publish` then adds every other one."""
        self.releases.mkdir(exist_ok=True)
        for wheel in self.wheelhouse.glob("*-1.0-*.whl"):
            shutil.copy2(wheel, self.releases)
        return self("install", *names, "--no-index", "--find-links", str(self.releases), **kw)

    def publish(self) -> None:
        """Every release of the wheelhouse, in :attr:`releases` too."""
        for wheel in self.wheelhouse.glob("*.whl"):
            shutil.copy2(wheel, self.releases)
