"""The steps of a tool operation, as txengine step types.

install:   resolve -> install-env -> remove-shims -> switch-current -> copy-shims
upgrade:   resolve -> install-env -> remove-shims -> switch-current -> copy-shims
           [-> prune-envs: the generations that fall out of the keep window]
rollback:  use-generation -> remove-shims -> switch-current -> copy-shims
uninstall: remove-shims -> prune-envs (every generation, and the stable path)

Each environment gets its own path (``tools/NAME/ID``) beside the old ones (uv builds it at
a stable place of the home first, and an install makes it while resolving: builds.py), and
``tools/NAME/current`` names the current one (``generations.py``); on POSIX the shims are
links through it, so the shim steps act only on executables that appear or vanish. A
removed environment is only stashed until commit: reverting needs no network. When
resolve finds the installed pins again, the later steps record ``skipped`` and touch
nothing. (``remove-env`` is the removal of releases before generations, kept so that
their journals still resume and revert.)
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path
from typing import Any

import anyio
import msgspec

from txengine import (
    JournalState,
    OperationView,
    Result,
    Step,
    StepContext,
    StepError,
    atomic_copy,
    atomic_symlink,
    stash,
    sweep_temps,
)

from . import backend as be
from . import builds
from .backend.pins import is_rebuilt, pin_name
from .generations import PruneEnvs, SwitchCurrent, UseGeneration, linked, links_refused
from .generations import skipped as _skipped
from .locations import DIR_MODE, Locations, UnsafeLocation
from .names import BadName, executable_name, requirement, tool_name
from .results import (
    EnvInstalled,
    EnvRemoved,
    EnvStash,
    Move,
    Resolved,
    ShimMoves,
    ShimPlan,
    ShimsPlaced,
    ShimsRemoved,
    ShimTarget,
    Skipped,
    first,
    read,
)
from .stashes import aside as _aside
from .stashes import drop_aside, move_aside, put_back
from .stashes import remove_if_empty as _remove_if_empty
from .stashes import stashed_copy as _stashed_copy
from .tools import shim_target


def _resolved(ctx: StepContext) -> Resolved | None:
    return first(ctx.results, Resolved)


def _installed(ctx: StepContext) -> EnvInstalled | None:
    return first(ctx.results, EnvInstalled)


def _moves(ctx: StepContext) -> list[Move]:
    intent = read(ctx.intent, ShimMoves)
    return intent.moves if intent else []


def _shim_plan(ctx: StepContext) -> dict[str, ShimTarget]:
    intent = read(ctx.intent, ShimPlan)
    return intent.shims if intent else {}


def _env_stash(ctx: StepContext) -> Path | None:
    intent = read(ctx.intent, EnvStash)
    return Path(intent.stash) if intent else None


class Stable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Shims as links through the tool's stable path: ``current`` (``tools/NAME/current``)
    names the generation ``env``, so a shim is a link to ``current/bin/X``. ``links``: the old
    shims (path -> target) that are such links already; one the new generation wants exactly
    as it is stays in place, and switching ``current`` switches it."""

    current: str
    env: str
    links: dict[str, str] = {}

    def target(self, launcher: str) -> str:
        return shim_target(launcher, self.env, self.current)

    def kept(self, bin_dir: Path, executables: dict[str, str]) -> dict[str, str]:
        """Shim path -> target, for the old links the new executables keep as they are."""
        wanted = {str(bin_dir / n): self.target(t) for n, t in executables.items()}
        return {p: t for p, t in wanted.items() if self.links.get(p) == t}


def _kept(ctx: StepContext, stable: Stable | None, bin_dir: str) -> dict[str, str]:
    installed = _installed(ctx)
    if stable is None or installed is None or _skipped(ctx):
        return {}
    return stable.kept(Path(bin_dir), installed.executables)


def _through(ctx: StepContext, stable: Stable | None) -> Stable | None:
    """``stable``, unless the switch found that links are refused under the home: the
    shims then expose the launchers themselves."""
    return stable if linked(ctx) else None


class Resolve(Step, frozen=True):
    """Exact pins for the tool and its dependencies; recorded once, reused on resume.

    ``requirement`` names the source too (``name @ URL`` for a directory, a file, a URL or
    a repository): a resume or an upgrade goes back to where the user pointed."""

    kind = "resolve"
    tool: str
    requirement: str
    python: str
    index: dict[str, Any]
    backend: str
    current: list[str] | None = None
    plugins: list[str] = []  # resolved together with the tool, so that the pins cover them
    #: The home's build places (builds.py) when a build follows whatever the resolver says
    #: (not an upgrade's, which may find nothing new): its environment is made meanwhile.
    prepare: str = ""

    def describe(self) -> str:
        return " ".join(["resolve", self.requirement, *(f"--with {p}" for p in self.plugins)])

    async def resolved(self) -> Resolved:
        """The resolution as this step would record it, without the journal (a dry run and
        ``list --outdated`` show it)."""
        try:
            for typed in (self.requirement, *self.plugins):
                requirement(typed)  # read back from a journal: checked as if typed
        except BadName as e:
            raise StepError(str(e)) from None
        backend = be.get_backend(self.backend)
        pins = await backend.resolve(
            self.requirement,
            self.python,
            be.IndexOptions.from_dict(self.index),
            plugins=self.plugins,
        )
        own = next((p for p in pins if pin_name(p) == self.tool), None)
        if own is None:
            raise StepError(f"resolving {self.requirement} did not select {self.tool} itself")
        # A direct reference has no version before it is built: install-env reads it.
        version = own.split("==", 1)[1] if "==" in own else ""
        # A directory, a file or a URL may hold something new under the same pin.
        unchanged = (
            self.current is not None
            and sorted(self.current) == sorted(pins)
            and not any(is_rebuilt(p) for p in pins)
        )
        return Resolved(pins=pins, version=version, unchanged=unchanged)

    async def apply(self, ctx: StepContext) -> Result:
        if ctx.recorded is not None:
            return ctx.recorded  # resolution is not repeatable: a resume installs these pins
        ctx.failpoint("start")
        backend = be.get_backend(self.backend)
        root = builds.places(self.prepare, backend)
        if root is None:
            return (await self.resolved()).record()
        # The resolver and the making of the environment, at once; the resolver's error is
        # raised as itself (a task group would wrap it).
        outcome: list[Resolved | Exception] = []

        async def resolving() -> None:
            try:
                outcome.append(await self.resolved())
            except Exception as e:
                outcome.append(e)
                tg.cancel_scope.cancel()  # no build follows: the environment is not wanted

        async with anyio.create_task_group() as tg:
            tg.start_soon(builds.prepare, root, self.python, self.tool, backend, ctx.fs)
            tg.start_soon(resolving)
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0].record()

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        if self.prepare:
            builds.sweep(Path(self.prepare), ctx.fs)  # an environment made for a killed run


class InstallEnv(Step, frozen=True):
    """Build the tool's environment at its own new path and find its executables."""

    kind = "install-env"
    tool: str
    env: str
    python: str
    index: dict[str, Any]
    backend: str
    editable: bool = False  # the tool's own pin (a project directory) installed with -e
    apps_from: list[str] = []  # dependencies whose executables get shims too
    include_deps: bool = False  # every dependency's executables get shims too
    builds: str = ""  # the home's build places (builds.py); empty: built at env itself

    def describe(self) -> str:
        return f"install {self.tool} into a new environment"

    async def apply(self, ctx: StepContext) -> Result:
        resolved = _resolved(ctx)
        if resolved is None or resolved.unchanged:
            return Skipped().record()
        env = Path(self.env)
        if os.path.lexists(env):
            ctx.fs.rmtree(env)  # half-built by a run that died: this path is ours alone
        ctx.fs.mkdir(env.parent, DIR_MODE)
        os.chmod(env.parent, DIR_MODE)  # not the umask's choice: no one else may add an env
        backend = be.get_backend(self.backend)
        root = builds.places(self.builds, backend)
        if root is not None:
            with builds.place(root, self.python, self.tool, ctx.fs) as (place, made):
                await self._build(ctx, backend, place, resolved, movable=True, made=made)
                builds.move(ctx.fs, place, env)
                builds.sweep(root, ctx.fs)  # what killed builds left elsewhere
        else:
            await self._build(ctx, backend, env, resolved, movable=False)
        installed = be.inspect_env(env, self.tool)
        executables = _executables(env, installed)
        for dist in self._exposed_deps(resolved):
            # The tool's own executables win a name it shares with a dependency.
            executables = _executables(env, be.inspect_env(env, dist)) | executables
        if not executables:
            raise StepError(
                f"{self.tool} {installed.version} exposes no executables (no console or GUI scripts)"
            )
        return EnvInstalled(version=installed.version, executables=executables).record()

    async def _build(
        self,
        ctx: StepContext,
        backend: be.Backend,
        env: Path,
        resolved: Resolved,
        *,
        movable: bool,
        made: bool = False,
    ) -> None:
        if not made:
            await backend.create_env(env, self.python, movable=movable)
        ctx.failpoint("created", env)
        editable = [self.tool] if self.editable else []
        index = be.IndexOptions.from_dict(self.index)
        await backend.install(env, resolved.pins, index, editable)
        ctx.failpoint("installed", env)

    def _exposed_deps(self, resolved: Resolved) -> list[str]:
        """The distributions besides the tool whose executables are asked for."""
        pinned = [pin_name(p) for p in resolved.pins]
        if self.include_deps:
            return [d for d in pinned if d != self.tool]
        missing = [d for d in self.apps_from if d not in pinned]
        if missing:
            raise StepError(
                f"{', '.join(missing)} is not among the distributions installed with {self.tool}"
                " (only a dependency or a plugin can expose executables)"
            )
        return list(self.apps_from)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        env = Path(self.env)
        if os.path.lexists(env):
            ctx.fs.rmtree(env)
        _remove_if_empty(ctx, env.parent)
        _remove_if_empty(ctx, env.parent.parent)
        if self.builds:
            builds.sweep(Path(self.builds), ctx.fs)  # a build killed before its move


def _executables(env: Path, installed: be.Installed) -> dict[str, str]:
    """A distribution's executables in ``env``: name -> launcher, each name checked."""
    scripts = [(n, False) for n in installed.console_scripts]
    scripts += [(n, True) for n in installed.gui_scripts]
    scripts += [(n, False) for n in installed.data_scripts]
    executables = {}
    for name, gui in scripts:
        try:
            executable_name(name)
        except BadName as e:
            raise StepError(f"{installed.name} {installed.version}: {e}") from None
        target = Path(installed.data_scripts.get(name) or be.script_path(env, name, gui))
        if not target.exists():
            raise StepError(f"{installed.name} {installed.version}: launcher {target} is missing")
        executables[name] = str(target)
    return executables


class RemoveShims(Step, frozen=True):
    """Move the old shims, and anything in the way of the new ones, into the stash.

    A shim path txtool once owned is txtool's only while it still is the shim txtool placed
    there (a link to, or a copy of, its launcher, owned by this user): checked at the moment
    of the move, as install does. Anything else there since (the user's own script, a
    directory, another home's or pipx's shim) is refused with the ``--force`` hint, or with
    ``keep_foreign`` (uninstall) left where it is and listed as ``kept``.
    """

    kind = "remove-shims"
    bin_dir: str
    owned: list[str]
    others: dict[str, str] = {}  # shim path -> the other tool that owns it
    force: bool = False
    targets: dict[str, str] = {}  # owned shim path -> the launcher it is a link to / copy of
    keep_foreign: bool = False
    stable: Stable | None = None

    def describe(self) -> str:
        return "remove old shims"

    def intent(self, ctx: StepContext) -> Result:
        installed = _installed(ctx)
        names = {Path(p).name for p in self.owned}
        if installed and not _skipped(ctx):
            names |= set(installed.executables)
        bin_dir = Path(self.bin_dir)
        kept = _kept(ctx, self.stable, self.bin_dir)
        paths = [bin_dir / n for n in sorted(names) if str(bin_dir / n) not in kept]
        moves = [Move(str(p), str(ctx.stash_path(f"shim-{p.name}"))) for p in paths]
        return ShimMoves(moves=moves).record()

    def refusal(self, path: Path) -> str | None:
        """The error a file at ``path`` meets (None: txtool may move it), in the words the
        planner also uses when it finds the file before anything is built."""
        why = self._foreign(path)
        if why is None or str(path) in self.others:
            return why
        return f"{why} (use --force to replace it)"

    def _foreign(self, path: Path) -> str | None:
        """Why ``path`` is not txtool's to move, or None when it is."""
        if str(path) in self.others:
            return f"{path} belongs to the tool {self.others[str(path)]}"
        if self.force:
            return None
        if str(path) not in self.owned:
            return f"{path} exists and was not installed by txtool"
        target = self.targets.get(str(path))
        if target is not None and not is_ours(path, target):
            return f"{path} is no longer txtool's ({_what(path)} is there now)"
        return None

    async def apply(self, ctx: StepContext) -> Result:
        if _skipped(ctx):
            return Skipped().record()
        moves = [(Path(m.path), Path(m.stash)) for m in _moves(ctx)]
        pending = [
            (path, stash_path)
            for path, stash_path in moves
            if os.path.lexists(path) and not _stashed_copy(ctx, path, stash_path)
        ]
        kept: list[str] = []
        for path, _ in pending:
            if self._foreign(path) is None:
                continue
            if not self.keep_foreign:
                raise StepError(self.refusal(path))
            kept.append(str(path))
        stashed = {}
        for path, stash_path in pending:
            if str(path) not in kept:
                stashed[str(path)] = str(stash(ctx.fs, path, stash_path, _aside(ctx, path)))
                ctx.failpoint("removed", path)
        return ShimsRemoved(stashed=stashed, kept=kept).record()

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        for m in reversed(_moves(ctx)):
            put_back(ctx, Path(m.path), Path(m.stash))

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        for m in _moves(ctx):
            drop_aside(ctx, Path(m.path))


def _what(path: Path) -> str:
    if path.is_symlink():
        return f"a link to {os.readlink(path)}"
    if path.is_dir():
        return "a directory"
    return "another file"


def is_ours(path: Path, target: str) -> bool:
    """Is ``path`` the shim we would place for ``target`` (a link to it, or a copy of it),
    owned by us? In a shared (sticky) bin dir another user's link to our launcher is theirs."""
    try:
        if os.lstat(path).st_uid != os.geteuid():
            return False
    except OSError:
        return False
    if path.is_symlink():
        return os.readlink(path) == target
    try:
        return path.is_file() and filecmp.cmp(path, target, shallow=False)
    except OSError:
        return False


def _sweep(ctx: StepContext, bin_dir: Path) -> None:
    """Remove what a kill left of an earlier placing: the engine's temp files in the bin
    dir whose writer is gone (``sweep_temps`` never touches a live writer's or a look-alike)."""
    if bin_dir.is_dir():
        sweep_temps(bin_dir, ctx.fs)


class CopyShims(Step, frozen=True):
    """Expose the new environment's executables in the bin dir, each placed atomically.

    With ``stable``, a shim is a link through the tool's stable path, and the old links the
    new generation keeps as they are (``Stable.kept``) are neither moved nor placed: they
    are checked to still be txtool's and recorded with the rest."""

    kind = "copy-shims"
    bin_dir: str
    mode: str = "symlink"  # "symlink", or "copy" (Windows, and where links are refused)
    stable: Stable | None = None

    def describe(self) -> str:
        return "copy new shims"

    def intent(self, ctx: StepContext) -> Result:
        installed = _installed(ctx)
        if installed is None or _skipped(ctx):
            return ShimPlan(shims={}).record()
        bin_dir = Path(self.bin_dir)
        stable = _through(ctx, self.stable)
        kept = _kept(ctx, stable, self.bin_dir)
        target = stable.target if stable else str
        return ShimPlan(
            shims={
                name: ShimTarget(str(bin_dir / name), target(launcher))
                for name, launcher in sorted(installed.executables.items())
                if str(bin_dir / name) not in kept
            }
        ).record()

    async def apply(self, ctx: StepContext) -> Result:
        if _skipped(ctx):
            return Skipped().record()
        ctx.fs.mkdir(Path(self.bin_dir), DIR_MODE)
        _sweep(ctx, Path(self.bin_dir))
        placed = {}
        for path_, target in _kept(ctx, _through(ctx, self.stable), self.bin_dir).items():
            path = Path(path_)
            if not is_ours(path, target):
                raise StepError(
                    f"{path} is no longer txtool's ({_what(path)} is there now)"
                    " (use --force to replace it)"
                )
            placed[path.name] = path_
        mode = self.mode
        for name, shim in _shim_plan(ctx).items():
            path, target = Path(shim.path), shim.target
            if not is_ours(path, target):
                if os.path.lexists(path):
                    raise StepError(f"{path} appeared during the operation; it was left alone")
                if self._place(ctx, Path(target), path) != self.mode:
                    mode = "copy"
                ctx.failpoint("copied", path)
            elif not path.is_symlink():
                mode = "copy"
            placed[name] = str(path)
        return ShimsPlaced(shims=dict(sorted(placed.items())), mode=mode).record()

    def _place(self, ctx: StepContext, target: Path, path: Path) -> str:
        """Place one shim; return how ("symlink", or "copy" where links are refused)."""
        return place_link(ctx, target, path, self.mode)

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        _sweep(ctx, Path(self.bin_dir))
        for shim in _shim_plan(ctx).values():
            path = Path(shim.path)
            if is_ours(path, shim.target):
                ctx.fs.unlink(path)


def place_link(ctx: StepContext, target: Path, path: Path, mode: str) -> str:
    """Expose ``target`` at ``path``: a link (``mode`` "symlink", where links work) or a
    copy, placed atomically and never over a file (shims, man pages). Returns how it was
    placed: "symlink", or "copy" where links are refused."""
    # Never over a file: another txtool placing the same name for another tool at the
    # same moment (or anyone else) keeps its file, and this operation fails and undoes.
    try:
        if mode == "symlink":
            try:
                atomic_symlink(ctx.fs, target, path, replace=False)
                return "symlink"
            except NotImplementedError:
                pass  # no symlinks on this system
            except OSError as e:
                if not links_refused(e):
                    raise
        atomic_copy(ctx.fs, target, path, replace=False)
        return "copy"
    except FileExistsError:
        raise StepError(f"{path} appeared during the operation; it was left alone") from None
    except OSError as e:
        # The primitives removed their temp already. The OS names the link's target
        # (inside TXTOOL_HOME) or a temp; the user needs the bin dir path that failed.
        raise OSError(e.errno, f"cannot place {path}: {e.strerror}") from e


class RemoveEnv(Step, frozen=True):
    """Stash the old environment; it is deleted only after commit."""

    kind = "remove-env"
    env: str

    def describe(self) -> str:
        return "remove the old environment"

    def intent(self, ctx: StepContext) -> Result:
        return EnvStash(stash=str(ctx.stash_path("env"))).record()

    async def apply(self, ctx: StepContext) -> Result:
        if _skipped(ctx):
            return Skipped().record()
        env, stash_path = Path(self.env), _env_stash(ctx)
        if stash_path is None:
            raise StepError(f"remove-env of {env} has no recorded stash")
        if move_aside(ctx, env, stash_path):
            ctx.failpoint("removed", env)
        return EnvRemoved().record()

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        put_back(ctx, Path(self.env), _env_stash(ctx))

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        env = Path(self.env)
        drop_aside(ctx, env)
        _remove_if_empty(ctx, env.parent)
        _remove_if_empty(ctx, env.parent.parent)


STEP_TYPES: list[type[Step]] = [
    Resolve,
    InstallEnv,
    RemoveShims,
    CopyShims,
    RemoveEnv,
    UseGeneration,
    SwitchCurrent,
    PruneEnvs,
]


def check_journal(loc: Locations, state: JournalState, since: int = 0) -> int:
    """Refuse (:class:`UnsafeLocation`) a journal whose operations name a path outside the
    directories txtool owns for it: checked before any of them is resumed, reverted, cleaned
    up or planned over. Only open operations and those that installed a current tool can
    still make txtool touch a path; the closed rest is history. ``since``: operations whose
    last record is at or below it were checked already. Returns the sequence checked up to."""
    from .tools import project

    current = {op for t in project(state).values() for op in t.ops}
    for view in state:
        if view.last_seq > since and (not view.closed or view.id in current):
            try:
                _check_view(loc, view)
            except (KeyError, TypeError, AttributeError, ValueError) as e:
                raise UnsafeLocation(
                    f"the journal's operation {view.id} names its paths in an unexpected shape "
                    f"({type(e).__name__}: {e}); refusing to act on it"
                ) from None
    return state.last_seq


def _check_view(loc: Locations, view: OperationView) -> None:
    stash_dir = loc.stash_dir / view.id
    tools, bin_dir = loc.tools_dir, loc.bin_dir
    for planned, intent, result in zip(view.plan, view.intents, view.results, strict=True):
        args, intent, result = planned.args, intent or {}, result or {}
        try:
            if "tool" in args:
                tool_name(str(args["tool"]))
        except BadName as e:
            raise UnsafeLocation(f"the journal names an unsafe tool: {e}") from None
        if planned.type == "man-pages":
            from .manpages import check as check_man_pages  # it builds on this module

            check_man_pages(loc, stash_dir, args, intent, result)
        if "env" in args:
            loc.inside(args["env"], tools, "an environment", depth=2)
        for env in [*args.get("envs", ()), *(args[k] for k in ("link", "previous") if args.get(k))]:
            loc.inside(env, tools, "an environment", depth=2)
        stable = args.get("stable") or {}
        for env in (stable.get("current"), stable.get("env")):
            if env is not None:
                loc.inside(env, tools, "an environment", depth=2)
        for path, target in stable.get("links", {}).items():
            loc.inside(path, bin_dir, "a shim")
            loc.inside(target, tools, "a launcher", depth=4)
        for target in args.get("executables", {}).values():
            loc.inside(target, tools, "a launcher", depth=4)
        for path, stash_path in intent.get("stashes", {}).items():
            loc.inside(path, tools, "an environment", depth=2)
            loc.inside(stash_path, stash_dir, "a stash")
        if "bin_dir" in args:
            loc.inside(args["bin_dir"], bin_dir, "a bin dir", depth=0)
        for path in [*args.get("owned", ()), *args.get("targets", {})]:
            loc.inside(path, bin_dir, "a shim")
        for target in args.get("targets", {}).values():
            loc.inside(target, tools, "a launcher", depth=4)
        for move in intent.get("moves", ()):
            loc.inside(move["path"], bin_dir, "a shim")
            loc.inside(move["stash"], stash_dir, "a stash")
        for shim in intent.get("shims", {}).values():
            loc.inside(shim["path"], bin_dir, "a shim")
            loc.inside(shim["target"], tools, "a launcher", depth=4)
        for path in result.get("shims", {}).values():
            loc.inside(path, bin_dir, "a shim")
        for target in result.get("executables", {}).values():
            loc.inside(target, tools, "a launcher", depth=4)
        if "stash" in intent:
            loc.inside(intent["stash"], stash_dir, "a stash")
