"""Install, upgrade, uninstall, list and verify: the happy paths, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from txtool import __version__
from txtool.cli import OK, USAGE


def test_install_list_verify(tx) -> None:
    proc = tx.install("txdemo==1.0")
    assert "installed txdemo 1.0: txdemo" in proc.stdout
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"

    (entry,) = tx.list_json()
    assert entry["name"] == "txdemo"
    assert entry["version"] == "1.0"
    assert entry["incomplete"] is None
    env = Path(entry["environment"])
    assert env.is_dir() and env.parent == tx.home / "tools" / "txdemo"
    assert entry["executables"] == {"txdemo": str(tx.bin / "txdemo")}
    assert os.readlink(tx.bin / "txdemo") == entry["stable_path"] + "/bin/txdemo"
    assert os.readlink(entry["stable_path"]) == env.name
    assert sorted(entry["pins"]) == ["txdemo-helper==1.0", "txdemo==1.0"]

    assert "txdemo 1.0" in tx("list").stdout
    assert "disk matches the journal" in tx("verify").stdout
    tx("status")


def test_version(tx) -> None:
    proc = tx("--version")
    assert proc.stdout.strip() == f"txtool {__version__}"


def test_version_imports_neither_engine_nor_rich(tx) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "txtool", "--version"],
        env=tx.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == OK
    imported = [ln.rsplit("|", 1)[-1].strip() for ln in proc.stderr.splitlines() if "|" in ln]
    assert imported, proc.stderr  # -X importtime really reported
    assert not [m for m in imported if m.split(".")[0] in ("txengine", "rich")], imported


def test_upgrade_changes_dependency_and_leaves_nothing_behind(txdemo1) -> None:
    tx = txdemo1
    (old_env,) = tx.envs("txdemo")
    proc = tx("upgrade", "txdemo@latest")
    assert "upgraded txdemo 1.0 -> 2.0" in proc.stdout
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"

    entry = tx.tool("txdemo")
    assert entry["version"] == "2.0"
    assert "txdemo-helper==2.0" in entry["pins"]
    new_env = Path(entry["environment"])
    assert old_env.exists()  # kept as generation 1, for rollback
    # No stray environment, no temp files, no stashed copies left beside the shims.
    assert sorted(tx.envs("txdemo")) == sorted([old_env, new_env])
    assert sorted(os.listdir(tx.bin)) == ["txdemo"]
    assert os.readlink(tx.bin / "txdemo") == entry["stable_path"] + "/bin/txdemo"
    assert os.readlink(entry["stable_path"]) == new_env.name
    stash = tx.journal / "stash"
    assert not stash.exists() or not any(stash.iterdir())
    tx.assert_clean()

    before = tx.digest(journal=False)
    again = tx("upgrade", "txdemo@latest")
    assert "txdemo is up to date (2.0)" in again.stdout
    assert tx.digest(journal=False) == before


def test_upgrade_reuses_recorded_index_options(txdemo1) -> None:
    # The upgrade names no --find-links: only the recorded ones can find txdemo 2.0, and the
    # recorded --no-index keeps it offline (an index lookup would fail or hang here).
    tx = txdemo1
    tx("upgrade", "txdemo@latest", UV_OFFLINE="1", PIP_NO_INDEX="1")
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    options = tx.tool("txdemo")["options"]["index"]
    assert options == {"index_url": None, "find_links": [str(tx.wheelhouse)], "no_index": True}


def test_uninstall(txdemo1) -> None:
    tx = txdemo1
    (env,) = tx.envs("txdemo")
    proc = tx("uninstall", "txdemo")
    assert "uninstalled txdemo 1.0" in proc.stdout
    assert not os.path.lexists(tx.bin / "txdemo")
    assert not env.exists()
    assert not (tx.home / "tools" / "txdemo").exists()
    assert tx.list_json() == []
    assert "no tools installed" in tx("list").stdout
    tx.assert_clean()

    before = tx.digest()
    again = tx("uninstall", "txdemo", expect=USAGE)
    assert "not installed" in tx.one_error(again)
    assert tx.digest() == before


def test_multitool_console_and_gui_scripts(tx) -> None:
    tx.install("multitool==1.0")
    for name in ("mt-a", "mt-b", "mt-c"):
        assert tx.shim(name) == f"{name} 1.0"
    assert not os.path.lexists(tx.bin / "mt-gui")

    tx("upgrade", "multitool@latest")
    assert sorted(os.listdir(tx.bin)) == ["mt-a", "mt-b", "mt-c", "mt-gui"]
    for name in ("mt-a", "mt-b", "mt-c", "mt-gui"):
        assert tx.shim(name) == f"{name} 2.0"
    assert sorted(tx.tool("multitool")["executables"]) == ["mt-a", "mt-b", "mt-c", "mt-gui"]
    tx.assert_clean()


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_backends_install_and_upgrade(tx, backend: str) -> None:
    tx.install("txdemo==1.0", "--backend", backend)
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.tool("txdemo")["options"]["backend"] == backend
    tx("upgrade", "txdemo@latest")  # the recorded backend is used again
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    entry = tx.tool("txdemo")
    assert entry["options"]["backend"] == backend
    assert "txdemo-helper==2.0" in entry["pins"]
    tx.assert_clean()


def test_dry_run_changes_nothing_on_a_fresh_home(tx) -> None:
    before = tx.digest()
    proc = tx("install", "txdemo==1.0", *tx.index, "--dry-run")
    assert "install txdemo:" in proc.stdout and "resolve txdemo==1.0" in proc.stdout
    assert tx.digest() == before
    assert not tx.home.exists() and not tx.bin.exists()


def test_dry_run_upgrade_and_uninstall_change_nothing(txdemo1) -> None:
    tx = txdemo1
    before = tx.digest()
    proc = tx("upgrade", "txdemo@latest", "--dry-run")
    assert "upgrade txdemo:" in proc.stdout and "switch txdemo to" in proc.stdout
    proc = tx("uninstall", "txdemo", "--dry-run")
    assert "uninstall txdemo:" in proc.stdout and "remove old shims" in proc.stdout
    proc = tx("install", "multitool", *tx.index, "--dry-run", "--json")
    assert '"kind": "install"' in proc.stdout
    assert tx.digest() == before
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_json_outputs_are_one_document_each(tx) -> None:
    import json

    def doc(*argv: str, expect: int = OK):
        return json.loads(tx(*argv, "--json", expect=expect).stdout)

    (installed,) = doc("install", "txdemo==1.0", *tx.index)
    assert installed["action"] == "installed" and installed["version"] == "1.0"
    tx("upgrade", "txdemo@latest", failpoints="step.switch-current.switched=kill", expect=-9)
    (pending,) = doc("status", expect=3)["incomplete"]
    (resumed,) = doc("resume")
    assert resumed["op"] == pending["op"] and resumed["state"] in ("committed", "done")
    (upgraded,) = doc("upgrade", "txdemo@latest")
    assert upgraded["action"] == "up-to-date" and upgraded["version"] == "2.0"
    assert doc("verify") == {"ok": True, "problems": []}
    assert [h["kind"] for h in doc("history")] == ["install", "upgrade"]  # no-op: not history
    (removed,) = doc("uninstall", "txdemo")
    assert removed["action"] == "uninstalled" and removed["old_version"] == "2.0"
    assert doc("list") == []
