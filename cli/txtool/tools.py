"""What is installed: a projection of the journal's committed operations, never stored apart.

Each committed install or upgrade that built an environment makes a **generation** of its
tool; a generation stays *kept* (rollback can reach it) until a committed operation prunes
its environment (``prune-envs``, or the ``remove-env`` of journals before generations). A
``rollback`` makes a kept generation current again; an uninstall drops them all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from txengine import JournalState, OperationView

from .results import EnvInstalled, Resolved, ShimsPlaced, read


def shim_target(launcher: str, env: str, current: str) -> str:
    """What a shim of ``launcher`` (inside ``env``) points at: the same file reached through
    the tool's stable path ``current`` when the shims go through it, else the launcher."""
    if not current:
        return launcher
    return str(Path(current) / os.path.relpath(launcher, env))


def disk_size(path: str | Path) -> int:
    """Bytes on disk under ``path`` (each inode once; links not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


class Generation(msgspec.Struct):
    """One committed state of a tool that rollback can switch back to: its environment."""

    number: int
    version: str
    pins: list[str]
    env: str
    python: str
    requirement: str
    options: dict[str, Any]
    launchers: dict[str, str]  # executable name -> its launcher in ``env``
    op: str  # the operation that built it
    started: float = 0.0
    meta: dict[str, Any] = {}  # that operation's meta

    @property
    def plugins(self) -> list[str]:
        """Requirements resolved with the tool (``--with``, ``inject``)."""
        return [str(p) for p in self.meta.get("plugins", ())]

    @property
    def apps_from(self) -> list[str]:
        """Dependencies whose executables the tool exposes too."""
        return [str(a) for a in self.meta.get("apps_from", ())]

    @property
    def include_deps(self) -> bool:
        """Whether the tool exposes every dependency's executables."""
        return bool(self.meta.get("include_deps", False))

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.number,
            "version": self.version,
            "environment": self.env,
            "python": self.python,
            "requirement": self.requirement,
            "pins": self.pins,
            "op": self.op,
        }


class Tool(msgspec.Struct):
    """An installed tool: its current generation (what it runs, and what it was built
    from), the kept ones, and how its shims and stable path expose the current one."""

    name: str
    now: Generation  # the current generation
    shims: dict[str, str]  # executable name -> shim path
    incomplete: OperationView | None = None
    generations: list[Generation] = []  # kept ones, current included
    pruned: list[Generation] = []  # seen in this journal, gone
    previous: int | None = None  # the generation current before the last change
    link: str = ""  # the stable path (tools/NAME/current), once an operation switched it
    via: str = ""  # the stable path the shims are links through ("": to the launchers)
    shim_mode: str = "symlink"  # how the shims were placed: "symlink" or "copy"
    changed_by: str = ""  # the operation that made this generation current
    batch: str | None = None  # that operation's ``upgrade --all`` batch
    high: int = 0  # the highest generation number this tool has had

    # What the current generation holds, under the names the rest of txtool reads.
    @property
    def requirement(self) -> str:
        return self.now.requirement

    @property
    def version(self) -> str:
        return self.now.version

    @property
    def pins(self) -> list[str]:
        return self.now.pins

    @property
    def env(self) -> str:
        return self.now.env

    @property
    def python(self) -> str:
        return self.now.python

    @property
    def options(self) -> dict[str, Any]:
        """Index options, python spec, backend and source it was built with."""
        return self.now.options

    @property
    def op(self) -> str:
        """The operation that built the current generation."""
        return self.now.op

    @property
    def launchers(self) -> dict[str, str]:
        return self.now.launchers

    @property
    def number(self) -> int:
        return self.now.number

    @property
    def plugins(self) -> list[str]:
        return self.now.plugins

    @property
    def apps_from(self) -> list[str]:
        return self.now.apps_from

    @property
    def include_deps(self) -> bool:
        return self.now.include_deps

    @property
    def targets(self) -> dict[str, str]:
        """Shim path -> the launcher that shim is a link to (or a copy of)."""
        return {
            p: shim_target(self.launchers[n], self.env, self.via)
            for n, p in self.shims.items()
            if n in self.launchers
        }

    def generation(self, number: int | None) -> Generation | None:
        return next((g for g in self.generations if g.number == number), None)

    @property
    def ops(self) -> set[str]:
        """The operations the tool's current state and kept generations come from."""
        return {g.op for g in self.generations} | {self.op, self.changed_by}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "requirement": self.requirement,
            "environment": self.env,
            "python": self.python,
            "executables": self.shims,
            "pins": self.pins,
            "options": self.options,
            "source": self.options.get("source") or {"kind": "index"},
            "spec": self.requirement,
            "extras": extras_of(self.requirement),
            "plugins": self.plugins,
            "executables_from": self.apps_from,
            "include_deps": self.include_deps,
            "generation": self.number,
            "stable_path": self.link or None,
            "generations": [
                g.to_json() | {"current": g.number == self.number} for g in self.generations
            ],
        }


# The extras of a recorded spec (``black[d,jupyter]<26``), read without ``packaging``: the
# read-only commands do not import it (docs/performance.md).
_EXTRAS = re.compile(r"^[^\[]*\[([^\]]*)\]")


def extras_of(requirement: str) -> list[str]:
    found = _EXTRAS.match(requirement)
    return sorted(e.strip() for e in found.group(1).split(",") if e.strip()) if found else []


def _result(view: OperationView, kind: str) -> dict[str, Any] | None:
    for planned, result in zip(view.plan, view.results, strict=True):
        if planned.type == kind:
            return result
    return None


def _args(view: OperationView, kind: str) -> dict[str, Any]:
    return next((p.args for p in view.plan if p.type == kind), {})


def _removed_envs(view: OperationView) -> set[str]:
    """The environments a committed operation removed (pruned, or the old ``remove-env``)."""
    gone = {str(p.args["env"]) for p in view.plan if p.type == "remove-env"}
    return gone | {str(e) for p in view.plan if p.type == "prune-envs" for e in p.args["envs"]}


def is_noop(view: OperationView) -> bool:
    """An upgrade that found the installed pins again: it changed nothing, and history and
    the projection skip it (it is journaled only so that a crash in it stays truthful)."""
    resolved = read(_result(view, "resolve"), Resolved)
    return resolved is not None and resolved.unchanged


class Projector:
    """Folds committed operations, one at a time and in order, into the installed tools."""

    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}

    def apply(self, view: OperationView) -> None:
        if not view.committed:
            return
        old = self.tools.get(view.subject)
        if view.kind == "uninstall":
            self.tools.pop(view.subject, None)
            return
        if is_noop(view):
            return  # its later steps (a prune among them) were skipped: nothing changed
        if old is not None:
            gone = _removed_envs(view)
            old.pruned += [g for g in old.generations if g.env in gone]
            old.generations = [g for g in old.generations if g.env not in gone]
            old.high = max(old.high, int(view.meta.get("high", 0)))
        resolved = read(_result(view, "resolve"), Resolved)
        if resolved is not None:
            if not resolved.unchanged:
                self._built(view, resolved, old)
        elif view.kind == "rollback" and old is not None:
            wanted = str(_args(view, "use-generation").get("env", ""))
            gen = next((g for g in old.generations if g.env == wanted), None)
            if gen is not None:
                self.tools[view.subject] = self._current(view, gen, old)

    def _built(self, view: OperationView, resolved: Resolved, old: Tool | None) -> None:
        install = _args(view, "install-env")
        installed = read(_result(view, "install-env"), EnvInstalled)
        high = old.high if old else 0
        gen = Generation(
            number=int(view.meta.get("generation") or high + 1),
            # A direct reference's version is known once built (install-env's result).
            version=installed.version if installed else resolved.version,
            pins=resolved.pins,
            env=install["env"],
            python=install["python"],
            requirement=view.meta.get("requirement", view.subject),
            options=view.meta.get("options", {}),
            launchers=installed.executables if installed else {},
            op=view.id,
            started=view.started,
            meta=view.meta,
        )
        self.tools[view.subject] = self._current(view, gen, old)

    def _current(self, view: OperationView, gen: Generation, old: Tool | None) -> Tool:
        """The tool with ``gen`` made current by ``view`` (its shims, its stable path)."""
        placed = read(_result(view, "copy-shims"), ShimsPlaced)
        stable = _args(view, "copy-shims").get("stable") or {}
        switch = _args(view, "switch-current")
        switched = _result(view, "switch-current") or {}
        link = str(switch.get("link", "")) if switched.get("linked", True) else ""
        previous = None
        if old is not None and old.generation(old.number) is not None:
            previous = old.number
        return Tool(
            name=view.subject,
            now=gen,
            shims=placed.shims if placed else {},
            generations=sorted(
                [g for g in old.generations if g is not gen] + [gen] if old else [gen],
                key=lambda g: g.number,
            ),
            pruned=old.pruned if old else [],
            previous=previous,
            link=link,
            via=str(stable.get("current", ""))
            if link and placed and placed.mode == "symlink"
            else "",
            shim_mode=placed.mode if placed else "symlink",
            changed_by=view.id,
            batch=view.meta.get("batch"),
            high=max(old.high if old else 0, gen.number),
        )


def project_views(views: Iterable[OperationView]) -> dict[str, Tool]:
    """The installed tools, from operations in the order they started."""
    projector = Projector()
    for view in views:
        projector.apply(view)
    return projector.tools


def current(views: Sequence[OperationView]) -> list[OperationView]:
    """What journal compaction keeps of one tool's closed operations (``Journal.retain``):
    the operations its current state and every kept generation come from, and its latest
    committed operation (the generation numbers go on from there). No-op upgrades, pruned
    generations and what an uninstall ended are history only."""
    tools = project_views(views)
    keep = {op for tool in tools.values() for op in tool.ops}
    committed = [v for v in views if v.committed and not is_noop(v)]
    if committed:
        keep.add(committed[-1].id)
    return [v for v in views if v.id in keep]


def project(state: JournalState) -> dict[str, Tool]:
    """Fold committed operations, in the order they started, into the installed tools."""
    tools = project_views(state)
    for view in state.incomplete():
        tool = tools.get(view.subject)
        if tool is not None:
            tool.incomplete = view
    return tools


def incomplete_by_tool(state: JournalState) -> dict[str, OperationView]:
    return {v.subject: v for v in state.incomplete()}
