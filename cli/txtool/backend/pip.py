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
from typing import Any
from urllib.parse import urlsplit

from ..names import canonical
from .common import (
    check_install,
    check_resolve,
    empty_or_missing,
    pin,
    run,
    some_pins,
    sorted_pins,
)
from .config import remember_secrets
from .environments import env_python
from .errors import KIND_PATTERNS, BackendError, classify
from .options import (
    IndexOptions,
    index_env,
    index_flags,
)
from .pins import install_args, is_rebuilt

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


def _arg(requirement: str) -> str:
    """``requirement`` as pip takes it: older pips refuse ``name @ git+file:///path`` (a URL
    without a host), so such a reference goes bare; pip reads its name from its metadata."""
    _, sep, url = requirement.partition(" @ ")
    parts = urlsplit(url.strip())
    if sep and "+" in parts.scheme and not parts.netloc:
        return url.strip()
    return requirement


def _pin(item: dict[str, Any]) -> str:
    """One entry of pip's installation report as a pin: ``name==version``, or for a direct
    reference ``name @ URL`` (a VCS URL with the commit pip checked out)."""
    name = item["metadata"]["name"]
    if not item.get("is_direct"):
        return pin(name, item["metadata"]["version"])
    info = item["download_info"]
    url = str(info["url"])
    vcs = info.get("vcs_info")
    if vcs:
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    return f"{canonical(name)} @ {url}"


class PipBackend:
    """Drives the pip of the interpreter running txtool, pointed at targets with `--python`."""

    name = "pip"
    movable = False  # pip's scripts name their interpreter by the path they were built at

    def __init__(self) -> None:
        # The tool envs are made --without-pip, so txtool's own pip does the work (pip >= 22.3).
        if importlib.util.find_spec("pip") is None:
            raise BackendError(
                "the pip backend needs pip in txtool's own environment", kind="failed"
            )
        self.pip = [sys.executable, "-m", "pip"]

    def _env(self, index: IndexOptions | None = None) -> dict[str, str]:
        env = dict(os.environ)
        remember_secrets(self.name, env)
        if index is not None:
            index_env(env, index, "PIP_INDEX_URL")
        # pip.conf (global, user, site, PIP_CONFIG_FILE) and PIP_* apply as pipx applies
        # them: pip reads no configuration from the current directory.
        env["PIP_REQUIRE_VIRTUALENV"] = "0"  # resolving against a base interpreter is fine
        env.pop("VIRTUAL_ENV", None)
        return env

    def _common(self) -> list[str]:
        return ["--no-input", "--disable-pip-version-check"]

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
        cmd = [*self.pip, "--python", python, "install", "--dry-run", "--ignore-installed"]
        cmd += ["--quiet", "--report", "-", *self._common(), *index_flags(index)]
        cmd += [*([] if deps else ["--no-deps"]), _arg(requirement), *map(_arg, plugins)]
        out = await run(
            cmd, what=f"cannot resolve {requirement}", env=self._env(index), message=_pip_message
        )
        try:
            report = json.loads(out)
            pins = [_pin(i) for i in report["install"]]
        except (ValueError, KeyError, TypeError) as e:
            raise BackendError(
                f"cannot resolve {requirement}: unreadable pip report ({e})",
                kind="failed",
                detail=out,
            ) from None
        return sorted_pins(some_pins(pins, requirement))

    async def create_env(self, env: Path, python: str, *, movable: bool = False) -> None:
        if movable:
            raise BackendError("pip cannot build a movable environment", kind="failed")
        env = Path(env)
        empty_or_missing(env)
        cmd = [python, "-m", "venv", "--without-pip", os.fspath(env)]
        await run(cmd, what=f"cannot create environment {env}", env=self._env())

    async def install(
        self, env: Path, pins: Sequence[str], index: IndexOptions, editable: Sequence[str] = ()
    ) -> None:
        check_install(pins, index)
        cmd = [*self.pip, "--python", os.fspath(env_python(env)), "install", "--no-deps"]
        cmd += ["--quiet", *self._common(), *index_flags(index)]
        if any(is_rebuilt(p) for p in pins):
            # pip reuses the wheel it built from an sdist of the same file name: installing
            # from a file or a URL again means building what is there now.
            cmd.append("--no-cache-dir")
        cmd += map(_arg, install_args(pins, editable))
        await run(
            cmd, what=f"cannot install into {env}", env=self._env(index), message=_pip_message
        )
