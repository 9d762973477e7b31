"""The promise: a failed, killed or interrupted operation is never reported as success, and
is always recoverable to exactly the old or exactly the new state."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from txtool.cli import FAILED, INCOMPLETE, INTERRUPTED, OK

IN_USE = "being used by another process"


def _op_of(text: str) -> str:
    m = re.search(r"txtool resume (?:--revert )?([0-9a-f]+)", text)
    assert m, text
    return m.group(1)


def test_in_use_shim_fails_and_keeps_old_version(txdemo1) -> None:
    tx = txdemo1
    shim = tx.bin / "txdemo"
    # Copied shims (the Windows path): the upgrade places a new copy of each.
    proc = tx(
        "upgrade",
        "txdemo@latest",
        failpoints=f"fs.link@{shim}=in-use",
        expect=FAILED,
        TXTOOL_SHIMS="copy",
    )
    err = tx.one_error(proc)
    assert str(shim) in err and IN_USE in err
    assert "upgraded" not in proc.stdout
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.tool("txdemo")["version"] == "1.0"
    assert len(tx.envs("txdemo")) == 1  # the new environment was removed again
    tx.assert_clean()


def _incomplete_upgrade(tx) -> str:
    """An upgrade whose shim placing fails and whose undo fails too; return its op id."""
    shim = tx.bin / "txdemo"
    # The stash renames bin/txdemo (source) into the stash: not matched. The undo renames the
    # stashed copy (source under journal/stash/) back: that one fails.
    rules = f"fs.link@{shim}=in-use;fs.rename@*/stash/*=in-use"
    proc = tx("upgrade", "txdemo@latest", failpoints=rules, expect=INCOMPLETE, TXTOOL_SHIMS="copy")
    err = tx.one_error(proc)
    assert IN_USE in err and "incomplete" in err
    assert "upgraded" not in proc.stdout

    listing = tx("list", expect=INCOMPLETE)
    assert "INCOMPLETE upgrade" in listing.stdout
    op = _op_of(listing.stdout)
    assert f"txtool resume {op}" in listing.stdout
    assert f"txtool resume --revert {op}" in listing.stdout
    (entry,) = tx.list_json(expect=INCOMPLETE)
    assert entry["incomplete"]["op"] == op

    status = tx("status", expect=INCOMPLETE)
    assert f"INCOMPLETE upgrade txdemo (op {op})" in status.stdout
    assert f"`txtool resume {op}`" in status.stdout
    assert f"`txtool resume --revert {op}`" in status.stdout
    data = json.loads(tx("status", "--json", expect=INCOMPLETE).stdout)
    assert [o["op"] for o in data["incomplete"]] == [op]
    return op


def test_failed_revert_is_incomplete_and_next_upgrade_resumes_it(txdemo1) -> None:
    tx = txdemo1
    op = _incomplete_upgrade(tx)
    proc = tx("upgrade", "txdemo@latest")
    assert "up to date" not in proc.stdout + proc.stderr
    assert op in proc.stdout + proc.stderr
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert tx.tool("txdemo")["version"] == "2.0"
    assert len(tx.envs("txdemo")) == 2  # 1.0's kept as a generation
    tx.assert_clean()
    # Now, and only now, the tool is up to date.
    assert "up to date" in tx("upgrade", "txdemo@latest").stdout


def test_failed_revert_then_resume_revert_restores_old_version(txdemo1) -> None:
    tx = txdemo1
    (old_env,) = tx.envs("txdemo")
    op = _incomplete_upgrade(tx)
    proc = tx("resume", "--revert", op)
    assert f"reverted upgrade txdemo (op {op})" in proc.stdout
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.envs("txdemo") == [old_env]
    assert tx.tool("txdemo")["version"] == "1.0"
    tx.assert_clean()


def _killed_upgrade(tx) -> None:
    # Copied shims (the Windows path) are moved at each upgrade: killed with the old one gone.
    fail = "step.remove-shims.removed=kill"
    proc = tx(
        "upgrade", "txdemo@latest", failpoints=fail, expect=-signal.SIGKILL, TXTOOL_SHIMS="copy"
    )
    assert "upgraded" not in proc.stdout
    assert not os.path.lexists(tx.bin / "txdemo")
    status = tx("status", expect=INCOMPLETE)
    assert "INCOMPLETE upgrade txdemo" in status.stdout
    tx("verify", expect=FAILED)  # the missing shim is reported, with the fix


def test_sigkill_then_resume_rolls_forward(txdemo1) -> None:
    tx = txdemo1
    _killed_upgrade(tx)
    proc = tx("resume")
    assert "finished upgrade txdemo" in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert len(tx.envs("txdemo")) == 2  # 1.0's kept as a generation
    tx.assert_clean()


def test_sigkill_then_resume_revert_rolls_back(txdemo1) -> None:
    tx = txdemo1
    (old_env,) = tx.envs("txdemo")
    _killed_upgrade(tx)
    proc = tx("resume", "--revert")
    assert "reverted upgrade txdemo" in proc.stdout
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.envs("txdemo") == [old_env]
    tx.assert_clean()


def test_real_failure_new_shim_path_is_a_directory(tx) -> None:
    tx.install("multitool==1.0")
    blocker = tx.bin / "mt-gui"
    blocker.mkdir()
    (blocker / "keep").write_text("not txtool's\n")
    before = tx.digest(journal=False)

    proc = tx("upgrade", "multitool@latest", expect=FAILED)
    err = tx.one_error(proc)
    assert str(blocker) in err and "--force" in err
    assert tx.digest(journal=False) == before
    assert (blocker / "keep").read_text() == "not txtool's\n"
    for name in ("mt-a", "mt-b", "mt-c"):
        assert tx.shim(name) == f"{name} 1.0"
    assert tx.tool("multitool")["version"] == "1.0"
    tx.assert_clean()

    # The fix the message names works on this very command.
    tx("upgrade", "multitool@latest", "--force")
    for name in ("mt-a", "mt-b", "mt-c", "mt-gui"):
        assert tx.shim(name) == f"{name} 2.0"
    tx.assert_clean()


def test_upgrade_all(tx) -> None:
    tx.install_first_releases("txdemo", "multitool", "slowtool")
    tx.publish()
    proc = tx("upgrade", "--all")
    for name in ("txdemo", "multitool", "slowtool"):
        assert f"upgraded {name} 1.0 -> 2.0" in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert tx.shim("mt-gui") == "mt-gui 2.0"
    assert tx.shim("slowtool") == "slowtool 2.0"
    tx.assert_clean()


def test_upgrade_all_carries_on_past_one_failure(tx) -> None:
    tx.install_first_releases("txdemo", "multitool", "slowtool")
    tx.publish()
    shim = tx.bin / "slowtool"
    fail = f"fs.link@{shim}=in-use"  # copied shims: each upgrade places new ones
    proc = tx("upgrade", "--all", failpoints=fail, expect=FAILED, TXTOOL_SHIMS="copy")
    err = tx.one_error(proc)
    assert err.startswith("txtool: error: slowtool:") and IN_USE in err
    assert "upgraded txdemo 1.0 -> 2.0" in proc.stdout
    assert "upgraded multitool 1.0 -> 2.0" in proc.stdout
    assert "upgraded slowtool" not in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert tx.shim("mt-a") == "mt-a 2.0"
    assert tx.shim("slowtool") == "slowtool 1.0"
    tx.assert_clean()


def _interrupted_upgrade(tx, reap) -> tuple[Path, str]:
    """SIGINT an upgrade once its new environment exists; return the old env and stderr."""
    (old_env,) = tx.envs("txdemo")
    proc = tx.spawn("upgrade", "txdemo@latest", failpoints="step.install-env.created=sleep:3")
    reap.append(proc)
    tx.wait_for(tx.building, what="the new environment")
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (INCOMPLETE, INTERRUPTED), stderr
    assert "Traceback" not in stderr
    return old_env, stderr


def test_ctrl_c_during_upgrade_is_resumable(txdemo1, reap) -> None:
    tx = txdemo1
    old_env, stderr = _interrupted_upgrade(tx, reap)
    assert tx.error_lines(stderr) and "interrupted" in tx.error_lines(stderr)[0]

    status = tx("status", expect=None)
    if status.returncode == INCOMPLETE:
        assert "INCOMPLETE upgrade txdemo" in status.stdout
        tx("resume")
        assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    else:
        assert status.returncode == OK
        assert tx.envs("txdemo") == [old_env]
        assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    tx.assert_clean()


def test_ctrl_c_then_resume_revert_restores_old_version(txdemo1, reap) -> None:
    tx = txdemo1
    old_env, _ = _interrupted_upgrade(tx, reap)
    tx("resume", "--revert")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.envs("txdemo") == [old_env]
    tx.assert_clean()


def test_uninstall_over_an_interrupted_upgrade_undoes_it_then_uninstalls(txdemo1) -> None:
    tx = txdemo1
    _killed_upgrade(tx)
    op = _op_of(tx("status", expect=INCOMPLETE).stdout)
    proc = tx("uninstall", "txdemo")
    assert f"undid the interrupted upgrade of txdemo (op {op})" in proc.stderr
    assert "uninstalled txdemo 1.0" in proc.stdout
    assert tx.list_json() == [] and list(tx.bin.iterdir()) == [] and tx.envs("txdemo") == []
    tx.assert_clean()


def test_install_over_an_interrupted_upgrade_finishes_it_first(txdemo1) -> None:
    tx = txdemo1
    _killed_upgrade(tx)
    op = _op_of(tx("status", expect=INCOMPLETE).stdout)
    proc = tx("install", "txdemo", *tx.index)
    assert f"finished the interrupted upgrade of txdemo (op {op})" in proc.stderr
    assert "txdemo 2.0 is already installed" in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()


def test_resume_takes_a_unique_prefix(txdemo1) -> None:
    tx = txdemo1
    _killed_upgrade(tx)
    op = _op_of(tx("status", expect=INCOMPLETE).stdout)
    proc = tx("resume", op[:6])
    assert f"finished upgrade txdemo (op {op})" in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx.assert_clean()


def test_old_shim_in_use_windows_rule_upgrade_succeeds_cleanup_later(txdemo1) -> None:
    # The peer's bug, done right: the old shim is held open (renamed aside, never deleted or
    # overwritten while in use). The upgrade commits; deleting the stash waits for a later run.
    tx = txdemo1
    busy = str(tx.bin / "txdemo")
    proc = tx("upgrade", "txdemo@latest", TXENGINE_FS_BUSY=busy, TXTOOL_SHIMS="copy")
    assert "upgraded txdemo 1.0 -> 2.0" in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    status = tx("status")
    assert "clean-up pending" in status.stdout
    tx("verify")
    assert any((tx.journal / "stash").iterdir())

    tx("resume")  # any mutating command first finishes pending clean-ups
    assert "all operations complete" in tx("status").stdout
    stash = tx.journal / "stash"
    assert not stash.exists() or not any(stash.iterdir())
    assert len(tx.envs("txdemo")) == 2  # 1.0's kept as a generation
    tx.assert_clean()


def test_killed_install_reverts_to_nothing(tx) -> None:
    proc = tx.install("multitool==1.0", failpoints="step.copy-shims.copied#2=kill", expect=None)
    assert proc.returncode == -signal.SIGKILL
    assert len(list(tx.bin.iterdir())) == 2  # two of three shims were placed
    tx("list", expect=INCOMPLETE)
    tx("resume", "--revert")
    assert list(tx.bin.iterdir()) == []
    assert tx.envs("multitool") == []
    assert tx.list_json() == []
    tx.assert_clean()


def test_killed_uninstall_resumes_to_nothing(tx) -> None:
    tx.install("multitool==1.0")
    tx("uninstall", "multitool", failpoints="step.remove-shims.removed#2=kill", expect=-9)
    assert len(list(tx.bin.iterdir())) == 1  # two of three shims were moved aside
    tx("status", expect=INCOMPLETE)
    tx("resume")
    assert list(tx.bin.iterdir()) == []
    assert tx.envs("multitool") == []
    assert tx.list_json() == []
    tx.assert_clean()


def test_copy_shims_with_the_old_copy_in_use(tx) -> None:
    # What Windows gets: copies of the launchers, the old one held open during the upgrade.
    tx.install("txdemo==1.0", TXTOOL_SHIMS="copy")
    shim = tx.bin / "txdemo"
    assert shim.is_file() and not shim.is_symlink()
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    tx("verify")
    tx("upgrade", "txdemo@latest", TXTOOL_SHIMS="copy", TXENGINE_FS_BUSY=str(shim))
    assert shim.is_file() and not shim.is_symlink()
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert "clean-up pending" in tx("status").stdout
    tx("verify")
    tx("uninstall", "txdemo")  # a later run, the old copy no longer in use, finishes clean-up
    assert not os.path.lexists(shim)
    assert tx.list_json() == []
    tx.assert_clean()


def test_install_over_an_interrupted_uninstall_undoes_it(tx) -> None:
    tx.install("multitool==1.0")
    tx("uninstall", "multitool", failpoints="step.remove-shims.removed#2=kill", expect=-9)
    op = _op_of(tx("status", expect=INCOMPLETE).stdout)
    proc = tx("install", "multitool==1.0", *tx.index)
    assert f"undid the interrupted uninstall of multitool (op {op})" in proc.stderr
    assert "multitool 1.0 is already installed" in proc.stdout
    for name in ("mt-a", "mt-b", "mt-c"):
        assert tx.shim(name) == f"{name} 1.0"
    tx.assert_clean()
