"""Generations: each committed state of a tool is an environment kept for rollback.

A tool's environments live at ``tools/NAME/<id>``; ``tools/NAME/current`` is a symlink
naming the current one, its **stable path**. Switching a generation (an upgrade's new
environment, or a rollback to a kept one) is one atomic rename of that link, and on POSIX
the shims are links through it (``bin/X -> tools/NAME/current/bin/X``), so the switch moves
every executable at once. The last ``TXTOOL_KEEP_GENERATIONS`` generations besides the
current one are kept (the one current before it first, then the newest); older ones are
pruned by the operation that makes them fall out of that window, their environments
stashed like any removal and deleted only after its commit.

The steps here are txtool step types (registered in ``steps.STEP_TYPES``):

``use-generation``  check that a kept generation's environment is whole; its executables
``switch-current``  point the stable path at a generation (one rename); revert points it back
``prune-envs``      stash environments (and, for uninstall, the stable path) until commit
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from txengine import (
    OperationView,
    Result,
    Step,
    StepContext,
    StepError,
    atomic_symlink,
    sweep_temps,
)

from . import backend as be
from .locations import BadSetting, Locations
from .names import canonical
from .results import EnvInstalled, Resolved, Skipped, _Result, first, read
from .stashes import drop_aside, move_aside, put_back, remove_if_empty
from .tools import Generation, Projector, Tool

#: The name of each tool's stable path, beside its environments.
CURRENT = "current"
KEEP_ENV = "TXTOOL_KEEP_GENERATIONS"
DEFAULT_KEEP = 2


def keep_generations(environ: Mapping[str, str] | None = None) -> int:
    """``TXTOOL_KEEP_GENERATIONS``: generations kept besides the current one (default 2;
    0 deletes the old environment at each upgrade, as before generations)."""
    env = os.environ if environ is None else environ
    raw = env.get(KEEP_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP
    if not raw.isdigit():
        raise BadSetting(f"{KEEP_ENV}={raw!r} is not a whole number of generations (e.g. 2)")
    return int(raw)


def current_link(loc: Locations, tool: str) -> Path:
    """The tool's stable path: always the current generation's environment."""
    return loc.tools_dir / tool / CURRENT


def skipped(ctx: StepContext) -> bool:
    """Resolution found the installed pins again: the later steps have nothing to do."""
    resolved = first(ctx.results, Resolved)
    return bool(resolved and resolved.unchanged)


def to_prune(
    generations: Iterable[Generation], current: int, previous: int | None, keep: int
) -> list[Generation]:
    """What falls out of the window: every generation but ``current`` and ``keep`` others,
    the one current before it (``previous``, rollback's default) first, then the newest.
    A kept generation whose environment is gone (deleted by hand) is unreachable: it takes
    no place in the window and is pruned with the rest."""
    others = [g for g in generations if g.number != current]
    gone = [g for g in others if not os.path.isdir(g.env)]
    others = [g for g in others if g not in gone]
    others.sort(key=lambda g: (g.number != previous, -g.number))
    return gone + others[keep:]


def pick(tool: Tool, wanted: str | None) -> Generation | None:
    """The kept generation ``wanted`` names (a number, or a version: the newest kept one
    of it), or by default the one current before; None when it is not kept."""
    if wanted is None:
        return tool.generation(tool.previous)
    if wanted.isdigit():
        return tool.generation(int(wanted))
    found = [g for g in tool.generations if g.version == wanted and g.number != tool.number]
    return max(found, key=lambda g: g.number, default=None)


def built(views: Iterable[OperationView], tool: str) -> list[Generation]:
    """Every generation of ``tool`` the operations built, kept or not (for a pruned one's
    recorded pins), oldest first."""
    projector, seen = Projector(), {}
    for view in views:
        projector.apply(view)
        now = projector.tools.get(tool)
        if now is not None and view.subject == tool:
            seen.update({g.op: g for g in now.generations})
    return list(seen.values())


def reinstall_pinned(gen: Generation, tool: str) -> str:
    """The command that builds ``gen`` again from an index: its exact recorded pins."""
    own = next((p for p in gen.pins if canonical(p.split("==", 1)[0]) == tool), None)
    words = [_quoted(own or f"{tool}=={gen.version}")]
    words += [f"--with {_quoted(p)}" for p in gen.pins if p != own]
    return "txtool install --force " + " ".join(words)


def _quoted(word: str) -> str:
    """``word`` in single quotes, as one shell word whatever it holds (it is journal data)."""
    return "'" + word.replace("'", "'\"'\"'") + "'"


# -- steps ----------------------------------------------------------------------------------


class Switched(_Result, frozen=True):
    """switch-current: the stable path names this environment now (``linked``), or links
    are refused under the home and the tool has no stable path."""

    env: str
    linked: bool = True


# What creating a symlink fails with where the filesystem or the OS refuses links (FAT,
# some network mounts, Windows without the privilege, its ERROR_PRIVILEGE_NOT_HELD).
_LINKS_REFUSED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def links_refused(e: OSError) -> bool:
    return e.errno in _LINKS_REFUSED or getattr(e, "winerror", None) == 1314


def linked(ctx: StepContext) -> bool:
    """The operation's switch made the stable path (or has not run): shims may go through it."""
    switched = first(ctx.results, Switched)
    return switched is None or switched.linked


class EnvStashes(_Result, frozen=True):
    """prune-envs' intent: each path removed and where it goes in the stash."""

    stashes: dict[str, str]


class EnvsPruned(_Result, frozen=True):
    """prune-envs: the paths moved into the stash (deleted after commit)."""

    removed: list[str]


class UseGeneration(Step, frozen=True):
    """A rollback's first step: the kept generation's environment is whole (its interpreter
    link, the recorded version and every launcher), and its executables for the shim steps.
    Reads only; a damaged one fails the rollback before anything changed."""

    kind = "use-generation"
    tool: str
    env: str
    version: str
    executables: dict[str, str]
    number: int = 0

    def describe(self) -> str:
        return f"check generation {self.number} ({self.tool} {self.version})"

    async def apply(self, ctx: StepContext) -> Result:
        env = Path(self.env)
        where = f"generation {self.number} of {self.tool} ({env})"
        if env.is_symlink() or not env.is_dir():
            raise StepError(f"{where} is missing (`txtool gc {self.tool}` forgets it)")
        try:
            found = be.inspect_env(env, self.tool).version
        except be.BackendError:
            found = None
        if found != self.version:
            raise StepError(f"{where} no longer has {self.tool} {self.version}")
        if not be.env_python(env).exists():
            raise StepError(f"{where} has no interpreter")
        missing = [n for n, launcher in self.executables.items() if not Path(launcher).exists()]
        if missing:
            raise StepError(f"{where} lost its launchers: {', '.join(sorted(missing))}")
        return EnvInstalled(version=self.version, executables=self.executables).record()

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None  # it only read


def _sweep(ctx: StepContext, directory: Path) -> None:
    """Remove the temp link of a switch killed before its rename (never a live writer's)."""
    if directory.is_dir():
        sweep_temps(directory, ctx.fs)


class SwitchCurrent(Step, frozen=True):
    """Point the stable path ``link`` at ``env`` with one rename; revert points it back at
    ``previous`` (or removes it when there was none)."""

    kind = "switch-current"
    link: str
    env: str
    previous: str = ""

    def describe(self) -> str:
        return f"switch {Path(self.link).parent.name} to {Path(self.env).name}"

    async def apply(self, ctx: StepContext) -> Result:
        if skipped(ctx):
            return Skipped().record()
        try:
            self._point(ctx, self.env)
        except NotImplementedError:
            return Switched(env=self.env, linked=False).record()
        except OSError as e:
            if not links_refused(e):
                raise
            return Switched(env=self.env, linked=False).record()
        ctx.failpoint("switched", self.link)
        return Switched(env=self.env).record()

    def _point(self, ctx: StepContext, env: str) -> None:
        link = Path(self.link)
        _sweep(ctx, link.parent)
        name = Path(env).name  # relative: the home can move with its links intact
        if link.is_symlink() and os.readlink(link) == name:
            return
        if os.path.lexists(link) and not link.is_symlink():
            raise StepError(f"{link} is not txtool's link (something else is there)")
        atomic_symlink(ctx.fs, name, link)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        if self.previous:
            self._point(ctx, self.previous)
            return
        link = Path(self.link)
        _sweep(ctx, link.parent)
        if link.is_symlink() and os.readlink(link) == Path(self.env).name:
            ctx.fs.unlink(link)


class PruneEnvs(Step, frozen=True):
    """Move environments (and ``link``, the stable path, for an uninstall) into the stash;
    they are deleted only after commit, so a revert puts them back with no network."""

    kind = "prune-envs"
    envs: list[str]
    link: str = ""

    def describe(self) -> str:
        n = len(self.envs)
        return f"remove {n} old environment{'s' if n != 1 else ''}"

    def _paths(self) -> list[str]:
        return [*self.envs, *([self.link] if self.link else [])]

    def intent(self, ctx: StepContext) -> Result:
        stashes = {p: str(ctx.stash_path(f"env-{i}")) for i, p in enumerate(self._paths())}
        return EnvStashes(stashes=stashes).record()

    def _stashes(self, ctx: StepContext) -> dict[str, str]:
        intent = read(ctx.intent, EnvStashes)
        return intent.stashes if intent else {}

    async def apply(self, ctx: StepContext) -> Result:
        if skipped(ctx):
            return Skipped().record()
        removed = []
        for path, stash_path in self._stashes(ctx).items():
            if move_aside(ctx, Path(path), Path(stash_path)):
                ctx.failpoint("removed", path)
            removed.append(path)
        return EnvsPruned(removed=removed).record()

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        for path, stash_path in reversed(self._stashes(ctx).items()):
            put_back(ctx, Path(path), Path(stash_path))

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        paths = self._paths()
        for path in paths:
            drop_aside(ctx, Path(path))
        if paths:  # an uninstall's: the tool's directory, and tools/ if it was the last
            tool_dir = Path(paths[0]).parent
            remove_if_empty(ctx, tool_dir)
            remove_if_empty(ctx, tool_dir.parent)
