"""Upgrading several tools at once: bounded parallelism, carrying on past failures."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from packaging.utils import canonicalize_name

from txengine import OperationError, describe_error

from .installer import Installer, Options, Outcome, UsageError
from .names import BadName, requirement
from .output import Reporter


async def upgrade_one(
    installer: Installer, name: str, opts: Options, reporter: Reporter
) -> Outcome:
    """Resume the tool's incomplete operation, if any, then upgrade it."""
    tool = canonicalize_name(requirement(name).name)
    resumed = await installer.resume_tool(tool)
    if resumed is not None:
        # The resumed operation installed what it had resolved; that is this upgrade's work.
        reporter.line(f"finished the interrupted {resumed.kind} of {tool} (op {resumed.id})")
        now = installer.planner().tools.get(tool)
        return Outcome(tool, "resumed", now.version if now else None, op=resumed.id)
    return await installer.run(installer.planner().upgrade(name, opts))


async def upgrade_many(
    installer: Installer,
    names: Sequence[str],
    everything: bool,
    opts: Options,
    jobs: int,
    reporter: Reporter,
) -> tuple[list[Outcome], dict[str, str]]:
    """Upgrade each tool (all of them with ``everything``), ``jobs`` at a time.

    One tool's failure does not stop the others: it is returned, by name, as one line.
    A single named tool's failure is raised instead, so that it keeps its own exit code.
    """
    planner = installer.planner()
    targets = sorted(set(planner.tools) | set(planner.incomplete)) if everything else list(names)
    if len(targets) == 1 and not everything:
        return [await upgrade_one(installer, targets[0], opts, reporter)], {}
    results: list[Outcome] = []
    failures: dict[str, str] = {}
    limiter = anyio.CapacityLimiter(jobs)

    async def one(name: str) -> None:
        async with limiter:
            try:
                results.append(await upgrade_one(installer, name, opts, reporter))
            except (OperationError, UsageError, BadName) as e:
                failures[name] = f"{name}: {describe_error(e)}"

    async with anyio.create_task_group() as tg:
        for name in targets:
            tg.start_soon(one, name)
    return sorted(results, key=lambda o: o.tool), failures
