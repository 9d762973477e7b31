"""One case of a campaign: a work directory, the children run in it, how to reproduce."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import _failpoints as failpoints
from ._scenario import Argv, Hit, Scenario

KILLED = -signal.SIGKILL


@dataclass
class _Child:
    argv: list[str]
    fail: str | None  # the TXENGINE_FAILPOINTS value
    cwd: Path
    env_extra: dict[str, str]

    def repro(self) -> str:
        env = dict(self.env_extra)
        if self.fail:
            env[failpoints.ENV] = self.fail
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        cmd = shlex.join(self.argv)
        return f"(cd {shlex.quote(str(self.cwd))} && {assigns + ' ' if assigns else ''}{cmd})"


@dataclass
class _Result:
    rc: int
    hits: list[Hit]
    output: str
    seconds: float


def _read_trace(path: Path) -> list[Hit]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    hits = []
    for line in text.splitlines():
        name, _, where = line.partition("\t")
        hits.append(Hit(name, where))
    return hits


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Case:
    """One case: a work directory (the world, always at the same path), a place to save a
    copy of it, traces and logs, and the list of children run so far (for repro)."""

    def __init__(self, scenario: Scenario, root: Path, name: str) -> None:
        self.scenario = scenario
        self.name = name
        self.dir = root / re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.world = self.dir / "world"
        self.world.mkdir(parents=True)
        self.saved = self.dir / "saved"
        self.runs = 0
        self.chain: list[_Child] = []
        self.outcome: str | None = None

    def setup(self) -> None:
        self.scenario.setup(self.world)

    def child(self, argv: Argv, fail: str | None) -> _Child:
        return _Child(list(argv), fail, self.world, self.scenario.child_env(self.world))

    def start(
        self, child: _Child, trace: bool = True
    ) -> tuple[subprocess.Popen[bytes], Path, Path, float]:
        self.runs += 1
        self.chain.append(child)
        trace_path = self.dir / f"trace-{self.runs}.txt"
        log_path = self.dir / f"output-{self.runs}.txt"
        env = {
            k: v for k, v in os.environ.items() if k not in (failpoints.ENV, failpoints.TRACE_ENV)
        }
        env.update(child.env_extra)
        if child.fail:
            env[failpoints.ENV] = child.fail
        if trace:
            env[failpoints.TRACE_ENV] = str(trace_path)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                child.argv,
                cwd=child.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return proc, trace_path, log_path, time.monotonic()

    def wait(
        self, started: tuple[subprocess.Popen[bytes], Path, Path, float], timeout: float
    ) -> _Result:
        proc, trace_path, log_path, t0 = started
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise _Broken(f"child did not finish within {timeout:g}s") from None
        return _Result(rc, _read_trace(trace_path), _tail(log_path), time.monotonic() - t0)

    def call(self, argv: Argv, fail: str | None = None) -> _Result:
        return self.wait(self.start(self.child(argv, fail)), self.scenario.timeout)

    def save(self) -> None:
        if self.saved.exists():
            shutil.rmtree(self.saved)
        shutil.copytree(self.world, self.saved, symlinks=True)

    def restore(self) -> None:
        """Put the saved world back, at the same path."""
        shutil.rmtree(self.world)
        shutil.copytree(self.saved, self.world, symlinks=True)

    def repro(self) -> str:
        steps = [c.repro() for c in self.chain]
        return "after setup: " + " ; then ".join(steps) if steps else "(setup only)"


class _Broken(Exception):
    """A check failed; the message says which."""


class _Note(_Child):
    """A non-command step in a reproduction chain (e.g. the journal cut of a power loss)."""

    def __init__(self, text: str) -> None:
        super().__init__([], None, Path(), {})
        self.text = text

    def repro(self) -> str:
        return self.text
