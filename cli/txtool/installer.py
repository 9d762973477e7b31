"""Install, upgrade and uninstall tools: plans of txtool steps run by the txengine engine.

Planning reads the journal's projection and touches nothing; running hands the plan to
the engine, which journals every step. A tool with an incomplete operation is never
planned over: ``upgrade`` resumes that operation first, ``install`` and ``uninstall``
refuse with the command that fixes it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from txengine import Engine, JournalState, Observer, OperationView, Step, StepTypes, TxError

from . import backend as be
from . import manpages, names
from .errors import InTheWay, NeedsResume, UsageError
from .locations import Locations
from .results import EnvInstalled, first
from .steps import STEP_TYPES, CopyShims, InstallEnv, RemoveEnv, RemoveShims, Resolve
from .tools import Tool, incomplete_by_tool, project
from .verify import env_problem


@dataclass
class Plan:
    kind: str
    tool: str
    steps: list[Step]
    meta: dict[str, Any]
    old: Tool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tool": self.tool,
            "steps": [{"type": s.kind, "description": s.describe()} for s in self.steps],
        }


@dataclass
class Outcome:
    tool: str
    # installed, upgraded, up-to-date, uninstalled, already-installed, resumed (an
    # interrupted operation finished as this command's work), finished, reverted (resume)
    action: str
    version: str | None = None
    old_version: str | None = None
    shims: dict[str, str] = field(default_factory=dict)
    op: str | None = None
    kind: str | None = None  # for "finished"/"reverted": the kind of the operation resumed
    kept: list[str] = field(default_factory=list)  # paths at old shims that were not txtool's

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "action": self.action,
            "version": self.version,
            "old_version": self.old_version,
            "executables": self.shims,
            "op": self.op,
            "kept": self.kept,
        }


@dataclass(frozen=True)
class Options:
    """Per-command choices; ``None`` fields fall back to what the tool was installed with."""

    python: str | None = None
    index: be.IndexOptions | None = None
    backend: str | None = None
    force: bool = False


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
        return str(self.loc.env_dir(tool, secrets.token_hex(4)))

    def _build(
        self,
        kind: str,
        tool: str,
        requirement: str,
        opts: Options,
        old: Tool | None,
        current: list[str] | None,
    ) -> Plan:
        python = _find_python(opts.python) if opts.python or old is None else old.python
        index = (opts.index or be.IndexOptions()) if old is None else _recorded_index(old, opts)
        backend = _backend_name(opts.backend or (old.options.get("backend") if old else None))
        try:
            be.check_local_locations(index)  # a missing --find-links dir is bad input
        except be.BackendError as e:
            raise UsageError(str(e)) from None
        common: dict[str, Any] = {"python": python, "index": index.to_dict(), "backend": backend}
        env = self._new_env(tool)
        remove_shims = RemoveShims(
            bin_dir=str(self.loc.bin_dir),
            owned=sorted(old.shims.values()) if old else [],
            others=self._others(tool),
            force=opts.force,
            targets=old.targets if old else {},
        )
        self._check_bin_dir(tool, old, remove_shims)
        steps: list[Step] = [
            Resolve(tool=tool, requirement=requirement, current=current, **common),
            InstallEnv(tool=tool, env=env, **common),
            remove_shims,
            CopyShims(bin_dir=str(self.loc.bin_dir), mode=_shim_mode()),
            manpages.step(self.state, old, env, _shim_mode()),
        ]
        if old is not None:
            steps.append(RemoveEnv(env=old.env))
        meta = {
            "requirement": requirement,
            "options": {"index": index.to_dict(), "python": python, "backend": backend},
        }
        return Plan(kind, tool, steps, meta, old)

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
        req = names.requirement(spec)
        tool = canonicalize_name(req.name)
        self._check_incomplete(tool)
        old = self.tools.get(tool)
        if old is not None and not opts.force:
            return Outcome(tool, "already-installed", old.version, shims=old.shims, op=old.op)
        # --force over an installed tool reinstalls it, the old environment kept until commit.
        return self._build("install", tool, str(req), opts, old, None)

    def check_upgradable(self, name: str) -> str:
        """The tool's canonical name, if upgrade can act on it (installed, or incomplete)."""
        tool = canonicalize_name(names.requirement(name).name)
        if tool not in self.tools and tool not in self.incomplete:
            raise UsageError(f"{tool} is not installed (install it with `txtool install {tool}`)")
        return tool

    def upgrade(self, name: str, opts: Options) -> Plan:
        req = names.requirement(name)
        tool = canonicalize_name(req.name)
        old = self.tools.get(tool)
        if old is None:
            raise UsageError(f"{tool} is not installed (install it with `txtool install {tool}`)")
        if not req.specifier:
            # A bare name asks for the newest release, keeping the extras it was installed with.
            recorded = names.requirement(old.requirement)
            extras = f"[{','.join(sorted(recorded.extras))}]" if recorded.extras else ""
            requirement = f"{tool}{extras}"
        else:
            requirement = str(req)
        same_python = opts.python is None or _find_python(opts.python) == old.python
        # A broken environment is rebuilt even when the pins are the same: never "up to date".
        current = old.pins if same_python and env_problem(old) is None else None
        return self._build("upgrade", tool, requirement, opts, old, current)

    def uninstall(self, name: str) -> Plan:
        tool = names.tool_name(name)
        self._check_incomplete(tool)
        old = self.tools.get(tool)
        if old is None:
            raise UsageError(f"{tool} is not installed")
        steps: list[Step] = [
            RemoveShims(
                bin_dir=str(self.loc.bin_dir),
                owned=sorted(old.shims.values()),
                targets=old.targets,
                keep_foreign=True,
            ),
            manpages.step(self.state, old, "", _shim_mode()),
            RemoveEnv(env=old.env),
        ]
        return Plan("uninstall", tool, steps, {"requirement": old.requirement}, old)


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
    resolved = view.results[0] or {}
    if resolved.get("unchanged"):
        assert plan.old is not None
        return Outcome(plan.tool, "up-to-date", plan.old.version, shims=plan.old.shims, op=view.id)
    tool = tools[plan.tool]
    action = "upgraded" if plan.kind == "upgrade" else "installed"
    return Outcome(plan.tool, action, tool.version, old, tool.shims, view.id)


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
