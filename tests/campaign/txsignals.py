"""Real SIGINT and SIGTERM sent to a real ``txtool upgrade txdemo`` (1.0 -> 2.0) at a spread of
moments, from start-up to after the commit.

A moment is either a delay after the child was spawned (start-up: the interpreter, the
imports, taking the lock), or a failpoint the child reaches: the child then sleeps in a
``sleep`` failpoint window there (``TXENGINE_FAILPOINTS=NAME=sleep:S``), the parent sees the
hit in the trace and sends the signal inside the window. ``journal.written.committed`` is
the window between the commit record's write and its fsync, ``journal.after.committed`` the
one just after it is durable; ``late`` sends the signal as soon as the clean-up record is
written, with no window, so it lands while the child prints and exits.

After each case: no traceback on stderr; when the journal says the operation committed, the
exit is 0, or 130 with "completed before the interrupt took effect"; when it did not, the exit
is not 0 and the world is the old one, or the operation is incomplete (exit 3) and ``txtool
status`` names it; then re-running ``txtool upgrade txdemo`` ends in the new world with
nothing incomplete.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import txcampaign as tc  # noqa: E402

from txengine import load  # noqa: E402
from txengine.testing import Failure, Report  # noqa: E402

WINDOW = 1.5  # seconds the child sleeps at a failpoint, waiting for the signal


@dataclass(frozen=True)
class Moment:
    """When the signal is sent: ``delay`` seconds after spawn, or at failpoint ``point``."""

    name: str
    point: str | None = None
    delay: float = 0.0
    window: bool = True  # sleep at ``point`` (False: send as the point passes, no window)
    #: Before the first side effect: the interrupted operation has nothing to undo, so it
    #: must be closed on the spot (exit 130), not left incomplete (issue 7, item 5).
    early: bool = False


MOMENTS = (
    Moment("spawn", delay=0.0, early=True),
    Moment("start-up", delay=0.08, early=True),
    Moment("resolving", "step.resolve.start", early=True),
    Moment("env-created", "step.install-env.created"),
    Moment("env-installed", "step.install-env.installed"),
    # txdemo keeps its one executable: its shim stays, one rename of the stable path switches it.
    Moment("switched", "step.switch-current.switched"),
    Moment("before-commit", "journal.before.committed"),
    Moment("commit-fsync", "journal.written.committed"),
    Moment("commit-durable", "journal.after.committed"),
    Moment("clean-up", "journal.before.cleaned-up"),
    Moment("late", "journal.written.cleaned-up", window=False),
)
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def moment(name: str) -> Moment:
    for m in MOMENTS:
        if m.name == name:
            return m
    raise LookupError(f"unknown moment {name!r}")


@dataclass
class Worlds:
    """The old and new tools of the upgrade (``txcampaign.picture``'s ``tools`` part)."""

    old: dict[str, Any]
    new: dict[str, Any]


def worlds(wheels: Path) -> Worlds:
    return Worlds(*tc._calibrate(wheels, ("txdemo==1.0",), ["upgrade", "txdemo@latest"]))


def _wait_for(trace: Path, name: str, proc: subprocess.Popen[str], timeout: float) -> bool:
    """Wait until the child's trace shows ``name`` (False: it exited or timed out first)."""
    end = time.monotonic() + timeout
    needle = name + "\t"
    while time.monotonic() < end:
        try:
            if any(line.startswith(needle) for line in trace.read_text().splitlines()):
                return True
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def run_case(m: Moment, sig: str, wheels: Path, w: Worlds, root: Path) -> tuple[str, list[str]]:
    """Send ``sig`` at moment ``m`` to a real upgrade; return (outcome, broken promises)."""
    world = root / f"{m.name}-{sig}"
    shutil.rmtree(world, ignore_errors=True)
    tc._install(world, wheels, "txdemo==1.0")
    trace = world.parent / f"{world.name}.trace"
    trace.unlink(missing_ok=True)
    env = tc.base_env(world, {"TXENGINE_FAILPOINT_TRACE": str(trace)})
    if m.point and m.window:
        env["TXENGINE_FAILPOINTS"] = f"{m.point}=sleep:{WINDOW}"
    proc = subprocess.Popen(
        [tc.PY, "-m", "txtool", "upgrade", "txdemo@latest"],
        cwd=world,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    problems: list[str] = []
    if m.point is None:
        time.sleep(m.delay)
        sent = proc.poll() is None
    else:
        sent = _wait_for(trace, m.point, proc, 60)
    if sent:
        proc.send_signal(SIGNALS[sig])
    out, err = proc.communicate(timeout=120)
    rc = proc.returncode
    if not sent:
        problems.append(f"the child exited (rc {rc}) before the signal could be sent")
    views = [
        v for v in load(world / "home" / "journal", warn=lambda _m: None) if v.kind == "upgrade"
    ]
    committed = any(v.committed for v in views)
    incomplete = [v for v in views if v.incomplete]
    outcome = f"exit {rc}, " + (",".join(sorted({v.state for v in views})) or "no operation")
    tools, strays = tc.split(tc.picture(world))
    said = (out + err).strip().replace("\n", " | ")
    if "Traceback" in err:
        problems.append(f"traceback on stderr:\n{err}")
    if committed:
        if rc not in (0, 130):
            problems.append(f"committed, yet exit {rc}: {said}")
        if rc == 130 and "completed before the interrupt took effect" not in err:
            problems.append(f"committed, exit 130, but not 'completed before...': {said}")
        if "nothing was changed" in err:
            problems.append(f"committed, yet says nothing was changed: {said}")
    else:
        if rc == 0:
            problems.append(f"exit 0 but nothing committed: {said}")
        if incomplete:
            if rc != 3:
                problems.append(f"exit {rc} while {[v.id for v in incomplete]} is incomplete")
            st = tc.txtool(world, "status")
            problems += [
                f"`txtool status` does not name {v.id}: {st.stdout}"
                for v in incomplete
                if v.id not in st.stdout
            ]
        elif tools != w.old or strays:
            problems.append(
                f"exit {rc}, nothing committed, but not the old world: {tools} {strays}"
            )
        if m.early and (incomplete or rc not in (130, -SIGNALS[sig])):
            problems.append(f"interrupted before any side effect, yet {outcome}")
    again = tc.txtool(world, "upgrade", "txdemo@latest")
    tools, strays = tc.split(tc.picture(world))
    st = tc.txtool(world, "status")
    if again.returncode != 0 or tools != w.new or strays or st.returncode != 0:
        problems.append(
            f"re-running `txtool upgrade txdemo` exited {again.returncode}"
            f" ({again.stderr.strip()}), status {st.returncode}; world {tools} {strays}"
        )
    return outcome, problems


def repro(m: Moment, sig: str) -> str:
    return f"python tests/campaign/txsignals.py {m.name} --signals {sig}"


def campaign(
    wheels: Path,
    root: Path,
    moments: Sequence[Moment] = MOMENTS,
    signals: Sequence[str] = tuple(SIGNALS),
    jobs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Every moment x every signal; one Report, as the harness's campaigns give."""
    t0 = time.monotonic()
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # A background job of a non-interactive shell ignores SIGINT, and an ignored signal
        # stays ignored across exec: the children would never see a Ctrl-C at start-up.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    w = worlds(wheels)
    root.mkdir(parents=True, exist_ok=True)
    cases = [(m, s) for s in signals for m in moments]
    report = Report("upgrade", "signals")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda c: (c, run_case(*c, wheels, w, root)), cases))
    for (m, s), (outcome, problems) in results:
        report.tried += 1
        key = f"{s:7} {m.name:16} -> {outcome}"
        report.outcomes[key] = report.outcomes.get(key, 0) + 1
        if problems:
            report.failures.append(
                Failure(f"{s}@{m.name}", "; ".join(problems), repro(m, s), root / f"{m.name}-{s}")
            )
        else:
            report.passed += 1
        if progress:
            progress(f"{s}@{m.name}: {outcome}{' FAILED' if problems else ''}")
    report.seconds = time.monotonic() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    from txtool.wheelhouse import build_test_wheelhouse

    p = argparse.ArgumentParser(description="Signal a real upgrade at a spread of moments.")
    p.add_argument("moments", nargs="*", choices=[m.name for m in MOMENTS] + [[]])
    p.add_argument("--signals", default=",".join(SIGNALS))
    p.add_argument("--workroot", type=Path, default=None)
    args = p.parse_args(argv)
    root = args.workroot or Path(tempfile.mkdtemp(prefix="txsignals-"))
    wheels = build_test_wheelhouse(root / "wheels")
    chosen = [moment(n) for n in args.moments] or list(MOMENTS)
    report = campaign(wheels, root, chosen, args.signals.split(","), progress=print)
    print(report)
    print(f"case directories under {root}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
