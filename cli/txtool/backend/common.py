"""What both backends share: running a child safely, reading its errors, checking pins."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
import anyio.to_thread
from packaging.requirements import InvalidRequirement, Requirement

from ..names import canonical
from .errors import BackendError, classify
from .options import IndexOptions, check_local_locations, is_bare_url, redact

_WINDOWS = sys.platform == "win32"


@runtime_checkable
class Backend(Protocol):
    name: str
    #: Whether an environment it builds can be renamed (``create_env(..., movable=True)``).
    movable: bool

    async def resolve(
        self,
        requirement: str,
        python: str,
        index: IndexOptions,
        *,
        plugins: Sequence[str] = (),
        deps: bool = True,
    ) -> list[str]: ...

    async def create_env(self, env: Path, python: str, *, movable: bool = False) -> None: ...

    async def install(
        self, env: Path, pins: Sequence[str], index: IndexOptions, editable: Sequence[str] = ()
    ) -> None: ...


def validate_requirement(requirement: str) -> Requirement:
    try:
        return Requirement(requirement)
    except InvalidRequirement as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "parse error"
        raise BackendError(
            f"invalid requirement {requirement!r}: {first}", kind="invalid"
        ) from None


def pin(name: str, version: str) -> str:
    return f"{canonical(name)}=={version}"


def sorted_pins(pins: Sequence[str]) -> list[str]:
    # By name, not by string: "txdemo==1" must sort before "txdemo-helper==1".
    return sorted(pins, key=lambda p: re.split(r"==| @ ", p, maxsplit=1)[0])


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(stderr: str) -> str | None:
    for ln in stderr.splitlines():
        ln = ANSI.sub("", ln).strip()
        if ln and not ln.startswith(("WARNING", "warning:", "Using Python", "Looking in")):
            return ln
    return None


def _prctl() -> Callable[[int, int], int] | None:
    """libc's ``prctl`` on Linux (loaded once, before any fork), else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    fn: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    return fn


_PR_SET_PDEATHSIG = 1
_PRCTL = _prctl()


def _child_setup(parent: int) -> Callable[[], None] | None:
    """What every uv/pip child does between fork and exec (POSIX; Windows has job objects,
    not this): it dies with txtool (Linux ``PR_SET_PDEATHSIG``), so a SIGKILLed txtool
    leaves no orphan writing into an environment that resume or revert then rebuilds or
    deletes; a parent already gone before prctl took effect is caught by the ppid check.
    And it writes files no more permissive than umask 022, whatever the user's umask.

    Only system calls run here (no imports, no locks): the child of a threaded process
    has one thread, and whatever another thread held at the fork stays held."""
    if _WINDOWS:
        return None
    prctl = _PRCTL

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(137)
        os.umask(os.umask(0o022) | 0o022)

    return setup


async def _communicate(proc: subprocess.Popen[bytes], stdin: bytes | None) -> tuple[bytes, bytes]:
    """The child's output once it exits; cancelled, the child is killed and reaped first.

    The pipes are read in a worker thread, but the child was forked by the caller's (the
    event loop's) thread: PR_SET_PDEATHSIG fires when the thread that forked exits, and a
    worker thread may exit while its child still runs."""
    try:
        out, err = await anyio.to_thread.run_sync(proc.communicate, stdin, abandon_on_cancel=True)
    except BaseException:
        proc.kill()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(proc.wait)
        raise
    return out, err


async def run(
    cmd: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    message: Callable[[str], str | None] | None = None,
) -> str:
    """Run a tool; return its stdout or raise BackendError with a one-line cause.

    Forked here, in the event loop's thread, with :func:`_child_setup` in the child: no
    second interpreter in front of the tool (it cost a Python start-up per child)."""
    try:
        proc = subprocess.Popen(
            list(cmd),
            # Tools must never wait for input from the user's terminal.
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            preexec_fn=_child_setup(os.getpid()),
        )
    except OSError as e:
        raise BackendError(f"{what}: cannot run {cmd[0]}: {e.strerror or e}", kind="failed") from e
    raw_out, raw_err = await _communicate(proc, stdin)
    out = raw_out.decode("utf-8", "replace")
    err = redact(raw_err.decode("utf-8", "replace"))
    if proc.returncode != 0:
        line = (message(err) if message else None) or first_line(err)
        line = line or f"{Path(cmd[0]).name} exited with status {proc.returncode}"
        if len(line) > 400:
            line = line[:397] + "..."
        raise BackendError(f"{what}: {line}", kind=classify(err), detail=err)
    return out


def empty_or_missing(env: Path) -> None:
    if env.exists() and (not env.is_dir() or any(env.iterdir())):
        raise BackendError(
            f"cannot create environment: {env} exists and is not empty", kind="failed"
        )


def check_resolve(requests: Sequence[str], index: IndexOptions) -> None:
    """What a resolve is given, checked before a backend runs: requirements (a bare URL is
    the resolver's to read) and local index locations."""
    for r in requests:
        if not is_bare_url(r):
            validate_requirement(r)
    check_local_locations(index)


def some_pins(pins: list[str], requirement: str) -> list[str]:
    """A resolver's answer, which names at least one distribution."""
    if not pins:
        raise BackendError(
            f"cannot resolve {requirement}: resolver returned nothing", kind="failed"
        )
    return pins


def check_install(pins: Sequence[str], index: IndexOptions) -> None:
    if not pins:
        raise BackendError("nothing to install", kind="invalid")
    for p in pins:
        validate_requirement(p)
    check_local_locations(index)


def parse_pins(text: str) -> list[str]:
    pins: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue  # comments and option lines such as --index-url
        req = Requirement(line.split(";", 1)[0].strip())
        if req.url:  # a direct reference (a directory, a file, a URL, a VCS commit)
            pins.append(f"{canonical(req.name)} @ {req.url}")
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise BackendError(f"unexpected line in resolver output: {raw!r}", kind="failed")
        pins.append(pin(req.name, specs[0].version))
    return sorted_pins(pins)
