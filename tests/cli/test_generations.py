"""Generations (issue 10): kept environments, offline rollback, the stable path, pruning, gc,
and history's from -> to. Every test runs the real CLI against real environments."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from txcli import Tx

from txtool.cli import FAILED, INCOMPLETE, USAGE

V1 = "txdemo 1.0 (helper 1.0)"
V2 = "txdemo 2.0 (helper 2.0)"


@pytest.fixture
def offline(tmp_path: Path, wheelhouse: Path) -> Tx:
    """A home with a wheelhouse of its own, which the test may delete."""
    own = tmp_path / "wheels"
    shutil.copytree(wheelhouse, own)
    return Tx(tmp_path, own)


def _upgraded(tx: Tx) -> Tx:
    tx.install("txdemo==1.0")
    tx("upgrade", "txdemo@latest")
    assert tx.shim() == V2
    return tx


def _history(tx: Tx, *args: str) -> list[dict]:
    return json.loads(tx("history", *args, "--json").stdout)


def test_rollback_is_offline_and_a_rollback_rolls_back(offline: Tx) -> None:
    tx = _upgraded(offline)
    shutil.rmtree(tx.wheelhouse)  # no index of any kind from here on
    out = tx("rollback", "txdemo").stdout
    assert "rolled back txdemo 2.0 -> 1.0 (generation 1)" in out
    assert tx.shim() == V1
    assert tx.tool("txdemo")["version"] == "1.0"
    tx.assert_clean()
    tx("rollback", "txdemo")  # back to the generation current before: 2.0
    assert tx.shim() == V2
    assert tx.tool("txdemo")["generation"] == 2
    tx.assert_clean()
    kinds = [(h["kind"], h["from"], h["to"]) for h in _history(tx, "txdemo")]
    assert kinds == [
        ("install", None, "1.0"),
        ("upgrade", "1.0", "2.0"),
        ("rollback", "2.0", "1.0"),
        ("rollback", "1.0", "2.0"),
    ]


def test_rollback_to_a_version_or_a_generation(tx: Tx) -> None:
    _upgraded(tx)
    tx("install", "--force", "txdemo==1.0", *tx.index)  # generation 3, 1.0 again
    tx("rollback", "txdemo", "--to", "2.0")
    assert tx.shim() == V2
    tx("rollback", "txdemo", "--to", "1")
    assert tx.tool("txdemo")["generation"] == 1 and tx.shim() == V1
    line = tx.one_error(tx("rollback", "txdemo", "--to", "9", expect=USAGE))
    assert "no generation 9" in line and "history txdemo --generations" in line
    line = tx.one_error(tx("rollback", "txdemo", "--to", "1", expect=USAGE))
    assert "at generation 1 (1.0) already" in line
    tx.assert_clean()


def test_the_stable_path_stays_across_an_upgrade(tx: Tx) -> None:
    tx.install("txdemo==1.0")
    before = tx.tool("txdemo")
    stable = Path(before["stable_path"])
    assert stable == tx.home / "tools" / "txdemo" / "current"
    shim = tx.bin / "txdemo"
    assert os.readlink(shim) == str(stable / "bin" / "txdemo")
    link_inode = os.lstat(shim).st_ino
    python = stable / "bin" / "python"
    code = "import txdemo; print(txdemo.VERSION)"
    assert subprocess.run([python, "-c", code], capture_output=True, text=True).stdout == "1.0\n"
    tx("upgrade", "txdemo@latest")
    after = tx.tool("txdemo")
    assert after["stable_path"] == before["stable_path"]
    assert after["environment"] != before["environment"]  # a new generation beside the old
    # One rename of the stable path switched the executable: the shim was not replaced.
    assert os.lstat(shim).st_ino == link_inode
    assert subprocess.run([python, "-c", code], capture_output=True, text=True).stdout == "2.0\n"
    assert tx.shim() == V2
    assert [Path(e) for e in (before["environment"], after["environment"])] == sorted(
        tx.envs("txdemo"), key=lambda p: p != Path(before["environment"])
    )


def test_rollback_all_undoes_the_last_upgrade_all(tx: Tx) -> None:
    tx.install_first_releases("txdemo", "multitool", "slowtool")
    tx.publish()
    tx("upgrade", "--all")
    assert tx.shim("mt-gui") == "mt-gui 2.0"  # 2.0 adds an executable
    out = tx("rollback", "--all").stdout
    for name in ("txdemo", "multitool", "slowtool"):
        assert f"rolled back {name} 2.0 -> 1.0" in out
        assert tx.tool(name)["version"] == "1.0"
    assert tx.shim() == V1 and tx.shim("mt-a") == "mt-a 1.0"
    assert not os.path.lexists(tx.bin / "mt-gui")  # 1.0 has none: its shim is gone
    tx.assert_clean()
    # The batch is undone: a second --all has no upgrade --all left to undo.
    assert "no `upgrade --all`" in tx.one_error(tx("rollback", "--all", expect=USAGE))


def test_keep_zero_prunes_at_upgrade_and_offers_the_pinned_reinstall(tx: Tx) -> None:
    tx.install("txdemo==1.0")
    (old_env,) = tx.envs("txdemo")
    tx("upgrade", "txdemo@latest", TXTOOL_KEEP_GENERATIONS="0")
    (new_env,) = tx.envs("txdemo")  # today's behaviour: the old environment is gone
    assert new_env != old_env
    line = tx.one_error(tx("rollback", "txdemo", expect=USAGE))
    assert "generation 1 (1.0) was pruned" in line
    assert "txtool install --force 'txdemo==1.0' --with 'txdemo-helper==1.0'" in line
    tx.assert_clean()


def test_keep_one_prunes_all_but_the_previous(tx: Tx) -> None:
    _upgraded(tx)
    tx("install", "--force", "txdemo==1.0", *tx.index, TXTOOL_KEEP_GENERATIONS="1")
    gens = json.loads(tx("history", "txdemo", "--generations", "--json").stdout)
    assert [(g["generation"], g["version"], g["current"]) for g in gens] == [
        (2, "2.0", False),
        (3, "1.0", True),
    ]
    assert all(g["size"] > 0 for g in gens)
    assert sorted(map(str, tx.envs("txdemo"))) == sorted(g["environment"] for g in gens)
    tx("rollback", "txdemo")
    assert tx.shim() == V2
    tx.assert_clean()


def test_gc_removes_generations_past_the_window(tx: Tx) -> None:
    _upgraded(tx)
    tx("install", "--force", "txdemo==1.0", *tx.index)
    assert len(tx.tool("txdemo")["generations"]) == 3
    assert "no generation to remove" in tx("gc").stdout  # the default window keeps 2 more
    assert "removed 1 old generation" in tx("gc", "--keep", "1").stdout
    entry = tx.tool("txdemo")
    assert [g["generation"] for g in entry["generations"]] == [2, 3]
    assert all(g["size"] > 0 for g in entry["generations"])
    tx("gc", "txdemo", TXTOOL_KEEP_GENERATIONS="0")
    assert [Path(entry["environment"])] == tx.envs("txdemo")
    assert tx.shim() == V1
    tx.assert_clean()
    assert [h["kind"] for h in _history(tx, "txdemo")][-2:] == ["gc", "gc"]


def test_a_noop_upgrade_is_not_history(tx: Tx) -> None:
    _upgraded(tx)
    assert "up to date" in tx("upgrade", "txdemo").stdout
    assert [h["kind"] for h in _history(tx)] == ["install", "upgrade"]
    text = tx("history", "txdemo").stdout.splitlines()
    assert len(text) == 2 and "1.0 (gen 1) -> 2.0 (gen 2)" in text[1]


def test_rollback_to_a_damaged_generation_changes_nothing(tx: Tx) -> None:
    _upgraded(tx)
    old = next(g for g in tx.tool("txdemo")["generations"] if g["generation"] == 1)
    shutil.rmtree(Path(old["environment"]) / "lib")
    before = tx.digest(journal=False)
    line = tx.one_error(tx("rollback", "txdemo", expect=FAILED))
    assert "generation 1 of txdemo" in line and "no longer has txdemo 1.0" in line
    assert tx.digest(journal=False) == before
    assert tx.shim() == V2
    tx("status")


def test_rollback_with_copied_shims(offline: Tx) -> None:
    """The Windows path: shims are copies of the generation's launcher, replaced at each
    switch (the in-use rename-aside is the campaign's, tests/campaign/test_campaign_windows)."""
    tx = offline
    copy = {"TXTOOL_SHIMS": "copy"}
    tx.install("txdemo==1.0", **copy)
    tx("upgrade", "txdemo@latest", **copy)
    shutil.rmtree(tx.wheelhouse)
    tx("rollback", "txdemo", **copy)
    shim = tx.bin / "txdemo"
    assert not shim.is_symlink() and tx.shim() == V1
    tx.assert_clean()
    tx("rollback", "txdemo", **copy)
    assert not shim.is_symlink() and tx.shim() == V2
    tx.assert_clean()


def test_a_killed_rollback_resumes_or_reverts(tx: Tx) -> None:
    _upgraded(tx)
    tx("rollback", "txdemo", failpoints="step.switch-current.switched=kill", expect=-9)
    assert "INCOMPLETE rollback txdemo" in tx("status", expect=INCOMPLETE).stdout
    tx("resume", "--revert")
    assert tx.shim() == V2
    tx.assert_clean()
    tx("rollback", "txdemo", failpoints="step.switch-current.switched=kill", expect=-9)
    tx("resume")
    assert tx.shim() == V1
    tx.assert_clean()


def test_bad_input_changes_nothing(tx: Tx) -> None:
    tx.install("txdemo==1.0")
    before = tx.digest()
    assert "not installed" in tx.one_error(tx("rollback", "other", expect=USAGE))
    line = tx.one_error(tx("rollback", "txdemo", expect=USAGE))
    assert "no earlier generation" in line
    assert "--all" in tx.one_error(tx("rollback", expect=USAGE))
    line = tx.one_error(tx("upgrade", "txdemo", expect=USAGE, TXTOOL_KEEP_GENERATIONS="two"))
    assert "TXTOOL_KEEP_GENERATIONS" in line
    assert "--generations" in tx.one_error(tx("history", "--generations", expect=USAGE))
    assert tx.digest() == before


GOLDEN = Path(__file__).parents[2] / "journal-schema" / "golden" / "txtool-generations"


@pytest.mark.parametrize("kind", ["log", "compacted"])
def test_golden_generation_journals_project_the_same_tools(tmp_path: Path, kind: str) -> None:
    """Journals the first release with generations wrote (make_golden.py there) project to
    the same tools, generations, stable paths and shim targets, as written and compacted."""
    import importlib.util

    from txtool.locations import Locations

    # The golden script's own summary: the fields it recorded are the fields compared.
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    home = tmp_path / "home"
    shutil.copytree(GOLDEN / kind, home / "journal")
    got = maker.summary(Locations(home, tmp_path / "bin"))
    assert got == json.loads((GOLDEN / "expected.json").read_text())[kind]


def test_uninstall_removes_every_generation_and_the_stable_path(tx: Tx) -> None:
    _upgraded(tx)
    stable = Path(tx.tool("txdemo")["stable_path"])
    assert len(tx.envs("txdemo")) == 2
    tx("uninstall", "txdemo")
    assert not os.path.lexists(stable) and not (tx.home / "tools" / "txdemo").exists()
    assert list(tx.bin.iterdir()) == [] and tx.list_json() == []
    tx.assert_clean()


def test_a_home_that_refuses_links_has_no_stable_path(tx: Tx) -> None:
    """Links refused under the home (a FAT or network mount, Windows without the privilege):
    the tool works without a stable path, its shims expose the launchers; a later upgrade
    where links work makes one."""
    refused = f"fs.symlink@{tx.home}/tools/*=error:EPERM"
    tx.install("txdemo==1.0", failpoints=refused)
    entry = tx.tool("txdemo")
    assert entry["stable_path"] is None
    assert not os.path.lexists(tx.home / "tools" / "txdemo" / "current")
    assert os.readlink(tx.bin / "txdemo") == entry["environment"] + "/bin/txdemo"
    assert tx.shim() == V1
    tx.assert_clean()
    tx("upgrade", "txdemo@latest")
    entry = tx.tool("txdemo")
    assert os.readlink(tx.bin / "txdemo") == entry["stable_path"] + "/bin/txdemo"
    assert tx.shim() == V2
    tx.assert_clean()
    tx("rollback", "txdemo")
    assert tx.shim() == V1
    tx.assert_clean()


def test_rollback_keeps_a_shim_that_is_no_longer_txtools(tx: Tx) -> None:
    """A kept link (not moved by the switch) replaced by the user's own file is checked at
    the switch as strictly as a moved one: refused and undone, unless --force."""
    _upgraded(tx)
    shim = tx.bin / "txdemo"
    shim.unlink()
    shim.write_text("#!/bin/sh\necho mine\n")
    shim.chmod(0o755)
    line = tx.one_error(tx("rollback", "txdemo", expect=FAILED))
    assert "no longer txtool's" in line and "--force" in line
    assert tx.shim() == "mine" and tx.tool("txdemo")["version"] == "2.0"
    tx("rollback", "txdemo", "--force")
    assert tx.shim() == V1
    tx.assert_clean()


def test_an_interrupted_rollback_is_settled_by_rerunning(tx: Tx) -> None:
    _upgraded(tx)
    tx("rollback", "txdemo", failpoints="step.switch-current.switched=kill", expect=-9)
    line = tx.one_error(tx("rollback", "txdemo", expect=INCOMPLETE))
    assert "incomplete rollback" in line and "txtool resume" in line
    proc = tx("upgrade", "txdemo")  # undoes the rollback, then finds nothing newer
    assert "undid the interrupted rollback of txdemo" in proc.stderr
    assert tx.shim() == V2
    tx.assert_clean()
