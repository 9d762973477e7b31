"""Testing kit for anything built on txengine: no crash leaves a half-done operation.

An embedder describes one operation as a :class:`Scenario`: how to build the old world in
a fresh directory, the command line of a child process that performs the operation there,
the command line of a child that resumes (or reverts) whatever was left incomplete, and how
to take a comparable picture of the world. The campaigns then break that child in every way
the failpoints allow and check the promise of the engine after each break:

* :func:`crash_campaign` kills the child (SIGKILL) at every failpoint hit in turn, and
  kills the resume and revert children too, at their first, middle and last hits;
* :func:`random_kills` kills it from the parent at a random instant;
* :func:`fault_campaign` makes every filesystem call of the run fail in turn
  (``EIO``, ``ENOSPC``, ``EACCES``, ``EBUSY``, Windows' "in use");
* :func:`power_loss` kills it and also drops the journal's tail that was not yet fsynced.

After every break: the child never reported success (exit 0) unless the world is exactly
the new one; a world that is neither old nor new has an incomplete operation in the journal;
resume gives exactly the new world and revert exactly the old one (or the new one, when the
operation had committed; or the old one, when it had not started); and a resume or revert
that is itself killed and then run again ends the same way. Each campaign returns a
:class:`Report`; :func:`format_table` prints several. A failure carries the exact command
(environment and argv) that reproduces it, and its directory is kept for inspection.

Sketch (see ``tests/harness/`` for a complete one)::

    scenario = Scenario(
        name="place-files",
        setup=build_old_tree,
        run=lambda w: [sys.executable, str(CHILD), str(w)],
        resume=lambda w, revert: [sys.executable, str(RESUME), str(w), *(["--revert"] * revert)],
        observe=tree_picture,
        journal_dir=lambda w: w / ".journal",
    )
    print(format_table([crash_campaign(scenario), fault_campaign(scenario)]))

A child may run several operations (``upgrade --all``: one per tool). The journal checks
then read "an operation committed" and "an operation was reverted" over every operation
the child started, and ``old``/``new`` may be objects with their own ``__eq__`` (say, "every
tool old or new, at least one new"); a non-zero exit with something committed is accepted
only when something else was reverted.

Children run with ``cwd`` set to the work directory. Everything the operation touches must
live under it (point the embedder's locations there with ``env``): the harness saves and
restores that directory to try resume and revert on the same crashed state, always at the
same absolute path, so absolute paths recorded in the journal stay valid.

Besides the campaigns (which run children), :func:`check_step` checks one step type in
process against the step contract, :class:`InUseFileSystem` emulates Windows' "in use"
rule (``TXENGINE_FS_BUSY``), and ``failpoints`` is the failpoint switchboard
(``failpoints.configure(spec)``).

The parts: ``_scenario`` (what to run, world pictures), ``_cases`` (a work directory and
its children), ``_checks`` (the promise after each break), ``_campaign`` (the clean run,
running cases), ``_crash`` (kills at every point, random kills), ``_faults`` (a failing
file call at every point), ``_power`` (power loss), ``_report`` (reports and the table),
``_conformance`` (:func:`check_step`), ``_inuse`` (the "in use" double).
"""

from __future__ import annotations

from .. import _failpoints as failpoints
from ._campaign import enumerate_points
from ._conformance import check_step
from ._crash import crash_campaign, random_kills
from ._faults import DEFAULT_ERRNOS, fault_campaign
from ._inuse import InUseFileSystem
from ._power import power_loss
from ._report import Failure, Report, format_table
from ._scenario import CleanRun, HarnessError, Hit, Scenario, tree_picture

__all__ = [
    "DEFAULT_ERRNOS",
    "CleanRun",
    "Failure",
    "HarnessError",
    "Hit",
    "InUseFileSystem",
    "Report",
    "Scenario",
    "check_step",
    "crash_campaign",
    "enumerate_points",
    "failpoints",
    "fault_campaign",
    "format_table",
    "power_loss",
    "random_kills",
    "tree_picture",
]
