"""The uv backend: drives the uv binary shipped by the `uv` PyPI package."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .common import ANSI, check_install, empty_or_missing, parse_pins, run, validate_requirement
from .environments import env_python
from .errors import BackendError
from .options import IndexOptions, check_local_locations, index_env, index_flags


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


class UvBackend:
    """Drives the uv binary shipped by the `uv` PyPI package."""

    name = "uv"

    def __init__(self, uv: str | None = None, *, honor_config: bool = False) -> None:
        if uv is None:
            from uv import find_uv_bin

            uv = find_uv_bin()
        self.uv = os.fspath(uv)
        # uv.toml / a pyproject.toml in the cwd must not change what a tool resolves to; index
        # options are explicit and recorded in the journal. UV_* env vars are still honored.
        self.honor_config = honor_config

    def _common(self) -> list[str]:
        flags = ["--color", "never"]
        if not self.honor_config:
            flags.append("--no-config")
        return flags

    def _env(self, index: IndexOptions | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)  # --python names the target; an active venv must not
        env.setdefault("NO_COLOR", "1")
        if index is not None and index.index_url is not None:
            env.pop("UV_DEFAULT_INDEX", None)  # the recorded index wins, as --index-url did
        return index_env(env, index, "UV_INDEX_URL") if index else env

    async def resolve(
        self, requirement: str, python: str, index: IndexOptions, extra: Sequence[str] = ()
    ) -> list[str]:
        for r in (requirement, *extra):
            validate_requirement(r)
        check_local_locations(index)
        cmd = [self.uv, "pip", "compile", "-", "--python", python, "--no-header"]
        cmd += ["--no-annotate", "--quiet", *self._common(), *index_flags(index)]
        out = await run(
            cmd,
            what=f"cannot resolve {requirement}",
            env=self._env(index),
            stdin="".join(f"{r}\n" for r in (requirement, *extra)).encode(),
            message=_uv_message,
        )
        pins = parse_pins(out)
        if not pins:
            raise BackendError(
                f"cannot resolve {requirement}: resolver returned nothing", kind="failed"
            )
        return pins

    async def create_env(self, env: Path, python: str) -> None:
        env = Path(env)
        empty_or_missing(env)
        cmd = [self.uv, "venv", os.fspath(env), "--python", python, "--quiet", *self._common()]
        await run(
            cmd, what=f"cannot create environment {env}", env=self._env(), message=_uv_message
        )

    async def install(self, env: Path, pins: Sequence[str], index: IndexOptions) -> None:
        check_install(pins, index)
        # --no-deps: the pins are the complete, recorded resolution; no second resolve may differ.
        cmd = [self.uv, "pip", "install", "--python", os.fspath(env_python(env)), "--no-deps"]
        cmd += ["--quiet", *self._common(), *list(pins), *index_flags(index)]
        await run(cmd, what=f"cannot install into {env}", env=self._env(index), message=_uv_message)
