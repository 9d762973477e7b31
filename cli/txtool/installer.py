"""Install, upgrade and uninstall tools: plans of txtool steps run by the txengine engine.

Planning reads the journal's projection and touches nothing; running hands the plan to
the engine, which journals every step. A tool with an incomplete operation is never
planned over: ``upgrade`` resumes that operation first, ``install`` and ``uninstall``
refuse with the command that fixes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from txengine import (
    Engine,
    JournalState,
    Observer,
    OperationView,
    Step,
    StepTypes,
    TxError,
    iter_history,
)

from . import backend as be
from . import generations as gens
from . import manpages, names, sources
from .errors import InTheWay, NeedsResume, UsageError
from .generations import PruneEnvs, SwitchCurrent, UseGeneration
from .locations import Locations
from .names import canonical
from .results import EnvInstalled, ShimsPlaced, first, read
from .specs import Wants, executable_sources, plugin_requirements
from .steps import STEP_TYPES, CopyShims, InstallEnv, RemoveShims, Resolve, Stable
from .tools import Generation, Tool, incomplete_by_tool, project


class Plan(msgspec.Struct):
    kind: str
    tool: str
    steps: list[Step]
    meta: dict[str, Any]
    old: Tool | None = None
    kept_pin: str | None = None  # the recorded pin an upgrade stayed within
    old_python: str | None = None  # the old environment's Python, when this plan changes it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tool": self.tool,
            "steps": [{"type": s.kind, "description": s.describe()} for s in self.steps],
        }


class Outcome(msgspec.Struct):
    tool: str
    # installed, upgraded, up-to-date, uninstalled, already-installed, resumed (an
    # interrupted operation finished as this command's work), finished, reverted (resume)
    action: str
    version: str | None = None
    old_version: str | None = None
    shims: dict[str, str] = {}
    op: str | None = None
    kind: str | None = None  # for "finished"/"reverted": the kind of the operation resumed
    kept: list[str] = []  # paths at old shims that were not txtool's
    pin: str | None = None  # the recorded pin an upgrade stayed within
    python: str | None = None  # the Python version of the new environment ...
    old_python: str | None = None  # ... and of the old one, when the operation changed it
    generation: int | None = None  # the tool's current generation after the command
    pruned: list[str] = []  # environments removed (gc)

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "action": self.action,
            "version": self.version,
            "old_version": self.old_version,
            "executables": self.shims,
            "op": self.op,
            "kept": self.kept,
            "pin": self.pin,
            "python": self.python,
            "old_python": self.old_python,
            "generation": self.generation,
            "pruned": self.pruned,
        }


class Options(msgspec.Struct, frozen=True):
    """Per-command choices; ``None`` fields fall back to what the tool was installed with."""

    python: str | None = None
    index: be.IndexOptions | None = None
    backend: str | None = None
    force: bool = False
    editable: bool = False  # install the local project directory with -e
    plugins: tuple[str, ...] | None = None  # --with; None keeps the recorded plugins
    apps_from: tuple[str, ...] | None = None  # --with-executables-from; None keeps the record
    include_deps: bool | None = None  # --include-deps; None keeps the record
    batch: str | None = None  # the ``upgrade --all`` run this upgrade is part of


def _find_python(spec: str | None) -> str:
    try:
        return be.find_python(spec)
    except be.BackendError as e:
        raise UsageError(str(e)) from None


def _backend_name(name: str | None) -> str:
    try:
        return be.get_backend(name).name
    except (ValueError, be.BackendError) as e:
        raise UsageError(str(e)) from None


def _shim_mode() -> str:
    """Copies on Windows (a link to an .exe is not what users run); links elsewhere.
    ``TXTOOL_SHIMS=copy`` forces copies, e.g. to exercise the Windows path anywhere."""
    if os.environ.get("TXTOOL_SHIMS") == "copy" or os.name == "nt":
        return "copy"
    return "symlink"


class Planner:
    """Turns a request into a plan, from the journal's state alone."""

    def __init__(self, locations: Locations, state: JournalState, *, locked: bool = True) -> None:
        """``locked``: ``state`` was read under the journal's lock. An unlocked read (the
        check of bad input before waiting for the lock) may show another live txtool's
        operation in progress, which is not incomplete: only a locked planner refuses it."""
        self.loc = locations
        self.state = state
        self.tools = project(state)
        self.incomplete = incomplete_by_tool(state)
        self._refuse_incomplete = locked

    def _check_incomplete(self, tool: str) -> None:
        if self._refuse_incomplete and tool in self.incomplete:
            raise NeedsResume(self.incomplete[tool])

    def _others(self, tool: str) -> dict[str, str]:
        return {p: t.name for t in self.tools.values() if t.name != tool for p in t.shims.values()}

    def _new_env(self, tool: str) -> str:
        return str(self.loc.env_dir(tool, os.urandom(4).hex()))

    def _build(
        self,
        kind: str,
        tool: str,
        wants: Wants,
        opts: Options,
        old: Tool | None,
        current: list[str] | None,
    ) -> Plan:
        python = _find_python(opts.python) if opts.python or old is None else old.python
        backend = _backend_name(opts.backend or (old.options.get("backend") if old else None))
        index = _effective_index(backend, opts) if old is None else _recorded_index(old, opts)
        try:
            be.check_local_locations(index)  # a missing --find-links dir is bad input
        except be.BackendError as e:
            raise UsageError(str(e)) from None
        if old is not None:
            sources.still_there(wants.requirement)
        common: dict[str, Any] = {"python": python, "index": index.to_dict(), "backend": backend}
        source = sources.planned(
            wants.requirement, opts.editable, old.options.get("source") if old else None
        )
        env = self._new_env(tool)
        switch = self._switch(tool, old, env, force=opts.force)
        assert isinstance(switch[0], RemoveShims)
        self._check_bin_dir(tool, old, switch[0])
        steps: list[Step] = [
            Resolve(
                tool=tool,
                requirement=wants.requirement,
                current=current,
                **common,
                plugins=list(wants.plugins),
                prepare=str(self.loc.build_dir) if current is None else "",
            ),
            InstallEnv(
                tool=tool,
                env=env,
                editable=source.editable,
                **common,
                apps_from=list(wants.apps_from),
                include_deps=wants.include_deps,
                builds=str(self.loc.build_dir),
            ),
            *switch,
        ]
        number = (old.high if old else 0) + 1
        if old is not None:
            # The old environment stays as a generation; what falls out of the window is
            # pruned by this operation, deleted only after its commit.
            drop = gens.to_prune(old.generations, number, old.number, gens.keep_generations())
            if drop:
                steps.append(PruneEnvs(envs=[g.env for g in drop]))
        meta: dict[str, Any] = wants.meta() | {
            "options": {
                "index": index.to_dict(),
                "python": python,
                "backend": backend,
                "source": source.to_dict(),
            },
            "generation": number,
        }
        if opts.batch:
            meta["batch"] = opts.batch
        old_python = _python_version(old) if old is not None and python != old.python else None
        return Plan(kind, tool, steps, meta, old, old_python=old_python)

    def _switch(self, tool: str, old: Tool | None, env: str, *, force: bool) -> list[Step]:
        """remove-shims -> switch-current -> copy-shims: make ``env`` the tool's current
        generation. Shims are links through the stable path where links are the rule and
        the old shims were links; an old link the new generation wants unchanged stays."""
        link = str(gens.current_link(self.loc, tool))
        mode = _shim_mode()
        stable = None
        if mode == "symlink" and (old is None or old.shim_mode == "symlink"):
            links = {} if force or old is None else old.targets
            stable = Stable(current=link, env=env, links=links)
        return [
            RemoveShims(
                bin_dir=str(self.loc.bin_dir),
                owned=sorted(old.shims.values()) if old else [],
                others=self._others(tool),
                force=force,
                targets=old.targets if old else {},
                stable=stable,
            ),
            SwitchCurrent(link=link, env=env, previous=old.env if old and old.link else ""),
            CopyShims(bin_dir=str(self.loc.bin_dir), mode=mode, stable=stable),
            manpages.step(self.state, old, env, mode),
        ]

    def _check_bin_dir(self, tool: str, old: Tool | None, remove_shims: RemoveShims) -> None:
        """Refuse a file in the bin dir that a first install would meet, before anything is
        built: at each executable name the tool is known to have (the step checks again, and
        checks the names only the new environment reveals). An upgrade may find the same
        pins and touch nothing, and a tool with an operation in flight has its files in the
        bin dir: both are left to the step."""
        if old is not None or tool in self.incomplete:
            return
        for name in sorted(self._expected_executables(tool)):
            path = self.loc.bin_dir / name
            why = remove_shims.refusal(path) if os.path.lexists(path) else None
            if why is not None:
                raise InTheWay(f"cannot install {tool}: {why}; nothing was changed")

    def _expected_executables(self, tool: str) -> set[str]:
        """The names the tool had when it was last installed here, else its own name (the
        convention nearly every tool follows; --force is harmless where it does not)."""
        for view in sorted(self.state, key=lambda v: v.last_seq, reverse=True):
            if view.subject != tool or not view.committed:
                continue
            installed = first(view.results, EnvInstalled)
            if installed is not None:
                return set(installed.executables)
            # An uninstall (what compaction keeps once the tool is gone) names what it removed.
            owned = next((p.args.get("owned") for p in view.plan if p.type == "remove-shims"), None)
            if owned:
                return {os.path.basename(path) for path in owned}
        return {tool}

    def install(self, spec: str, opts: Options) -> Plan | Outcome:
        req = names.requirement(spec)  # NAME@latest is NAME: installing is the newest already
        tool = canonical(req.name)
        self._check_incomplete(tool)
        old = self.tools.get(tool)
        if old is not None and not opts.force:
            return Outcome(tool, "already-installed", old.version, shims=old.shims, op=old.op)
        # --force over an installed tool reinstalls it, the old environment kept until commit:
        # the spec given replaces the recorded one, but not its extras unless it names some,
        # and the recorded plugins stay unless --with names others.
        base = _wants(old).respecified(req, latest=True) if old is not None else Wants(str(req))
        plugins = plugin_requirements(tool, opts.plugins or ())
        wants = Wants(
            requirement=base.requirement,
            plugins=base.plugins if opts.plugins is None else tuple(map(str, plugins)),
            apps_from=(
                base.apps_from
                if opts.apps_from is None
                else executable_sources(tool, opts.apps_from)
            ),
            include_deps=base.include_deps if opts.include_deps is None else opts.include_deps,
        )
        return self._build("install", tool, wants, opts, old, None)

    def check_upgradable(self, name: str) -> str:
        """The tool's canonical name, if upgrade can act on it (installed, or incomplete)."""
        tool = canonical(names.requirement(name).name)
        if tool not in self.tools and tool not in self.incomplete:
            raise UsageError(f"{tool} is not installed (install it with `txtool install {tool}`)")
        return tool

    def _installed(self, tool: str) -> Tool:
        old = self.tools.get(tool)
        if old is None:
            raise UsageError(f"{tool} is not installed (install it with `txtool install {tool}`)")
        return old

    def upgrade(self, name: str, opts: Options) -> Plan:
        """The newest release within the recorded spec; a new spec replaces it (keeping the
        recorded extras unless it names others), ``NAME@latest`` lifts its pin."""
        latest = names.is_latest(name)
        req = names.requirement(name)
        tool = canonical(req.name)
        old = self._installed(tool)
        recorded = _wants(old)
        wants = recorded.respecified(req, latest=latest)
        # A tool from a directory, a file or a URL is upgraded from there.
        wants = msgspec.structs.replace(
            wants, requirement=sources.kept(wants.requirement, name, old.requirement)
        )
        same_python = opts.python is None or _find_python(opts.python) == old.python
        # A broken environment is rebuilt even when the pins are the same: never "up to
        # date"; so is one whose spec changed, so that the new spec is what is recorded.
        # Stat checks only (no interpreter started, no metadata read): every no-op upgrade
        # pays for them; `txtool verify` also starts the interpreter.
        damage = be.env_damage(Path(old.env), old.name, old.version)
        fresh = same_python and wants == recorded and damage is None
        plan = self._build("upgrade", tool, wants, opts, old, old.pins if fresh else None)
        if not req.specifier and not latest:
            plan.kept_pin = recorded.pin
        return plan

    def reinstall(self, name: str, opts: Options) -> Plan:
        """Rebuild from everything recorded (spec, extras, plugins, Python, index, backend),
        in a new environment beside the old one, switched at commit."""
        old = self._installed(names.tool_name(name))
        self._check_incomplete(old.name)
        return self._build("reinstall", old.name, _wants(old), opts, old, None)

    def inject(
        self, name: str, specs: list[str], opts: Options, include_apps: bool
    ) -> Plan | Outcome:
        """The tool's environment rebuilt with ``specs`` as plugins too: an upgrade with more
        requirements, resolved together with the tool."""
        old = self._installed(names.tool_name(name))
        self._check_incomplete(old.name)
        recorded = _wants(old)
        wants = recorded.injected(plugin_requirements(old.name, specs), include_apps=include_apps)
        if wants == recorded:
            return Outcome(old.name, "already-injected", old.version, shims=old.shims, op=old.op)
        return self._build("inject", old.name, wants, opts, old, None)

    def uninject(self, name: str, dists: list[str], opts: Options) -> Plan:
        """The tool's environment rebuilt without the plugins named ``dists``."""
        old = self._installed(names.tool_name(name))
        self._check_incomplete(old.name)
        recorded = _wants(old)
        gone = [names.tool_name(d) for d in dists]
        missing = [d for d in gone if d not in recorded.plugin_names()]
        if missing:
            have = ", ".join(recorded.plugin_names()) or "none"
            raise UsageError(
                f"{', '.join(missing)} is not injected into {old.name} (its plugins: {have})"
            )
        return self._build("uninject", old.name, recorded.uninjected(gone), opts, old, None)

    def uninstall(self, name: str) -> Plan:
        tool = names.tool_name(name)
        self._check_incomplete(tool)
        old = self.tools.get(tool)
        if old is None:
            raise UsageError(f"{tool} is not installed")
        # A tool without man pages has none to remove: no step, so no records to sync.
        pages = manpages.step(self.state, old, "", _shim_mode())
        steps: list[Step] = [
            RemoveShims(
                bin_dir=str(self.loc.bin_dir),
                owned=sorted(old.shims.values()),
                targets=old.targets,
                keep_foreign=True,
            ),
            *([pages] if pages.old else []),
            PruneEnvs(
                envs=[g.env for g in old.generations] or [old.env],
                link=str(gens.current_link(self.loc, tool)),
            ),
        ]
        return Plan("uninstall", tool, steps, {"requirement": old.requirement}, old)

    def _known(self, name: str) -> Tool:
        tool = names.tool_name(name)
        self._check_incomplete(tool)
        old = self.tools.get(tool)
        if old is None:
            raise UsageError(f"{tool} is not installed")
        return old

    def rollback(self, name: str, to: str | None = None, *, force: bool = False) -> Plan:
        """Switch the tool back to a kept generation: the one current before by default,
        or ``to`` (a generation number or a version). Offline: the environment is there."""
        old = self._known(name)
        target = gens.pick(old, to)
        if target is None or target.number == old.number:
            raise UsageError(self._not_kept(old, to))
        steps: list[Step] = [
            UseGeneration(
                tool=old.name,
                env=target.env,
                version=target.version,
                executables=target.launchers,
                number=target.number,
            ),
            *self._switch(old.name, old, target.env, force=force),
        ]
        # What the generation was built with (requirement, options, ...) is in force again.
        meta = {k: v for k, v in target.meta.items() if k != "batch"}
        meta |= {"generation": target.number, "high": old.high}
        old_python = _python_version(old) if target.python != old.python else None
        return Plan("rollback", old.name, steps, meta, old, old_python=old_python)

    def _not_kept(self, tool: Tool, to: str | None) -> str:
        """Why rollback cannot go where asked, and what gets there instead."""
        if to is not None and to in (str(tool.number), tool.version):
            return f"{tool.name} is at generation {tool.number} ({tool.version}) already"
        gone = self._pruned(tool, to)
        if gone is not None:
            return (
                f"{tool.name} generation {gone.number} ({gone.version}) was pruned; reinstall "
                f"it with `{gens.reinstall_pinned(gone, tool.name)}`"
            )
        listing = f"see `txtool history {tool.name} --generations`"
        if to is None:
            return f"{tool.name} has no earlier generation to roll back to ({listing})"
        return f"{tool.name} has no generation {to} ({listing})"

    def _pruned(self, tool: Tool, to: str | None) -> Generation | None:
        """The pruned generation ``to`` names, as the journal's history recorded it."""
        found = tool.pruned
        if self.loc.journal_dir.exists():  # compaction moved older ones to the history
            found = gens.built(iter_history(self.loc.journal_dir), tool.name)
        kept = {g.op for g in tool.generations}
        found = [g for g in found if g.op not in kept]
        if to is None:
            older = [g for g in found if g.number < tool.number]
            return max(older, key=lambda g: g.number, default=None)
        match = [g for g in found if (str(g.number) == to if to.isdigit() else g.version == to)]
        return max(match, key=lambda g: g.number, default=None)

    def gc(self, name: str, keep: int | None = None) -> Plan | Outcome:
        """Prune the tool's generations past the window (``keep``, default the setting)."""
        old = self._known(name)
        window = gens.keep_generations() if keep is None else keep
        drop = gens.to_prune(old.generations, old.number, old.previous, window)
        if not drop:
            return Outcome(old.name, "nothing-to-prune", old.version, generation=old.number)
        steps: list[Step] = [PruneEnvs(envs=[g.env for g in drop])]
        return Plan("gc", old.name, steps, {"high": old.high}, old)

    def batch_tools(self) -> list[str]:
        """The tools whose current generation the latest ``upgrade --all`` made."""
        batches = {
            t.batch: v.started
            for t in self.tools.values()
            if t.batch and (v := self.state.get(t.changed_by)) is not None
        }
        if not batches:
            raise UsageError("no `upgrade --all` to roll back (see `txtool history`)")
        latest = max(batches, key=lambda b: batches[b])
        return sorted(t.name for t in self.tools.values() if t.batch == latest)


def _effective_index(backend: str, opts: Options) -> be.IndexOptions:
    """What the command line gives over the backend's own configuration, recorded so that
    an upgrade resolves from the same place."""
    try:
        return be.effective_index(backend, opts.index, os.environ)
    except be.BackendError as e:
        raise UsageError(str(e)) from None


def _wants(tool: Tool) -> Wants:
    return Wants(tool.requirement, tuple(tool.plugins), tuple(tool.apps_from), tool.include_deps)


def _python_version(tool: Tool | Generation) -> str:
    """The Python version of the tool's environment (its ``pyvenv.cfg``), else its path."""
    try:
        with open(os.path.join(tool.env, "pyvenv.cfg"), encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() in ("version_info", "version"):
                    return value.strip()
    except OSError:
        pass
    return tool.python


def _recorded_index(old: Tool, opts: Options) -> be.IndexOptions:
    recorded = be.IndexOptions.from_dict(old.options.get("index", {}))
    return recorded.merged(opts.index)


def outcome(plan: Plan, view: OperationView) -> Outcome:
    """What a committed operation did, in words for the user."""
    tools = project(_single(view))
    old = plan.old.version if plan.old else None
    if plan.kind == "uninstall":
        kept = [p for r in view.results if r for p in r.get("kept", ())]
        return Outcome(plan.tool, "uninstalled", None, old, op=view.id, kept=kept)
    if plan.kind == "rollback":
        use = next(s for s in plan.steps if isinstance(s, UseGeneration))
        placed = next((r for r in (read(x, ShimsPlaced) for x in view.results) if r), None)
        shims = placed.shims if placed else {}
        back = Outcome(
            plan.tool, "rolled-back", use.version, old, shims, view.id, generation=use.number
        )
        target = plan.old.generation(use.number) if plan.old else None
        return _python_changed(back, plan, target) if target else back
    if plan.kind == "gc":
        pruned = [e for s in plan.steps if isinstance(s, PruneEnvs) for e in s.envs]
        return Outcome(plan.tool, "pruned", old, op=view.id, pruned=pruned)
    resolved = view.results[0] or {}
    if resolved.get("unchanged"):
        assert plan.old is not None
        return Outcome(
            plan.tool,
            "up-to-date",
            plan.old.version,
            shims=plan.old.shims,
            op=view.id,
            pin=plan.kept_pin,
        )
    tool = tools[plan.tool]
    done = Outcome(
        plan.tool, _DONE[plan.kind], tool.version, old, tool.shims, view.id, generation=tool.number
    )
    done.pin = plan.kept_pin
    return _python_changed(done, plan, tool)


def _python_changed(done: Outcome, plan: Plan, now: Tool | Generation) -> Outcome:
    """``done`` with the change of Python the plan made, to ``now``'s: its versions, else
    (another interpreter of the same version) its paths."""
    if plan.old_python is not None and plan.old is not None:
        done.old_python, done.python = plan.old_python, _python_version(now)
        if done.old_python == done.python:
            done.old_python, done.python = plan.old.python, now.python
    return done


#: What the user is told a committed operation of each kind did.
_DONE = {
    "install": "installed",
    "upgrade": "upgraded",
    "reinstall": "reinstalled",
    "inject": "injected",
    "uninject": "uninjected",
}


#: Every step type a plan may hold.
ALL_STEPS: list[type[Step]] = [*STEP_TYPES, manpages.ManPages]
_CODEC = StepTypes(ALL_STEPS)


def describe_step(view: OperationView, index: int) -> str:
    """Step ``index`` of ``view`` in the words of its ``describe()`` (its kind, for a step
    this release cannot decode)."""
    planned = view.plan[index]
    try:
        return _CODEC.decode(planned, view.id, index).describe()
    except TxError:
        return planned.type


def _single(view: OperationView) -> JournalState:
    state = JournalState()
    state.ops[view.id] = view
    return state


class Installer:
    """Runs plans through an engine whose journal is open (and locked) for writing."""

    def __init__(self, locations: Locations, engine: Engine) -> None:
        self.loc = locations
        self.engine = engine

    @classmethod
    def create(
        cls, locations: Locations, journal: Any, observer: Observer | None = None
    ) -> Installer:
        return cls(locations, Engine(journal, ALL_STEPS, observer=observer))

    def planner(self) -> Planner:
        return Planner(self.loc, self.engine.journal.state)

    async def run(self, plan: Plan) -> Outcome:
        view = await self.engine.run(plan.kind, plan.tool, plan.steps, plan.meta)
        return outcome(plan, view)

    async def resume_tool(self, tool: str) -> OperationView | None:
        """Roll the tool's incomplete operation forward, if it has one."""
        view = self.planner().incomplete.get(tool)
        if view is None:
            return None
        return await self.engine.resume(view.id)

    async def resume(self, op: str, revert: bool = False) -> OperationView:
        return await self.engine.resume(op, revert=revert)
