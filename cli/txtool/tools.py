"""What is installed: a projection of the journal's committed operations, never stored apart."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from txengine import JournalState, OperationView

from .results import EnvInstalled, Resolved, ShimsPlaced, read


@dataclass
class Tool:
    name: str
    requirement: str
    version: str
    pins: list[str]
    env: str
    python: str
    shims: dict[str, str]  # executable name -> shim path
    options: dict[str, Any]  # index options, python spec and backend it was installed with
    op: str  # the operation that installed this version
    launchers: dict[str, str] = field(default_factory=dict)  # executable name -> its launcher
    incomplete: OperationView | None = field(default=None)
    plugins: list[str] = field(default_factory=list)  # requirements resolved with the tool
    apps_from: list[str] = field(default_factory=list)  # dependencies whose executables it exposes
    include_deps: bool = False  # it exposes every dependency's executables

    @property
    def targets(self) -> dict[str, str]:
        """Shim path -> the launcher that shim is a link to (or a copy of)."""
        return {p: self.launchers[n] for n, p in self.shims.items() if n in self.launchers}

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
        }


# The extras of a recorded spec (``black[d,jupyter]<26``), read without ``packaging``: the
# read-only commands do not import it (docs/performance.md).
_EXTRAS = re.compile(r"^\s*[A-Za-z0-9._-]+\s*\[([^\]]*)\]")


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


def _changes_tool(view: OperationView) -> bool:
    """A committed uninstall, or an install/upgrade that pinned a version (not a no-op)."""
    if view.kind == "uninstall":
        return True
    resolved = read(_result(view, "resolve"), Resolved)
    return resolved is not None and not resolved.unchanged


def current(views: Sequence[OperationView]) -> list[OperationView]:
    """What journal compaction keeps of one tool's closed operations (``Journal.retain``):
    the latest committed one that changed the tool. No-op upgrades are history only."""
    return [v for v in views if v.committed and _changes_tool(v)][-1:]


def project(state: JournalState) -> dict[str, Tool]:
    """Fold committed operations, in the order they started, into the installed tools."""
    tools: dict[str, Tool] = {}
    for view in state:
        if not view.committed:
            continue
        if view.kind == "uninstall":
            tools.pop(view.subject, None)
            continue
        resolved = read(_result(view, "resolve"), Resolved)
        if resolved is None or resolved.unchanged:
            continue
        install = _args(view, "install-env")
        placed = read(_result(view, "copy-shims"), ShimsPlaced)
        installed = read(_result(view, "install-env"), EnvInstalled)
        tools[view.subject] = Tool(
            name=view.subject,
            requirement=view.meta.get("requirement", view.subject),
            # A direct reference's version is known once built (install-env's result).
            version=installed.version if installed else resolved.version,
            pins=resolved.pins,
            env=install["env"],
            python=install["python"],
            shims=placed.shims if placed else {},
            options=view.meta.get("options", {}),
            op=view.id,
            launchers=installed.executables if installed else {},
            plugins=[str(p) for p in view.meta.get("plugins", ())],
            apps_from=[str(a) for a in view.meta.get("apps_from", ())],
            include_deps=bool(view.meta.get("include_deps", False)),
        )
    for view in state.incomplete():
        tool = tools.get(view.subject)
        if tool is not None:
            tool.incomplete = view
    return tools


def incomplete_by_tool(state: JournalState) -> dict[str, OperationView]:
    return {v.subject: v for v in state.incomplete()}
