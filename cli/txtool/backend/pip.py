"""The pip backend: the pip of the interpreter running txtool, pointed at targets with
``--python``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .common import check_install, empty_or_missing, pin, run, sorted_pins, validate_requirement
from .environments import env_python
from .errors import KIND_PATTERNS, BackendError, classify
from .options import IndexOptions, check_local_locations, index_env, index_flags

_PIP_CONNECT = re.compile(r"Failed to establish a new connection: ([^'\")]+)")


def _pip_message(stderr: str) -> str | None:
    """The cause: for network trouble the warning that names it (pip then only says "no matching
    distribution"), else the first `ERROR:` line. Other WARNING lines are noise here."""
    if classify(stderr) == "unreachable":
        needles = dict(KIND_PATTERNS)["unreachable"]
        for ln in stderr.splitlines():
            if any(n in ln.lower() for n in needles):
                m = _PIP_CONNECT.search(ln)
                if m:
                    url = ln.rsplit("': ", 1)[-1].strip() if "': " in ln else ""
                    return f"cannot connect to the index{f' ({url})' if url else ''}: {m.group(1)}"
                return ln.strip().removeprefix("WARNING:").strip()
    for ln in stderr.splitlines():
        ln = ln.strip()
        if ln.startswith("ERROR:"):
            return ln[len("ERROR:") :].strip()
    return None


class PipBackend:
    """Drives the pip of the interpreter running txtool, pointed at targets with `--python`."""

    name = "pip"

    def __init__(self, *, honor_config: bool = False) -> None:
        # The tool envs are made --without-pip, so txtool's own pip does the work (pip >= 22.3).
        if importlib.util.find_spec("pip") is None:
            raise BackendError(
                "the pip backend needs pip in txtool's own environment", kind="failed"
            )
        self.pip = [sys.executable, "-m", "pip"]
        self.honor_config = honor_config

    def _env(self, index: IndexOptions | None = None) -> dict[str, str]:
        env = dict(os.environ)
        if index is not None:
            index_env(env, index, "PIP_INDEX_URL")
        if not self.honor_config:
            # Config files ignored (like uv --no-config); PIP_* env vars still honored.
            env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_REQUIRE_VIRTUALENV"] = "0"  # resolving against a base interpreter is fine
        env.pop("VIRTUAL_ENV", None)
        return env

    def _common(self) -> list[str]:
        return ["--no-input", "--disable-pip-version-check"]

    async def resolve(
        self, requirement: str, python: str, index: IndexOptions, extra: Sequence[str] = ()
    ) -> list[str]:
        for r in (requirement, *extra):
            validate_requirement(r)
        check_local_locations(index)
        cmd = [*self.pip, "--python", python, "install", "--dry-run", "--ignore-installed"]
        cmd += ["--quiet", "--report", "-", *self._common(), *index_flags(index), requirement]
        cmd += extra
        out = await run(
            cmd, what=f"cannot resolve {requirement}", env=self._env(index), message=_pip_message
        )
        try:
            report = json.loads(out)
            pins = [pin(i["metadata"]["name"], i["metadata"]["version"]) for i in report["install"]]
        except (ValueError, KeyError, TypeError) as e:
            raise BackendError(
                f"cannot resolve {requirement}: unreadable pip report ({e})",
                kind="failed",
                detail=out,
            ) from None
        if not pins:
            raise BackendError(
                f"cannot resolve {requirement}: resolver returned nothing", kind="failed"
            )
        return sorted_pins(pins)

    async def create_env(self, env: Path, python: str) -> None:
        env = Path(env)
        empty_or_missing(env)
        cmd = [python, "-m", "venv", "--without-pip", os.fspath(env)]
        await run(cmd, what=f"cannot create environment {env}", env=self._env())

    async def install(self, env: Path, pins: Sequence[str], index: IndexOptions) -> None:
        check_install(pins, index)
        cmd = [*self.pip, "--python", os.fspath(env_python(env)), "install", "--no-deps"]
        cmd += ["--quiet", *self._common(), *index_flags(index), *list(pins)]
        await run(
            cmd, what=f"cannot install into {env}", env=self._env(index), message=_pip_message
        )
