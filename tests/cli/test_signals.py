"""Real SIGINT/SIGTERM/SIGHUP sent to a real txtool at chosen points (a ``sleep`` failpoint
opens the window): committed work is reported as done, an interrupt with nothing to undo
closes the operation on the spot, and re-running the command is the fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from txengine import load
from txtool.cli import INCOMPLETE, INTERRUPTED, OK

SIGNALS = [signal.SIGINT, signal.SIGTERM]


def _stop_at(tx, reap, failpoint: str, argv: list[str], signum: int, what) -> subprocess.Popen[str]:
    """Start txtool with a 3 s sleep at ``failpoint``, send ``signum`` once ``what()`` holds."""
    proc = tx.spawn(*argv, failpoints=f"{failpoint}=sleep:3")
    reap.append(proc)
    tx.wait_for(what, what=f"{failpoint} reached")
    time.sleep(0.3)  # inside the sleep: the signal lands on a blocking call
    proc.send_signal(signum)
    return proc


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return out, err


def _ops(tx) -> list:
    return list(load(tx.journal))


# A signal after the last step's side effect, while the last records are written, or just
# after the engine returned: the upgrade committed; it is reported as done.
LATE = [
    "journal.before.committed",
    "journal.after.committed",  # the commit is durable, clean-up to come
    "journal.after.cleaned-up",  # the engine is about to return
]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", LATE)
def test_a_late_signal_never_turns_a_commit_into_a_failure(txdemo1, reap, point, signum) -> None:
    tx = txdemo1
    n = len(_ops(tx))
    proc = _stop_at(
        tx,
        reap,
        point,
        ["upgrade", "txdemo@latest"],
        signum,
        lambda: len(_ops(tx)) > n and _ops(tx)[-1].steps[-1] != "pending",
    )
    out, err = _finish(proc)
    (view,) = _ops(tx)[n:]
    assert view.committed, view.state
    assert proc.returncode == OK, err
    assert "upgraded txdemo 1.0 -> 2.0" in out
    assert "nothing was changed" not in err and "error" not in err
    assert "completed before the interrupt took effect" in err
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_just_after_the_result_is_printed_is_no_traceback(txdemo1, signum) -> None:
    tx = txdemo1
    proc = subprocess.Popen(
        [sys.executable, "-m", "txtool", "upgrade", "txdemo@latest"],
        env=tx.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tx.root,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once the service returned
    proc.send_signal(signum)
    _, err = _finish(proc)
    assert line.startswith("upgraded txdemo 1.0 -> 2.0")
    assert proc.returncode == OK, err
    assert "nothing was changed" not in err
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_ctrl_c_while_resolving_closes_the_operation_as_reverted(tx, reap, signum) -> None:
    proc = _stop_at(
        tx,
        reap,
        "step.resolve.start",
        ["install", "txdemo==1.0", *tx.index],
        signum,
        lambda: tx.journal.is_dir() and len(_ops(tx)) == 1,
    )
    _, err = _finish(proc)
    assert proc.returncode == INTERRUPTED, err
    (line,) = tx.error_lines(err)
    assert "closed as reverted" in line and "txdemo" in line
    (view,) = _ops(tx)
    assert view.state == "reverted"
    assert tx.list_json() == []
    assert not tx.bin.exists() or list(tx.bin.iterdir()) == []
    tx.assert_clean()
    tx.install("txdemo==1.0")  # nothing blocks the tool
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def _hold_lock(tx, reap) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom txengine import Journal\n"
            "j = Journal.open(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(60)\n",
            str(tx.journal),
        ],
        env=tx.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    reap.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_ctrl_c_while_waiting_for_the_lock_is_one_line(txdemo1, reap, signum) -> None:
    tx = txdemo1
    _hold_lock(tx, reap)
    before = tx.digest()
    proc = tx.spawn("upgrade", "txdemo@latest")
    reap.append(proc)
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("txtool: waiting for another txtool")
    proc.send_signal(signum)
    _, err = _finish(proc)
    assert proc.returncode == INTERRUPTED
    assert "interrupted; nothing was changed" in err
    assert tx.digest() == before


def test_rerunning_an_interrupted_upgrade_finishes_it(txdemo1, reap) -> None:
    tx = txdemo1
    proc = _stop_at(
        tx,
        reap,
        "step.install-env.created",
        ["upgrade", "txdemo@latest"],
        signal.SIGINT,
        tx.building,
    )
    _, err = _finish(proc)
    assert proc.returncode == INCOMPLETE, err
    assert "re-run the command" in err
    (view,) = load(tx.journal).incomplete()
    again = tx("upgrade", "txdemo@latest")
    assert f"finished the interrupted upgrade of txdemo (op {view.id})" in again.stderr
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert len(tx.envs("txdemo")) == 2  # 1.0's kept as a generation
    tx.assert_clean()


def test_interrupting_several_names_reports_each(tx, reap) -> None:
    argv = ["install", "txdemo==1.0", "multitool==1.0", "slowtool==1.0", *tx.index, "--json"]
    proc = _stop_at(
        tx,
        reap,
        "step.install-env.created",
        argv,
        signal.SIGINT,
        tx.building,
    )
    out, err = _finish(proc)
    assert proc.returncode == INCOMPLETE, err
    docs = json.loads(out)
    by_tool = {d["tool"]: d for d in docs}
    assert by_tool["txdemo"]["status"] == "incomplete"
    for name in ("multitool", "slowtool"):
        assert by_tool[name]["status"] == "not-attempted"
        assert f"txtool: error: {name}: not attempted (interrupted)" in err
    assert tx.envs("multitool") == [] and tx.envs("slowtool") == []
    tx("install", "txdemo==1.0", *tx.index)  # re-running finishes it
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    tx.assert_clean()


def test_sighup_does_not_stop_the_operation(txdemo1, reap) -> None:
    tx = txdemo1
    proc = _stop_at(
        tx,
        reap,
        "step.install-env.created",
        ["upgrade", "txdemo@latest"],
        signal.SIGHUP,
        tx.building,
    )
    out, err = _finish(proc)
    assert proc.returncode == OK, err
    assert "upgraded txdemo 1.0 -> 2.0" in out
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()
