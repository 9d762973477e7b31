"""What an operation would change, found without changing anything: ``--dry-run`` shows
``from -> to`` for every tool, ``list --outdated`` the tools an upgrade would move.

Both run the plan's resolve step the way it would run (its requirement, Python, index and
backend), but outside the engine: nothing is journaled, no lock is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from txengine import JournalState, StepError

from . import backend as be
from .backend.pins import is_rebuilt, pin_name
from .errors import UsageError
from .installer import Options, Plan, Planner
from .locations import Locations
from .names import BadName
from .steps import Resolve

#: Resolutions run at once (each is a uv or pip child).
JOBS = 4


@dataclass(frozen=True)
class Change:
    """One tool's ``from -> to``. ``new`` is None when the tool goes away; ``rebuilt``
    names the source built again when its pin has no version (a directory, a file, a
    URL, a VCS commit)."""

    tool: str
    kind: str
    old: str | None
    new: str | None
    unchanged: bool = False
    rebuilt: str | None = None
    error: str | None = None

    @property
    def outdated(self) -> bool:
        """An upgrade would install something else, and can say what (a version or a
        commit); a directory, a file or a URL is rebuilt on upgrade, never "outdated"."""
        return not self.unchanged and self.error is None and self.new is not None

    def text(self) -> str:
        old = self.old or "(not installed)"
        if self.error is not None:
            return f"{self.kind} {self.tool}: {old} -> ? ({self.error})"
        if self.unchanged:
            return f"{self.kind} {self.tool}: {old} (up to date)"
        if self.kind == "uninstall":
            return f"{self.kind} {self.tool}: {old} -> (removed)"
        new = self.new if self.new else f"(rebuilt from {self.rebuilt})"
        return f"{self.kind} {self.tool}: {old} -> {new}"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.old,
            "to": self.new,
            "unchanged": self.unchanged,
            "rebuilt": self.rebuilt,
            "resolve_error": self.error,
        }


def _source_of(pin: str) -> str:
    return pin.split(" @ ", 1)[1].strip() if " @ " in pin else pin


async def change_of(plan: Plan) -> Change:
    """The plan's ``from -> to``, by resolving as its resolve step would."""
    old = plan.old.version if plan.old else None
    resolve = next((s for s in plan.steps if isinstance(s, Resolve)), None)
    if resolve is None:
        return Change(plan.tool, plan.kind, old, None)
    try:
        resolved = await resolve.resolved()
    except (StepError, be.BackendError) as e:
        return Change(plan.tool, plan.kind, old, None, error=str(e))
    own = next(p for p in resolved.pins if pin_name(p) == plan.tool)
    if resolved.version:
        return Change(plan.tool, plan.kind, old, resolved.version, resolved.unchanged)
    # No version before it is built: a VCS commit is still a new thing to say; a
    # directory, a file or a URL is only "rebuilt".
    new = None if is_rebuilt(own) else _source_of(own).rsplit("@", 1)[-1][:12]
    return Change(plan.tool, plan.kind, old, new, resolved.unchanged, _source_of(own))


def changes(plans: Sequence[Plan]) -> list[Change]:
    """:func:`change_of` for each plan, :data:`JOBS` at a time, in the plans' order."""
    found: list[Change | None] = [None] * len(plans)
    limiter = anyio.CapacityLimiter(JOBS)

    async def one(i: int, plan: Plan) -> None:
        async with limiter:
            found[i] = await change_of(plan)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i, plan in enumerate(plans):
                tg.start_soon(one, i, plan)

    anyio.run(main)
    return [c for c in found if c is not None]


def outdated(loc: Locations, state: JournalState) -> list[Change]:
    """Every installed tool's upgrade within its recorded spec, as an upgrade would plan it
    now (read-only: the journal's state as it is, no lock)."""
    planner = Planner(loc, state, locked=False)
    plans: list[Plan] = []
    refused: list[Change] = []
    for name, tool in sorted(planner.tools.items()):
        try:
            plans.append(planner.upgrade(name, Options()))
        except (UsageError, BadName) as e:  # e.g. its recorded source or find-links are gone
            refused.append(Change(name, "upgrade", tool.version, None, error=str(e)))
    return sorted(changes(plans) + refused, key=lambda c: c.tool)
