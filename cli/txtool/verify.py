"""``txtool verify``: where the disk disagrees with the journal, each with its fix."""

from __future__ import annotations

import os
from pathlib import Path

from txengine import JournalState

from . import backend as be
from .fixes import fix, reinstall_command
from .locations import Locations
from .tools import project


def verify(loc: Locations, state: JournalState) -> list[str]:
    problems: list[str] = []
    tools = project(state)
    for view in state.incomplete():
        problems.append(
            f"{view.subject}: incomplete {view.kind} ({view.audit().where}); fix: {fix(view)}"
        )
    for tool in tools.values():
        fix_ = f"fix: {reinstall_command(tool.name)}"
        env = Path(tool.env)
        if not env.is_dir():
            problems.append(f"{tool.name}: environment {env} is missing; {fix_}")
            continue
        try:
            installed = be.inspect_env(env, tool.name)
        except be.BackendError:
            problems.append(f"{tool.name}: {tool.name} is not installed in {env}; {fix_}")
            continue
        if installed.version != tool.version:
            problems.append(
                f"{tool.name}: environment has {installed.version}, journal says {tool.version}; {fix_}"
            )
        for name, shim in sorted(tool.shims.items()):
            problems += _check_shim(tool.name, env, name, Path(shim), fix_)
    problems += _strays(loc, {Path(t.env) for t in tools.values()}, state)
    return problems


def _check_shim(tool: str, env: Path, name: str, shim: Path, fix: str) -> list[str]:
    target = be.script_path(env, name)
    if not os.path.lexists(shim):
        return [f"{tool}: executable {shim} is missing; {fix}"]
    if shim.is_symlink():
        if Path(os.readlink(shim)) != target:
            return [f"{tool}: {shim} points to {os.readlink(shim)}, not {target}; {fix}"]
        if not target.exists():
            return [f"{tool}: {shim} points to a missing {target}; {fix}"]
        return []
    if not target.exists() or shim.read_bytes() != target.read_bytes():
        return [f"{tool}: {shim} is not a copy of {target}; {fix}"]
    return []


def _strays(loc: Locations, envs: set[Path], state: JournalState) -> list[str]:
    """Environments in the data dir that no installed tool or open operation accounts for."""
    if not loc.tools_dir.is_dir():
        return []
    busy = {Path(p.args["env"]) for v in state if not v.closed for p in v.plan if "env" in p.args}
    found = []
    for tool_dir in sorted(loc.tools_dir.iterdir()):
        for env in sorted(tool_dir.iterdir()) if tool_dir.is_dir() else [tool_dir]:
            if env not in envs and env not in busy:
                found.append(f"stray {env} (no tool uses it; safe to delete)")
    return found
