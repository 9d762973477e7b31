"""What the user asked for a tool, and the rules that keep it from one operation to the next.

A tool is installed from a spec (name, extras, version constraint: ``black[d]<26``), with
plugins resolved together with it (``--with``, ``inject``) and, on request, the executables
of some of its dependencies (``--with-executables-from``, ``--include-deps``). All of it is
recorded in each operation's meta, and every later plan (upgrade, reinstall, inject,
``install --force``) starts from the record: a recorded pin holds until a new spec or
``@latest`` replaces it, recorded extras hold unless a new spec names others, plugins hold
until ``uninject``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from . import names
from .errors import UsageError
from .names import canonical

if TYPE_CHECKING:
    from packaging.requirements import Requirement


def _spec(name: str, extras: Iterable[str], specifier: str, url: str | None = None) -> str:
    extra = f"[{','.join(sorted(extras))}]" if extras else ""
    return f"{name}{extra} @ {url}" if url else f"{name}{extra}{specifier}"


class Wants(msgspec.Struct, frozen=True):
    """The recorded request of one tool."""

    requirement: str  # the spec: "black[d]<26"
    plugins: tuple[str, ...] = ()  # requirements resolved with the tool, no shims of their own
    apps_from: tuple[str, ...] = ()  # distributions (canonical names) whose executables get shims
    include_deps: bool = False  # shims for the executables of every dependency

    def meta(self) -> dict[str, Any]:
        """What the operation's meta records; a plain spec records only ``requirement``, as
        txtool 0.1.0 did."""
        out: dict[str, Any] = {"requirement": self.requirement}
        if self.plugins:
            out["plugins"] = list(self.plugins)
        if self.apps_from:
            out["apps_from"] = list(self.apps_from)
        if self.include_deps:
            out["include_deps"] = True
        return out

    @property
    def req(self) -> Requirement:
        return names.parsed(self.requirement)

    @property
    def pin(self) -> str | None:
        """The version constraint, as the user wrote it in the spec; None for "newest"."""
        specifier = str(self.req.specifier)
        return self.requirement if specifier else None

    def plugin_names(self) -> list[str]:
        return [canonical(names.parsed(p).name) for p in self.plugins]

    # -- the rules -----------------------------------------------------------------------

    def respecified(self, req: Requirement, *, latest: bool = False) -> Wants:
        """This request after ``upgrade SPEC`` or ``install --force SPEC``: a version
        constraint in ``req`` replaces the recorded one, ``latest`` drops it, neither keeps
        it; extras in ``req`` replace the recorded ones, none keeps them."""
        old = self.req
        extras = req.extras or old.extras
        if req.specifier:
            specifier = str(req.specifier)
        elif latest:
            specifier = ""
        else:
            specifier = str(old.specifier)
        return msgspec.structs.replace(
            self, requirement=_spec(req.name, extras, specifier, req.url)
        )

    def injected(self, reqs: Sequence[Requirement], *, include_apps: bool) -> Wants:
        """With ``reqs`` as plugins too (a plugin named again takes its new spec)."""
        added = {canonical(r.name): str(r) for r in reqs}
        kept = [p for p in self.plugins if canonical(names.parsed(p).name) not in added]
        apps = list(self.apps_from)
        if include_apps:
            apps += [n for n in added if n not in apps]
        return msgspec.structs.replace(
            self, plugins=(*kept, *added.values()), apps_from=tuple(apps)
        )

    def uninjected(self, dists: Sequence[str]) -> Wants:
        """Without the plugins named ``dists`` (canonical names), nor their executables."""
        gone = set(dists)
        return msgspec.structs.replace(
            self,
            plugins=tuple(p for p in self.plugins if canonical(names.parsed(p).name) not in gone),
            apps_from=tuple(a for a in self.apps_from if a not in gone),
        )


def plugin_requirements(tool: str, specs: Iterable[str]) -> list[Requirement]:
    """``--with`` / ``inject`` arguments as requirements; the tool itself is not a plugin."""
    reqs = [names.requirement(s) for s in specs]
    for r in reqs:
        if canonical(r.name) == tool:
            raise UsageError(f"{tool} cannot be a plugin of itself")
    return reqs


def executable_sources(tool: str, specs: Iterable[str]) -> tuple[str, ...]:
    """``--with-executables-from`` arguments as canonical distribution names."""
    out: list[str] = []
    for s in specs:
        name = names.tool_name(s)
        if name != tool and name not in out:
            out.append(name)
    return tuple(out)
