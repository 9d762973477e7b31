"""The uv backend: drives the uv binary shipped by the `uv` PyPI package."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .common import (
    ANSI,
    check_install,
    check_resolve,
    empty_or_missing,
    parse_pins,
    run,
    some_pins,
)
from .config import remember_secrets
from .environments import env_python
from .options import (
    IndexOptions,
    index_env,
    index_flags,
)
from .pins import install_args, is_rebuilt, pin_name


def _uv_message(stderr: str) -> str | None:
    """uv prints `error: X` then `  cause: Y` lines; keep X plus the first and last cause."""
    lines = [ANSI.sub("", ln).strip() for ln in stderr.splitlines()]
    for i, ln in enumerate(lines):
        if ln.lower().startswith("error:"):
            parts = [ln[len("error:") :].strip().rstrip(":")]
            causes: list[str] = []
            for c in lines[i + 1 :]:
                if c.startswith("cause:"):
                    causes.append(c[len("cause:") :].strip())
                elif causes and c and not c.lower().startswith(("hint:", "help:", "error:")):
                    causes[-1] += " " + c  # uv wraps long causes at $COLUMNS
                elif causes:
                    break
            if causes:
                parts.append(causes[0])
                if causes[-1] != causes[0]:
                    parts.append(causes[-1])
            return ": ".join(p for p in parts if p)
    return None


# uv reads the project's configuration (the nearest uv.toml, or pyproject.toml with
# [tool.uv], from the current directory up) before the user's and the system's, and only
# `uv tool` skips it; `uv pip` has no flag for that, and --no-config drops the user's and
# the system's too. So uv runs with --project pointing at an empty project of txtool's own:
# its empty uv.toml is the "project configuration" uv finds and stops at, its pyproject.toml
# keeps the workspace search from walking up to a project above it, and the user's and the
# system's uv.toml (and UV_CONFIG_FILE, UV_NO_CONFIG) apply as uv tool applies them.
_NO_PROJECT = {
    "uv.toml": "# txtool: no project configuration\n",
    "pyproject.toml": '[project]\nname = "txtool-no-project"\nversion = "0"\n',
}
_PREFIX = "txtool-uv-"
_swept: list[bool] = []  # once per process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(tmp: str) -> None:
    """Remove the empty projects of txtool processes that died without removing theirs
    (a SIGKILL in the middle of a uv call): each is named for its process, and only this
    user's are touched."""
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        pid = name[len(_PREFIX) :].split("-", 1)[0]
        if not name.startswith(_PREFIX) or not pid.isdigit() or _alive(int(pid)):
            continue
        path = os.path.join(tmp, name)
        try:
            if os.lstat(path).st_uid == os.geteuid():
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


@contextmanager
def _no_project() -> Iterator[str]:
    """An empty project for one uv call (0700, as mkdtemp makes it: no one else can put a
    uv.toml in it), removed after the call."""
    tmp = tempfile.gettempdir()
    if not _swept:
        _swept.append(True)
        _sweep(tmp)
    root = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=tmp)
    try:
        for name, text in _NO_PROJECT.items():
            Path(root, name).write_text(text)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@functools.cache
def _uv_bin() -> str:
    """The uv binary of the `uv` package, looked up once (its search reads sysconfig's
    paths: ~1 ms, and every step asks for its backend)."""
    from uv import find_uv_bin

    return os.fspath(find_uv_bin())


class UvBackend:
    """Drives the uv binary shipped by the `uv` PyPI package."""

    name = "uv"
    movable = True

    def __init__(self, uv: str | None = None) -> None:
        self.uv = os.fspath(uv) if uv is not None else _uv_bin()

    def _common(self, project: str) -> list[str]:
        return ["--color", "never", "--project", project]

    def _env(self, index: IndexOptions | None = None) -> dict[str, str]:
        env = dict(os.environ)
        remember_secrets(self.name, env)
        env.pop("VIRTUAL_ENV", None)  # --python names the target; an active venv must not
        env.setdefault("NO_COLOR", "1")
        if index is not None and index.index_url is not None:
            env.pop("UV_DEFAULT_INDEX", None)  # the recorded index wins, as --index-url did
        return index_env(env, index, "UV_INDEX_URL") if index else env

    async def resolve(
        self,
        requirement: str,
        python: str,
        index: IndexOptions,
        *,
        plugins: Sequence[str] = (),
        deps: bool = True,
    ) -> list[str]:
        """Exact pins for ``requirement`` and ``plugins``, resolved together."""
        check_resolve((requirement, *plugins), index)
        cmd = [self.uv, "pip", "compile", "-", "--python", python, "--no-header"]
        cmd += ["--no-annotate", "--quiet", *index_flags(index)]
        if not deps:
            cmd.append("--no-deps")
        with _no_project() as project:
            out = await run(
                [*cmd, *self._common(project)],
                what=f"cannot resolve {requirement}",
                env=self._env(index),
                stdin="".join(f"{r}\n" for r in (requirement, *plugins)).encode(),
                message=_uv_message,
            )
        return some_pins(parse_pins(out), requirement)

    async def create_env(self, env: Path, python: str, *, movable: bool = False) -> None:
        env = Path(env)
        empty_or_missing(env)
        cmd = [self.uv, "venv", os.fspath(env), "--python", python, "--quiet"]
        if movable:
            cmd.append("--relocatable")
        with _no_project() as project:
            await run(
                [*cmd, *self._common(project)],
                what=f"cannot create environment {env}",
                env=self._env(),
                message=_uv_message,
            )

    async def install(
        self, env: Path, pins: Sequence[str], index: IndexOptions, editable: Sequence[str] = ()
    ) -> None:
        check_install(pins, index)
        # --no-deps: the pins are the complete, recorded resolution; no second resolve may differ.
        cmd = [self.uv, "pip", "install", "--python", os.fspath(env_python(env)), "--no-deps"]
        # uv reuses a directory's build while its pyproject.toml is unchanged: a rebuild is
        # what installing from a directory, a file or a URL again means.
        for p in pins:
            if is_rebuilt(p):
                cmd += ["--refresh-package", pin_name(p)]
        cmd += ["--quiet", *install_args(pins, editable), *index_flags(index)]
        with _no_project() as project:
            await run(
                [*cmd, *self._common(project)],
                what=f"cannot install into {env}",
                env=self._env(index),
                message=_uv_message,
            )
