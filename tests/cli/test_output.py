"""Output problems never change what an operation does (real pipes closed early), and once
``committed`` is durable every later failure is a warning (ENOSPC by failpoint: on a tmpfs
a record of the size of ``cleaned-up`` lands in the log's last page, so a real full disk
does not fail it reliably)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from txengine import load
from txtool.cli import FAILED, INCOMPLETE, OK


def _run_into_closed_pipe(tx, *argv: str, failpoints: str | None = None, first_line: bool = False):
    """Run txtool with stdout and stderr on one pipe, as ``2>&1 | head -1``: closed at once,
    or (``first_line``) once the first line was read. Return the exit code."""
    r, w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "txtool", *argv],
        env=tx.environ(failpoints),
        stdout=w,
        stderr=w,
        cwd=tx.root,
    )
    os.close(w)
    if first_line:
        with os.fdopen(r, "rb") as f:
            assert f.readline()
    else:
        os.close(r)
    return proc.wait(timeout=120)


@pytest.mark.parametrize("first_line", [False, True], ids=["closed", "head-1"])
def test_install_into_a_closed_pipe_commits(tx, first_line) -> None:
    # The sleep lets the reader go away while progress lines are still to come.
    code = _run_into_closed_pipe(
        tx,
        "install",
        "multitool==1.0",
        *tx.index,
        failpoints="step.install-env.created=sleep:0.5",
        first_line=first_line,
    )
    assert code == OK
    assert tx.shim("mt-a") == "mt-a 1.0"
    (view,) = load(tx.journal)
    assert view.state == "done"
    tx.assert_clean()


def test_a_failing_install_into_a_closed_pipe_is_fully_undone(tx) -> None:
    code = _run_into_closed_pipe(
        tx,
        "install",
        "multitool==1.0",
        *tx.index,
        failpoints="step.copy-shims.copied#2=error:EIO",
        first_line=True,
    )
    assert code == FAILED
    (view,) = load(tx.journal)
    assert view.state == "reverted"
    assert list(tx.bin.iterdir()) == [] and tx.envs("multitool") == []
    tx.assert_clean()


def test_list_json_into_a_closed_pipe_is_no_traceback(txdemo1) -> None:
    tx = txdemo1
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run(
        [sys.executable, "-m", "txtool", "list", "--json"],
        env=tx.environ(),
        stdout=w,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tx.root,
        timeout=60,
    )
    os.close(w)
    assert proc.returncode == OK
    assert proc.stderr == ""  # no BrokenPipeError, no "Exception ignored"


def test_enospc_on_the_cleaned_up_record_is_a_warning(txdemo1) -> None:
    tx = txdemo1
    proc = tx(
        "upgrade", "txdemo@latest", "--json", failpoints="journal.before.cleaned-up=error:ENOSPC"
    )
    (doc,) = json.loads(proc.stdout)  # exactly one document
    assert doc["action"] == "upgraded" and doc["status"] == "done"
    assert "txtool: warning:" in proc.stderr and "No space left" in proc.stderr
    assert "error" not in proc.stderr.replace("txtool: warning:", "")
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert "clean-up pending" in tx("status").stdout
    tx("resume")  # the next command retries it
    assert "all operations complete" in tx("status").stdout
    tx.assert_clean()


def test_several_names_carry_on_past_a_failure(tx) -> None:
    proc = tx(
        "install",
        "txdemo==1.0",
        "multitool==1.0",
        "slowtool==1.0",
        *tx.index,
        failpoints=f"fs.link@{tx.bin}/mt-b=error:EIO",
        expect=FAILED,
    )
    (err,) = tx.error_lines(proc.stderr)
    assert err.startswith("txtool: error: multitool:")
    assert "installed txdemo 1.0" in proc.stdout and "installed slowtool 1.0" in proc.stdout
    assert tx.envs("multitool") == []
    assert {t["name"] for t in tx.list_json()} == {"txdemo", "slowtool"}
    tx.assert_clean()


def test_a_journal_error_mid_batch_is_reported_per_tool(tx) -> None:
    tx.install_first_releases("txdemo", "multitool", "slowtool")
    tx.publish()
    proc = tx(
        "upgrade",
        "--all",
        "--jobs",
        "1",
        failpoints="journal.before.step-done#7=error:EIO",
        expect=INCOMPLETE,
    )
    assert "Traceback" not in proc.stderr and "ExceptionGroup" not in proc.stderr
    (err,) = tx.error_lines(proc.stderr)
    (view,) = load(tx.journal).incomplete()
    assert err.startswith(f"txtool: error: {view.subject}:") and view.id in err
    upgraded = {ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("upgraded")}
    assert upgraded == {"txdemo", "multitool", "slowtool"} - {view.subject}
    tx("upgrade", view.subject)  # re-running is the fix
    tx.assert_clean()


def test_a_failed_automatic_compaction_is_a_warning(tx) -> None:
    import anyio

    from txengine import Engine, Journal, PlaceFile

    # 100 closed operations of another kind (txtool's projection ignores them): the next
    # command compacts the journal on its own.
    filler = tx.root / "filler"
    filler.mkdir()
    with Journal.open(tx.journal) as journal:
        engine = Engine(journal, [PlaceFile])

        async def fill() -> None:
            for i in range(100):
                await engine.run("note", "filler", [PlaceFile(str(filler / f"{i}"), "x")])

        anyio.run(fill)
    proc = tx.install(
        "txdemo==1.0", "--json", failpoints="fs.write@*journal.snapshot*=error:ENOSPC"
    )
    (doc,) = json.loads(proc.stdout)
    assert doc["action"] == "installed"
    (warning,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("txtool: warning:")]
    assert "compacting the journal failed" in warning and "No space left" in warning
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    tx.assert_clean()
    tx("uninstall", "txdemo")  # retried, and done, by the next command
    assert (tx.journal / "journal.snapshot").exists()
