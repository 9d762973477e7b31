"""``txtool verify``: where the disk disagrees with the journal, each with its fix."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

from packaging.requirements import Requirement

from txengine import JournalState

from . import backend as be
from . import manpages
from .fixes import fix, reinstall_command
from .locations import Locations
from .names import canonical
from .steps import is_ours
from .tools import Tool, extras_of, project

# How long a tool's interpreter may take to run `pass` before it counts as not starting.
PYTHON_TIMEOUT = 20.0


def _python_starts(env: Path) -> str | None:
    """Why the environment's interpreter does not start (pipx ``health``), or None."""
    python = be.env_python(env)
    try:
        proc = subprocess.run(
            [str(python), "-c", "pass"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PYTHON_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"its Python {python} did not start within {PYTHON_TIMEOUT:g}s"
    except OSError as e:
        return f"its Python {python} does not start ({e.strerror or e})"
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"its Python {python} does not start ({err[-1] if err else proc.returncode})"
    return None


def env_problem(tool: Tool) -> str | None:
    """What is broken in the tool's environment (missing, wrong version, dead interpreter):
    the stat checks the upgrade planner makes too, then the interpreter started for real."""
    damage = be.env_damage(Path(tool.env), tool.name, tool.version)
    return damage if damage is not None else _python_starts(Path(tool.env))


def _requires_of_extra(dist: importlib.metadata.Distribution, extra: str) -> list[str]:
    """The distributions ``dist`` needs only with its extra ``extra`` (``Requires-Dist``
    entries whose marker holds with that extra and not without it)."""
    needed: list[str] = []
    for line in dist.requires or ():
        req = Requirement(line)
        if req.marker is None:
            continue
        if req.marker.evaluate({"extra": extra}) and not req.marker.evaluate({"extra": ""}):
            needed.append(canonical(req.name))
    return needed


def wanted_missing(tool: Tool) -> list[str]:
    """What the tool was asked to have and its environment lacks: the distributions of each
    recorded extra, and each plugin."""
    dists = be.distributions(Path(tool.env))
    missing = []
    own = dists.get(tool.name)
    for extra in extras_of(tool.requirement):
        for dep in _requires_of_extra(own, extra) if own is not None else ():
            if dep not in dists:
                missing.append(f"{dep} (of its extra [{extra}]) is missing from its environment")
    for plugin in tool.plugins:
        name = canonical(Requirement(plugin).name)
        if name not in dists:
            missing.append(f"its plugin {name} is missing from its environment")
    return missing


def _fix(tool: Tool) -> str:
    python = "" if Path(tool.python).exists() else f" --python PYTHON (its {tool.python} is gone)"
    return f"fix: {reinstall_command(tool.name)}{python}"


def verify(loc: Locations, state: JournalState) -> list[str]:
    problems: list[str] = []
    tools = project(state)
    for view in state.incomplete():
        problems.append(
            f"{view.subject}: incomplete {view.kind} ({view.audit().where}); fix: {fix(view)}"
        )
    for tool in tools.values():
        broken = env_problem(tool)
        if broken is not None:
            problems.append(f"{tool.name}: {broken}; {_fix(tool)}")
        else:
            problems += [f"{tool.name}: {m}; {_fix(tool)}" for m in wanted_missing(tool)]
        for gen in tool.generations:
            if gen.number != tool.number and not Path(gen.env).is_dir():
                problems.append(
                    f"{tool.name}: kept generation {gen.number} ({gen.version}): environment "
                    f"{gen.env} is missing; fix: txtool gc {tool.name}"
                )
        if not Path(tool.env).is_dir():
            continue
        if tool.link and _points_at(tool.link) != Path(tool.env).name:
            problems.append(f"{tool.name}: {tool.link} does not name {tool.env}; {_fix(tool)}")
        for name, shim in sorted(tool.shims.items()):
            target = tool.targets.get(shim) or str(be.script_path(Path(tool.env), name))
            problems += _check_link(tool.name, "executable", Path(shim), target, _fix(tool))
        for page, source in sorted(manpages.current(state, tool).items()):
            problems += _check_link(tool.name, "man page", Path(page), source, _fix(tool))
    # Kept generations and each tool's stable path are the journal's too.
    known = {Path(p) for t in tools.values() for p in [t.link, *(g.env for g in t.generations)]}
    problems += _strays(loc, known - {Path()}, state)
    return problems


def _points_at(link: str) -> str | None:
    try:
        return os.readlink(link)
    except OSError:
        return None


def _check_link(tool: str, what: str, shim: Path, target: str, fix: str) -> list[str]:
    """A shim or man page txtool placed (``what`` names which): still there, still txtool's
    (a link to ``target`` or a copy of it), and ``target`` still there."""
    if not os.path.lexists(shim):
        return [f"{tool}: {what} {shim} is missing; {fix}"]
    if not is_ours(shim, target):
        # Someone else's file now (a script of the user's, a directory, pipx's link):
        # Rebuilding the tool would refuse it (or, with --force, stash and delete it), so
        # the fix moves it first.
        found = (
            f"a link to {os.readlink(shim)}"
            if shim.is_symlink()
            else ("a directory" if shim.is_dir() else "a file that is not a copy of " + target)
        )
        return [
            f"{tool}: {shim} is not txtool's ({found}); fix: move it elsewhere if you want to "
            f"keep it, then {fix.removeprefix('fix: ')}"
        ]
    if not Path(target).exists():
        return [f"{tool}: {shim} points to a missing {target}; {fix}"]
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
