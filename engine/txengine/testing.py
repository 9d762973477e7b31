"""A crash-test harness for anything built on txengine: no crash leaves a half-done operation.

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
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import _failpoints as failpoints
from . import _lifecycle as lc
from ._journal import LOG_NAME, load

__all__ = [
    "Failure",
    "HarnessError",
    "Hit",
    "Report",
    "Scenario",
    "crash_campaign",
    "enumerate_points",
    "failpoints",
    "fault_campaign",
    "format_table",
    "power_loss",
    "random_kills",
    "tree_picture",
]

DEFAULT_ERRNOS = ("EIO", "ENOSPC", "EACCES", "EBUSY", "in-use")
KILLED = -signal.SIGKILL

Argv = Sequence[str]


class HarnessError(Exception):
    """The scenario itself is broken (its clean run fails): no campaign can run."""


class Hit(NamedTuple):
    """One failpoint passed by a child: its name and the path it concerned ('' if none)."""

    name: str
    path: str


def _default_journal_dir(workdir: Path) -> Path:
    return workdir / ".journal"


@dataclass
class Scenario:
    """One operation of an embedder, and how to run, resume, revert and observe it.

    ``run`` and ``resume`` give child argvs (``resume(workdir, revert)`` must resume every
    incomplete operation, or revert it when ``revert``, finish pending clean-ups, and exit 0
    once nothing is incomplete). ``observe`` returns a comparable picture of the world
    without the journal (see :func:`tree_picture`). ``old``/``new`` are the expected
    pictures; left None, they are taken after ``setup`` and after a clean run. ``env`` (a
    mapping, or a function of the work directory) is added to the children's environment.
    ``incomplete`` lists incomplete operation ids; by default the journal at
    ``journal_dir(workdir)`` is read with :func:`txengine.load`.
    """

    name: str
    setup: Callable[[Path], None]
    run: Argv | Callable[[Path], Argv]
    resume: Callable[[Path, bool], Argv]
    observe: Callable[[Path], object]
    old: object | None = None
    new: object | None = None
    env: Mapping[str, str] | Callable[[Path], Mapping[str, str]] = field(default_factory=dict)
    incomplete: Callable[[Path], list[str]] | None = None
    journal_dir: Callable[[Path], Path] = _default_journal_dir
    timeout: float = 60.0
    # Filled by enumerate_points: the clean run's hits and timing.
    clean: CleanRun | None = field(default=None, repr=False, compare=False)

    def argv(self, workdir: Path) -> list[str]:
        return list(self.run(workdir) if callable(self.run) else self.run)

    def child_env(self, workdir: Path) -> dict[str, str]:
        extra = self.env(workdir) if callable(self.env) else self.env
        return dict(extra)


@dataclass
class CleanRun:
    """What an uninterrupted run of a scenario did: every hit, and how long it took."""

    hits: list[Hit]
    seconds: float
    active: float  # from the first journal append to the last failpoint hit


@dataclass
class Failure:
    """One broken promise: which case, what was wrong, how to reproduce it, where to look."""

    case: str
    message: str
    repro: str
    workdir: Path | None = None

    def __str__(self) -> str:
        where = f"\n  kept: {self.workdir}" if self.workdir else ""
        return f"[{self.case}] {self.message}\n  repro: {self.repro}{where}"


@dataclass
class Report:
    """The outcome of one campaign over one scenario."""

    scenario: str
    campaign: str
    tried: int = 0
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: How many cases stopped in each state ("world new; journal: incomplete [...]" ...).
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.tried > 0 and not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def __str__(self) -> str:
        head = (
            f"{self.scenario} / {self.campaign}: {self.tried} tried, {self.passed} passed,"
            f" {self.failed} failed in {self.seconds:.1f}s"
        )
        seen = [f"  {n:4d} x {what}" for what, n in sorted(self.outcomes.items())]
        return "\n".join([head, *self.notes, *seen, *(str(f) for f in self.failures[:5])])


def format_table(reports: Iterable[Report]) -> str:
    """A plain-text table: scenario | campaign | tried | passed | failed | first failure repro."""
    header = ("scenario", "campaign", "tried", "passed", "failed", "first failure repro")
    rows = [header]
    for r in reports:
        first = r.first_failure
        repro = f"[{first.case}] {first.repro}" if first else "-"
        rows.append((r.scenario, r.campaign, str(r.tried), str(r.passed), str(r.failed), repro))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append(" | ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in [*widths, len(header[-1])]))
    return "\n".join(lines) + "\n"


# -- pictures --------------------------------------------------------------------------------


def tree_picture(root: Path, exclude: Iterable[str] = (".journal",)) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` by relative path: file bytes and permission bits, link
    targets, directories. Top-level names in ``exclude`` (the journal) are left out."""
    skip = set(exclude)
    picture: dict[str, tuple[Any, ...]] = {}

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if not prefix and entry.name in skip:
                continue
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                picture[rel] = ("link", os.readlink(entry.path))
            elif stat.S_ISDIR(st.st_mode):
                picture[rel] = ("dir",)
                walk(Path(entry.path), rel + "/")
            else:
                picture[rel] = ("file", Path(entry.path).read_bytes(), oct(st.st_mode & 0o777))

    if root.is_dir():
        walk(root, "")
    return picture


# -- running children --------------------------------------------------------------------------


@dataclass
class _Child:
    argv: list[str]
    fail: str | None  # the TXENGINE_FAILPOINTS value
    cwd: Path
    env_extra: dict[str, str]

    def repro(self) -> str:
        env = dict(self.env_extra)
        if self.fail:
            env[failpoints.ENV] = self.fail
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        cmd = shlex.join(self.argv)
        return f"(cd {shlex.quote(str(self.cwd))} && {assigns + ' ' if assigns else ''}{cmd})"


@dataclass
class _Result:
    rc: int
    hits: list[Hit]
    output: str
    seconds: float


def _read_trace(path: Path) -> list[Hit]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    hits = []
    for line in text.splitlines():
        name, _, where = line.partition("\t")
        hits.append(Hit(name, where))
    return hits


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Case:
    """One case: a work directory (the world, always at the same path), a place to save a
    copy of it, traces and logs, and the list of children run so far (for repro)."""

    def __init__(self, scenario: Scenario, root: Path, name: str) -> None:
        self.scenario = scenario
        self.name = name
        self.dir = root / re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.world = self.dir / "world"
        self.world.mkdir(parents=True)
        self.saved = self.dir / "saved"
        self.runs = 0
        self.chain: list[_Child] = []
        self.outcome: str | None = None

    def setup(self) -> None:
        self.scenario.setup(self.world)

    def child(self, argv: Argv, fail: str | None) -> _Child:
        return _Child(list(argv), fail, self.world, self.scenario.child_env(self.world))

    def start(
        self, child: _Child, trace: bool = True
    ) -> tuple[subprocess.Popen[bytes], Path, Path, float]:
        self.runs += 1
        self.chain.append(child)
        trace_path = self.dir / f"trace-{self.runs}.txt"
        log_path = self.dir / f"output-{self.runs}.txt"
        env = {
            k: v for k, v in os.environ.items() if k not in (failpoints.ENV, failpoints.TRACE_ENV)
        }
        env.update(child.env_extra)
        if child.fail:
            env[failpoints.ENV] = child.fail
        if trace:
            env[failpoints.TRACE_ENV] = str(trace_path)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                child.argv,
                cwd=child.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return proc, trace_path, log_path, time.monotonic()

    def wait(
        self, started: tuple[subprocess.Popen[bytes], Path, Path, float], timeout: float
    ) -> _Result:
        proc, trace_path, log_path, t0 = started
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise _Broken(f"child did not finish within {timeout:g}s") from None
        return _Result(rc, _read_trace(trace_path), _tail(log_path), time.monotonic() - t0)

    def call(self, argv: Argv, fail: str | None = None) -> _Result:
        return self.wait(self.start(self.child(argv, fail)), self.scenario.timeout)

    def save(self) -> None:
        if self.saved.exists():
            shutil.rmtree(self.saved)
        shutil.copytree(self.world, self.saved, symlinks=True)

    def restore(self) -> None:
        """Put the saved world back, at the same path."""
        shutil.rmtree(self.world)
        shutil.copytree(self.saved, self.world, symlinks=True)

    def repro(self) -> str:
        steps = [c.repro() for c in self.chain]
        return "after setup: " + " ; then ".join(steps) if steps else "(setup only)"


class _Broken(Exception):
    """A check failed; the message says which."""


# -- the journal's view --------------------------------------------------------------------


def _ops(scenario: Scenario, workdir: Path) -> dict[str, str]:
    """Every operation in the journal and its lifecycle state."""
    directory = scenario.journal_dir(workdir)
    if not directory.exists():
        return {}
    try:
        state = load(directory)
    except Exception as e:
        raise _Broken(f"the journal does not load: {e}") from None
    return {view.id: view.state for view in state}


def _incomplete(scenario: Scenario, workdir: Path) -> list[str]:
    if scenario.incomplete is not None:
        return list(scenario.incomplete(workdir))
    return [op for op, st in _ops(scenario, workdir).items() if st in lc.INCOMPLETE]


@dataclass
class _Status:
    """The world and the journal after a child stopped."""

    picture: object
    incomplete: list[str]
    committed: bool  # an operation started by the child has committed
    reverted: bool  # an operation started by the child was reverted
    started: bool  # the child started an operation (or changed one)

    def describe(self, scenario: Scenario) -> str:
        world = (
            "old"
            if self.picture == scenario.old
            else "new"
            if self.picture == scenario.new
            else "neither old nor new"
        )
        journal = (
            f"{len(self.incomplete)} incomplete"
            if self.incomplete
            else "committed and reverted"
            if self.committed and self.reverted
            else "committed"
            if self.committed
            else "reverted"
            if self.reverted
            else "started, not committed"
            if self.started
            else "no new operation"
        )
        return f"world {world}; journal: {journal}"


def _status(scenario: Scenario, workdir: Path, before: Mapping[str, str]) -> _Status:
    ops = _ops(scenario, workdir)
    changed = {op: st for op, st in ops.items() if before.get(op) != st}
    committed = any(st in (lc.COMMITTED, lc.DONE) for st in changed.values())
    reverted = any(st == lc.REVERTED for st in changed.values())
    picture = scenario.observe(workdir)
    return _Status(picture, _incomplete(scenario, workdir), committed, reverted, bool(changed))


def _check_stopped(scenario: Scenario, st: _Status, rc: int, *, killed: bool) -> None:
    """The promise right after a child stopped (killed, faulted or finished)."""
    old, new = scenario.old, scenario.new
    if rc == 0 and not (st.picture == new and st.committed and not st.incomplete):
        raise _Broken(f"child exited 0 (success) but {st.describe(scenario)}")
    if st.incomplete:
        return  # any world is allowed while the journal says what to finish
    if st.picture == new and new != old:
        if not st.committed:
            raise _Broken(
                f"world is new but the journal has no committed operation ({st.describe(scenario)})"
            )
        if rc != 0 and not killed and not st.reverted:
            # (A child that runs several operations may rightly fail when one of them was
            # reverted and another committed; with nothing reverted, failure is a lie.)
            raise _Broken(f"child reported failure (exit {rc}) but the operation committed")
    elif st.picture == old:
        if st.committed and new != old:
            raise _Broken(f"the journal says committed but {st.describe(scenario)}")
    else:
        raise _Broken(f"half-done: {st.describe(scenario)} and no incomplete operation reported")


def _ends(scenario: Scenario, st: _Status) -> tuple[object, object]:
    """(world after resume, world after revert) for a stopped child."""
    if st.committed and not st.incomplete:
        return scenario.new, scenario.new
    if st.incomplete:
        return scenario.new, scenario.old
    return scenario.old, scenario.old


def _name(picture: object, scenario: Scenario) -> str:
    if picture == scenario.old:
        return "old"
    if picture == scenario.new:
        return "new"
    return "neither old nor new"


def _check_end(case: _Case, what: str, res: _Result, expected: object) -> None:
    sc = case.scenario
    if res.rc != 0:
        raise _Broken(f"{what} exited {res.rc}:\n{res.output}")
    left = _incomplete(sc, case.world)
    if left:
        raise _Broken(f"{what} exited 0 but operations {left} are still incomplete")
    got = sc.observe(case.world)
    if got != expected:
        raise _Broken(
            f"{what} gave the {_name(got, sc)} world, expected {_name(expected, sc)}"
            f"{_diff(got, expected)}"
        )


def _diff(got: object, expected: object) -> str:
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return ""
    keys = sorted(set(got) | set(expected))
    lines = [
        f"    {k}: {expected.get(k, '<absent>')!r:.60} -> {got.get(k, '<absent>')!r:.60}"
        for k in keys
        if got.get(k) != expected.get(k)
    ]
    return ("\n" + "\n".join(lines[:10])) if lines else ""


def _pick(nested: Sequence[str], count: int, k: int) -> list[int]:
    """Which hits (1-based) of a resume child to kill it at."""
    if count == 0:
        return []
    where = {"first": 1, "middle": (count + 1) // 2, "last": count}
    chosen: list[int] = []
    for name in nested:
        if name == "rotate":  # one of first/middle/last, by the outer point
            j = where[("first", "middle", "last")[k % 3]]
        else:
            j = where[name]
        if j not in chosen:
            chosen.append(j)
    return chosen


def _converge(case: _Case, st: _Status, nested: Sequence[str], k: int) -> None:
    """From the crashed world: resume and revert reach their ends, even when killed."""
    sc = case.scenario
    forward_end, revert_end = _ends(sc, st)
    case.save()
    runs: dict[bool, _Result] = {}
    for revert, end in ((False, forward_end), (True, revert_end)):
        what = "revert" if revert else "resume"
        res = case.call(sc.resume(case.world, revert))
        runs[revert] = res
        _check_end(case, what, res, end)
        case.restore()
        case.chain.pop()
    for revert, end in ((False, forward_end), (True, revert_end)):
        what = "revert" if revert else "resume"
        for j in _pick(nested, len(runs[revert].hits), k):
            res = case.call(sc.resume(case.world, revert), f"*#{j}=kill")
            if res.rc not in (KILLED, 0):
                raise _Broken(f"{what} killed at hit {j} exited {res.rc}:\n{res.output}")
            mid = _status(sc, case.world, {})
            if not mid.incomplete and mid.picture not in (sc.old, sc.new):
                raise _Broken(f"{what} killed at hit {j}: half-done world, nothing incomplete")
            again = case.call(sc.resume(case.world, revert))
            _check_end(case, f"{what} after a kill at its hit {j}", again, end)
            case.restore()
            case.chain.pop()
            case.chain.pop()


# -- campaigns ------------------------------------------------------------------------------


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


def _label(hits: Sequence[Hit], k: int) -> str:
    return hits[k - 1].name if 0 < k <= len(hits) else "?"


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


def fault_campaign(
    scenario: Scenario,
    errnos: Sequence[str] = DEFAULT_ERRNOS,
    points: Iterable[int] | None = None,
    *,
    workroot: Path | None = None,
    nested: Sequence[str] = (),
    jobs: int | None = None,
) -> Report:
    """Make the m-th filesystem call fail, for every m (or ``points``) and every error.

    ``errnos`` are errno names (``EIO``...) or ``"in-use"``. Expected: the child exits
    non-zero with the old world back, or exits 0 with the new world committed, or leaves an
    incomplete operation that resume and revert finish.
    """
    clean = _clean(scenario, workroot)
    fs_hits = [h for h in clean.hits if h.name.startswith("fs.")]
    ms = list(points) if points is not None else list(range(1, len(fs_hits) + 1))

    def case_for(m: int, err: str) -> Callable[[_Case], None]:
        action = "in-use" if err == "in-use" else f"error:{err}"

        def body(case: _Case) -> None:
            sc = case.scenario
            before = _ops(sc, case.world)
            res = case.call(sc.argv(case.world), f"fs.*#{m}={action}")
            if res.rc < 0:
                raise _Broken(f"child died of signal {-res.rc}:\n{res.output}")
            st = _status(sc, case.world, before)
            case.outcome = st.describe(sc)
            _check_stopped(sc, st, res.rc, killed=False)
            if st.incomplete:
                _converge(case, st, nested, m)

        return body

    cases = [
        (f"{err}@fs#{m}:{fs_hits[m - 1].name if m <= len(fs_hits) else '?'}", case_for(m, err))
        for m in ms
        for err in errnos
    ]
    return _campaign(scenario, "fault", cases, workroot, jobs)


def power_loss(
    scenario: Scenario,
    points: Iterable[int] | None = None,
    seed: int = 0,
    *,
    torn: bool = True,
    workroot: Path | None = None,
    nested: Sequence[str] = (),
    jobs: int | None = None,
) -> Report:
    """Power loss: kill the child at hit k, then drop the journal bytes not yet fsynced.

    The model: a record is durable once a ``journal.synced`` point (an ``fdatasync``) has
    passed after its ``journal.written.<tag>`` point, so after the kill ``journal.log`` is
    cut back to the end of the last durable record; with ``torn`` a second case also keeps
    a random part of the first record that was in flight (a torn write). Then the usual checks: a
    committed record in the surviving journal must come with the new world, anything else
    must be old, or reported incomplete, and resume and revert must finish.

    Limits: only the journal's tail is dropped. The steps' file data and directory entries
    are fsynced by the filesystem primitives before the journal records their completion,
    and the parent cannot see what a real power cut would lose from the page cache, so
    files are taken as they are. By default ``points`` are the hits at which some written
    record is not yet synced: at every other hit a power loss is the same as a kill (see
    :func:`crash_campaign`).
    """
    clean = _clean(scenario, workroot)
    if points is None:
        ks = [i for i in range(1, len(clean.hits) + 1) if _in_flight(clean.hits[:i]) > 0]
    else:
        ks = list(points)
    rng = random.Random(seed)
    variants: list[tuple[int, float | None]] = []
    for k in ks:
        variants.append((k, None))
        if torn:
            variants.append((k, rng.random()))

    def case_for(k: int, fraction: float | None) -> Callable[[_Case], None]:
        def body(case: _Case) -> None:
            sc = case.scenario
            before, res = _killed_at(case, k)
            cut = _drop_undurable(sc.journal_dir(case.world) / LOG_NAME, res.hits, fraction)
            case.chain.append(_Note(f"power loss: journal.log cut to {cut} bytes"))
            st = _status(sc, case.world, before)
            case.outcome = st.describe(sc)
            _check_stopped(sc, st, res.rc, killed=True)
            _converge(case, st, nested, k)

        return body

    cases = [
        (f"power@{k}:{_label(clean.hits, k)}{'' if f is None else ' torn'}", case_for(k, f))
        for k, f in variants
    ]
    report = _campaign(scenario, "power-loss", cases, workroot, jobs)
    report.notes.append("model: only the journal tail that was not fsynced is dropped")
    return report


def _in_flight(hits: Sequence[Hit]) -> int:
    """How many written records the trace ``hits`` has not yet seen fsynced."""
    pending = 0
    for h in hits:
        if h.name.startswith("journal.written."):
            pending += 1
        elif h.name == "journal.synced":
            pending = 0
    return pending


def _killed_at(case: _Case, k: int) -> tuple[dict[str, str], _Result]:
    """Run the scenario's child with a kill at hit ``k``; return the ops before, and the run."""
    sc = case.scenario
    before = _ops(sc, case.world)
    res = case.call(sc.argv(case.world), f"*#{k}=kill")
    if res.rc not in (KILLED, 0):
        raise _Broken(f"child was to be killed at hit {k} but exited {res.rc}:\n{res.output}")
    return before, res


class _Note(_Child):
    """A non-command step in a reproduction chain (e.g. the journal cut of a power loss)."""

    def __init__(self, text: str) -> None:
        super().__init__([], None, Path(), {})
        self.text = text

    def repro(self) -> str:
        return self.text


def _drop_undurable(log: Path, hits: Sequence[Hit], fraction: float | None) -> int:
    """Cut ``log`` to its durable records, per the child's trace; return the new size.

    The records in flight are those written (``journal.written.*``) after the last
    ``journal.synced`` point. With ``fraction``, keep that share of the bytes of the first
    of them (a torn write).
    """
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return 0
    in_flight = _in_flight(hits)
    if in_flight <= 0:
        return len(data)
    lines = data.split(b"\n")[:-1]
    keep = len(lines) - in_flight  # header and every durable record
    end = sum(len(line) + 1 for line in lines[:keep])
    if fraction is not None:
        tail = len(lines[keep]) + 1
        end += max(1, min(tail - 1, int(tail * fraction)))
    with open(log, "r+b") as f:
        f.truncate(end)
    return end
