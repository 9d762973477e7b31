"""Man pages a tool's wheel ships (``share/man/manN/PAGE`` data files), exposed under the
user's man dir (``TXTOOL_MAN_DIR``, ``~/.local/share/man`` by default) as pipx does, and
removed with the tool: one journaled step, ``man-pages``, placed after the shims.

Placed and removed with the shims' helpers (a link, or a copy where links are refused;
moved into the operation's stash until commit). Unlike a shim, a page is documentation: a
file at its path that is not txtool's is left alone and listed as ``kept``, never a reason
to fail the install.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from txengine import JournalState, Result, Step, StepContext, discard, restore, stash

from .generations import skipped
from .locations import DIR_MODE, Locations, man_dir
from .names import BadName, executable_name
from .results import Move, ShimTarget, Skipped, _Result, read
from .stashes import aside, stashed_copy
from .steps import _sweep, is_ours, place_link
from .tools import Tool

KIND = "man-pages"

# man(1)'s sections: man1 ... man9, mann, and suffixed ones such as man3p.
_SECTION = re.compile(r"^man[1-9n][a-z0-9]*$")


class ManPlan(_Result, frozen=True):
    """man-pages' intent: the old pages to move aside, the new ones to link."""

    aside: list[Move]
    links: dict[str, ShimTarget]  # "man1/tool.1" -> its path in the man dir and its source


class ManPagesLinked(_Result, frozen=True):
    """man-pages' result: the pages placed ("man1/tool.1" -> path) and those left alone."""

    pages: dict[str, str]
    kept: list[str] = []


def shipped(env: Path) -> dict[str, str]:
    """The environment's man pages: "manN/NAME" -> the file. A name that is no safe file
    name is data from the package, not a path: it is not exposed."""
    root = env / "share" / "man"
    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for section in sorted(root.iterdir()):
        if not (_SECTION.match(section.name) and section.is_dir() and not section.is_symlink()):
            continue
        for page in sorted(section.iterdir()):
            try:
                executable_name(page.name)
            except BadName:
                continue
            if page.is_file():
                found[f"{section.name}/{page.name}"] = str(page)
    return found


class ManPages(Step, frozen=True):
    """Move the tool's old man page links aside, then link the new environment's pages."""

    kind = KIND
    man_dir: str
    source: str = ""  # the new environment ("" when the tool is being removed)
    old: dict[str, str] = {}  # the tool's current page links: path -> the page it exposes
    mode: str = "symlink"

    def describe(self) -> str:
        return "link man pages" if self.source else "remove man pages"

    def intent(self, ctx: StepContext) -> Result:
        if skipped(ctx):
            return ManPlan(aside=[], links={}).record()
        aside = [
            Move(path, str(ctx.stash_path(f"man-{i}"))) for i, path in enumerate(sorted(self.old))
        ]
        pages = shipped(Path(self.source)) if self.source else {}
        man = Path(self.man_dir)
        links = {rel: ShimTarget(str(man / rel), target) for rel, target in pages.items()}
        return ManPlan(aside=aside, links=links).record()

    def _plan(self, ctx: StepContext) -> ManPlan:
        return read(ctx.intent, ManPlan) or ManPlan(aside=[], links={})

    async def apply(self, ctx: StepContext) -> Result:
        if skipped(ctx):
            return Skipped().record()
        plan = self._plan(ctx)
        kept: list[str] = []
        for move in plan.aside:
            path, stash_path = Path(move.path), Path(move.stash)
            if not os.path.lexists(path) or stashed_copy(ctx, path, stash_path):
                continue
            if not is_ours(path, self.old[move.path]):
                kept.append(move.path)  # no longer txtool's: left where it is
                continue
            stash(ctx.fs, path, stash_path, aside(ctx, path))
            ctx.failpoint("removed", path)
        placed = {}
        for rel, link in plan.links.items():
            path = Path(link.path)
            ctx.fs.mkdir(path.parent, DIR_MODE)
            _sweep(ctx, path.parent)
            if not is_ours(path, link.target):
                if os.path.lexists(path):
                    kept.append(link.path)
                    continue
                place_link(ctx, Path(link.target), path, self.mode)
                ctx.failpoint("linked", path)
            placed[rel] = link.path
        return ManPagesLinked(pages=placed, kept=kept).record()

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        plan = self._plan(ctx)
        for link in plan.links.values():
            path = Path(link.path)
            _sweep(ctx, path.parent)
            if is_ours(path, link.target):
                ctx.fs.unlink(path)
        for move in reversed(plan.aside):
            path = Path(move.path)
            found = stashed_copy(ctx, path, Path(move.stash))
            if found is not None:
                restore(ctx.fs, found, path)

    async def cleanup(self, ctx: StepContext, result: Result | None) -> None:
        for move in self._plan(ctx).aside:
            renamed = aside(ctx, Path(move.path))
            if not discard(ctx.fs, renamed):
                raise OSError(f"{renamed} is still in use")


def current(state: JournalState, tool: Tool) -> dict[str, str]:
    """The man page links the tool has now (path -> the page it exposes), from the
    operation that made its generation current (a rollback relinks them)."""
    view = state.get(tool.changed_by or tool.op)
    if view is None:
        return {}
    for planned, intent, result in zip(view.plan, view.intents, view.results, strict=True):
        if planned.type != KIND:
            continue
        plan, linked = read(intent, ManPlan), read(result, ManPagesLinked)
        if plan is None or linked is None:
            return {}
        return {
            link.path: link.target
            for link in plan.links.values()
            if link.path in linked.pages.values()
        }
    return {}


def step(state: JournalState, old: Tool | None, source: str, mode: str) -> ManPages:
    """The ``man-pages`` step of a plan: ``source`` is the new environment ("" to remove)."""
    return ManPages(
        man_dir=str(man_dir()),
        source=source,
        old=current(state, old) if old else {},
        mode=mode,
    )


def check(
    loc: Locations,
    stash_dir: Path,
    args: dict[str, Any],
    intent: dict[str, Any],
    result: dict[str, Any],
) -> None:
    """The paths a ``man-pages`` record names, checked as ``check_journal`` checks the rest
    (``stash_dir``: the operation's): pages in the man dir, sources in the tools dir."""
    man = man_dir()
    loc.inside(args["man_dir"], man, "a man dir", depth=0)
    if args.get("source"):
        loc.inside(args["source"], loc.tools_dir, "an environment", depth=2)
    for path, target in args.get("old", {}).items():
        loc.inside(path, man, "a man page", depth=2)
        loc.inside(target, loc.tools_dir, "a man page source", depth=6)
    for move in intent.get("aside", ()):
        loc.inside(move["path"], man, "a man page", depth=2)
        loc.inside(move["stash"], stash_dir, "a stash")
    for link in intent.get("links", {}).values():
        loc.inside(link["path"], man, "a man page", depth=2)
        loc.inside(link["target"], loc.tools_dir, "a man page source", depth=6)
    for path in result.get("pages", {}).values():
        loc.inside(path, man, "a man page", depth=2)
