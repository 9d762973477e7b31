"""Kills: SIGKILL at every failpoint hit (:func:`crash_campaign`), or at a random instant
(:func:`random_kills`)."""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ._campaign import _campaign, _clean, _first_hit_time, _killed_at, _label
from ._cases import KILLED, _Broken, _Case, _Note
from ._checks import _check_stopped, _converge, _ops, _status
from ._report import Report
from ._scenario import Scenario


def crash_campaign(
    scenario: Scenario,
    points: Iterable[int] | None = None,
    *,
    workroot: Path | None = None,
    nested: Sequence[str] = ("first", "middle", "last"),
    jobs: int | None = None,
) -> Report:
    """Kill the child (SIGKILL) at its k-th failpoint hit, for every k (or ``points``).

    After each kill: the promise holds (see the module doc); resume gives the new world and
    revert the old one; and killing the resume or revert child at the hits named by
    ``nested`` (``"first"``, ``"middle"``, ``"last"``, or ``"rotate"``: one of the three,
    changing with k) and running it again ends the same way.
    """
    clean = _clean(scenario, workroot)
    ks = list(points) if points is not None else list(range(1, len(clean.hits) + 1))

    def case_for(k: int) -> Callable[[_Case], None]:
        def body(case: _Case) -> None:
            sc = case.scenario
            before, res = _killed_at(case, k)
            st = _status(sc, case.world, before)
            case.outcome = st.describe(sc)
            _check_stopped(sc, st, res.rc, killed=True)
            _converge(case, st, nested, k)

        return body

    cases = [(f"kill@{k}:{_label(clean.hits, k)}", case_for(k)) for k in ks]
    return _campaign(scenario, "crash", cases, workroot, jobs)


def random_kills(
    scenario: Scenario,
    trials: int = 20,
    seed: int = 0,
    *,
    workroot: Path | None = None,
    nested: Sequence[str] = (),
    jobs: int | None = None,
) -> Report:
    """SIGKILL the child from the parent at a random instant, ``trials`` times (seeded).

    The instant is drawn uniformly over the clean run's active time (from its first
    journal append to its last failpoint hit), counted from the child's first journal
    append, so kills land inside the operation rather than in start-up or teardown (the
    crash campaign covers those). Timing varies with load, so a
    seed fixes the delays, not the points they hit: ``Report.outcomes`` shows where they fell. Then the same checks as a crash.
    """
    clean = _clean(scenario, workroot)
    rng = random.Random(seed)
    delays = [rng.uniform(0.0, clean.active) for _ in range(trials)]

    def case_for(delay: float) -> Callable[[_Case], None]:
        def body(case: _Case) -> None:
            sc = case.scenario
            before = _ops(sc, case.world)
            started = case.start(case.child(sc.argv(case.world), None))
            proc = started[0]
            if _first_hit_time(proc, started[1], sc.timeout) is not None:
                time.sleep(delay)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)
            res = case.wait(started, sc.timeout)
            case.chain.append(
                _Note(
                    f"(the parent sent SIGKILL {delay * 1000:.1f}ms after the first journal append)"
                )
            )
            if res.rc not in (KILLED, 0):
                raise _Broken(f"child exited {res.rc}:\n{res.output}")
            st = _status(sc, case.world, before)
            case.outcome = st.describe(sc)
            _check_stopped(sc, st, res.rc, killed=True)
            _converge(case, st, nested, 0)

        return body

    cases = [
        (f"random#{i + 1}:kill {d * 1000:.1f}ms after the first append", case_for(d))
        for i, d in enumerate(delays)
    ]
    report = _campaign(scenario, "random-kill", cases, workroot, jobs)
    report.notes.append(
        f"seed {seed}; window {clean.active * 1000:.0f}ms from the first journal append"
    )
    return report
