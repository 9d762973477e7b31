"""What both backends share: running a child safely, reading its errors, checking pins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .errors import BackendError, classify
from .options import IndexOptions, check_local_locations, redact

_WINDOWS = sys.platform == "win32"


@runtime_checkable
class Backend(Protocol):
    name: str

    async def resolve(
        self, requirement: str, python: str, index: IndexOptions, extra: Sequence[str] = ()
    ) -> list[str]: ...

    async def create_env(self, env: Path, python: str) -> None: ...

    async def install(self, env: Path, pins: Sequence[str], index: IndexOptions) -> None: ...


def validate_requirement(requirement: str) -> Requirement:
    try:
        return Requirement(requirement)
    except InvalidRequirement as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "parse error"
        raise BackendError(
            f"invalid requirement {requirement!r}: {first}", kind="invalid"
        ) from None


def pin(name: str, version: str) -> str:
    return f"{canonicalize_name(name)}=={version}"


def sorted_pins(pins: Sequence[str]) -> list[str]:
    # By name, not by string: "txdemo==1" must sort before "txdemo-helper==1".
    return sorted(pins, key=lambda p: p.partition("==")[0])


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(stderr: str) -> str | None:
    for ln in stderr.splitlines():
        ln = ANSI.sub("", ln).strip()
        if ln and not ln.startswith(("WARNING", "warning:", "Using Python", "Looking in")):
            return ln
    return None


# Run in front of every uv/pip child: it dies with txtool (Linux PR_SET_PDEATHSIG), so a
# SIGKILLed txtool leaves no orphan writing into an environment that resume or revert then
# rebuilds or deletes; and it writes files no more permissive than umask 022, whatever the
# user's umask. A parent already gone before prctl took effect is caught by the ppid check.
_CHILD = """
import os, sys
if sys.platform.startswith("linux"):
    import ctypes, signal
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        sys.exit(137)
os.umask(os.umask(0o022) | 0o022)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as e:
    sys.stderr.write(f"cannot run {sys.argv[2]}: {e.strerror or e}\\n")
    sys.exit(127)
"""


def _guarded(cmd: Sequence[str]) -> list[str]:
    """``cmd`` behind the :data:`_CHILD` guard (POSIX; Windows has job objects, not this)."""
    if _WINDOWS:
        return list(cmd)
    return [sys.executable, "-I", "-S", "-c", _CHILD, str(os.getpid()), *cmd]


async def run(
    cmd: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    message: Callable[[str], str | None] | None = None,
) -> str:
    """Run a tool; return its stdout or raise BackendError with a one-line cause."""
    try:
        if stdin is not None:
            proc = await anyio.run_process(_guarded(cmd), input=stdin, check=False, env=dict(env))
        else:
            # Tools must never wait for input from the user's terminal.
            proc = await anyio.run_process(
                _guarded(cmd), stdin=subprocess.DEVNULL, check=False, env=dict(env)
            )
    except OSError as e:
        raise BackendError(f"{what}: cannot run {cmd[0]}: {e.strerror or e}", kind="failed") from e
    out = proc.stdout.decode("utf-8", "replace")
    err = redact(proc.stderr.decode("utf-8", "replace"))
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
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise BackendError(f"unexpected line in resolver output: {raw!r}", kind="failed")
        pins.append(pin(req.name, specs[0].version))
    return sorted_pins(pins)
