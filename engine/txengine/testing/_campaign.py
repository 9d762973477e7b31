"""What every campaign shares: the clean run that enumerates its points, and running
cases in parallel into a :class:`Report`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._cases import KILLED, _Broken, _Case, _Result
from ._checks import _diff, _ops, _status
from ._report import Failure, Report
from ._scenario import CleanRun, HarnessError, Hit, Scenario


def enumerate_points(scenario: Scenario, workroot: Path | None = None) -> list[Hit]:
    """Run the operation once, cleanly, and return every failpoint hit in order.

    Records ``scenario.old`` and ``scenario.new`` when they were not given, and the run's
    timing (for :func:`random_kills`). Raises :class:`HarnessError` if the clean run fails.
    """
    with _workroot(workroot, scenario, "clean") as root:
        case = _Case(scenario, root, "clean")
        try:
            clean = _clean_run(scenario, case)
        except _Broken as e:
            raise HarnessError(f"{scenario.name}: the clean run: {e} (kept: {case.dir})") from None
        scenario.clean = clean
        shutil.rmtree(case.dir, ignore_errors=True)
        return clean.hits


def _clean_run(scenario: Scenario, case: _Case) -> CleanRun:
    case.setup()
    old = scenario.observe(case.world)
    if scenario.old is None:
        scenario.old = old
    elif old != scenario.old:
        raise _Broken("setup does not give the expected old world")
    before = _ops(scenario, case.world)
    started = case.start(case.child(scenario.argv(case.world), None))
    t_first = _first_hit_time(started[0], started[1], scenario.timeout)
    wall_first = time.time() - (time.monotonic() - t_first) if t_first is not None else None
    res = case.wait(started, scenario.timeout)
    if res.rc != 0:
        raise _Broken(f"exited {res.rc}:\n{res.output}")
    st = _status(scenario, case.world, before)
    if st.incomplete or not st.committed:
        raise _Broken(f"did not commit an operation ({st.describe(scenario)})")
    if scenario.new is None:
        scenario.new = st.picture
    elif st.picture != scenario.new:
        raise _Broken(f"does not give the expected new world{_diff(st.picture, scenario.new)}")
    if scenario.new == scenario.old:
        raise _Broken("the new world is the old one: nothing to tell apart")
    if not res.hits:
        raise _Broken("passed no failpoint (does the child run txengine?)")
    # The trace file's mtime is the instant of the last hit: after it comes only the
    # child's exit (interpreter teardown), where a kill would find nothing to break.
    active = res.seconds
    if wall_first is not None:
        with contextlib.suppress(OSError):
            active = started[1].stat().st_mtime - wall_first
    return CleanRun(res.hits, res.seconds, max(min(active, res.seconds), 0.001))


def _first_hit_time(
    proc: subprocess.Popen[bytes], trace: Path, timeout: float, prefix: str = "journal."
) -> float | None:
    """Poll until the child passes its first hit named ``prefix...``; return that instant
    (``time.monotonic``), or None if the child exits first."""
    deadline = time.monotonic() + timeout
    needle = "\n" + prefix
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if needle in "\n" + trace.read_text(encoding="utf-8", errors="replace"):
                return time.monotonic()
        if proc.poll() is not None:
            return None
        time.sleep(0.0005)
    return None


def _clean(scenario: Scenario, workroot: Path | None) -> CleanRun:
    if scenario.clean is None:
        enumerate_points(scenario, workroot)
    assert scenario.clean is not None
    return scenario.clean


@contextlib.contextmanager
def _workroot(given: Path | None, scenario: Scenario, campaign: str) -> Iterator[Path]:
    """Where a campaign's case directories go; a temporary one is removed if nothing failed."""
    if given is not None:
        root = Path(given) / f"{scenario.name}-{campaign}"
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix=f"txengine-{scenario.name}-{campaign}-"))
    yield root
    with contextlib.suppress(OSError):
        root.rmdir()  # empty unless a failing case was kept


def _campaign(
    scenario: Scenario,
    campaign: str,
    cases: Sequence[tuple[str, Callable[[_Case], None]]],
    workroot: Path | None,
    jobs: int | None,
) -> Report:
    """Run every case (in parallel); keep the directories of the failing ones."""
    report = Report(scenario.name, campaign)
    t0 = time.monotonic()
    lock = threading.Lock()
    with _workroot(workroot, scenario, campaign) as root:

        def one(item: tuple[str, Callable[[_Case], None]]) -> None:
            name, body = item
            case = _Case(scenario, root, name)
            try:
                case.setup()
                body(case)
            except _Broken as e:
                failure = Failure(name, str(e), case.repro(), case.dir)
                with lock:
                    report.failures.append(failure)
                    _count(report, case.outcome)
                return
            shutil.rmtree(case.dir, ignore_errors=True)
            with lock:
                report.passed += 1
                _count(report, case.outcome)

        workers = jobs or (os.cpu_count() or 1) + 1  # children also wait on fsync
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, cases))
    report.tried = len(cases)
    report.failures.sort(key=lambda f: _case_order(f.case, cases))
    report.seconds = time.monotonic() - t0
    return report


def _count(report: Report, outcome: str | None) -> None:
    if outcome is not None:
        report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1


def _case_order(name: str, cases: Sequence[tuple[str, object]]) -> int:
    for i, (n, _) in enumerate(cases):
        if n == name:
            return i
    return len(cases)


def _label(hits: Sequence[Hit], k: int) -> str:
    return hits[k - 1].name if 0 < k <= len(hits) else "?"


def _killed_at(case: _Case, k: int) -> tuple[dict[str, str], _Result]:
    """Run the scenario's child with a kill at hit ``k``; return the ops before, and the run."""
    sc = case.scenario
    before = _ops(sc, case.world)
    res = case.call(sc.argv(case.world), f"*#{k}=kill")
    if res.rc not in (KILLED, 0):
        raise _Broken(f"child was to be killed at hit {k} but exited {res.rc}:\n{res.output}")
    return before, res
