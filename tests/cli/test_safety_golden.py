"""Journals written by txtool 0.1.0, each SIGKILLed inside a step, are resumed and reverted by
today's code to a working tool or no tool (issue 8.2). The goldens, and the script that wrote
them with the 0.1.0 code, are in journal-schema/golden/txtool-0.1.0/."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from txcli import Tx

from txtool.wheelhouse import build_test_wheelhouse

GOLDEN = Path(__file__).parents[2] / "journal-schema" / "golden" / "txtool-0.1.0"
ROOT = Path("/tmp/txtool-golden-0.1.0")  # the root the journals' absolute paths name
SCENARIOS = json.loads((GOLDEN / "scenarios.json").read_text())

# What each direction leaves: the version the shim runs, or None for no tool.
AFTER = {
    "resume": {"upgrade": "2.0", "install": "1.0", "uninstall": None},
    "revert": {"upgrade": "1.0", "install": None, "uninstall": "1.0"},
}


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    ROOT.mkdir(mode=0o755, exist_ok=True)
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker or checkout may run these too
        if not (ROOT / "wheelhouse").is_dir():
            build_test_wheelhouse(ROOT / "wheelhouse.new")
            os.rename(ROOT / "wheelhouse.new", ROOT / "wheelhouse")
        yield ROOT


def _relocate(home: Path) -> None:
    """Point the environments' interpreter at this machine's base Python."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    for cfg in home.glob("tools/*/*/pyvenv.cfg"):
        lines = cfg.read_text().splitlines()
        if not any(
            ln.startswith("version_info")
            and f"= {sys.version_info[0]}.{sys.version_info[1]}." in ln
            for ln in lines
        ):
            pytest.skip("the golden environments were made with another Python version")
        cfg.write_text(
            "\n".join(f"home = {base.parent}" if ln.startswith("home =") else ln for ln in lines)
            + "\n"
        )
        for link in cfg.parent.glob("bin/python*"):
            if link.is_symlink() and not link.exists():
                link.unlink()
                link.symlink_to(base)


def _unpack(root: Path, name: str) -> Tx:
    scenario = root / name
    shutil.rmtree(scenario, ignore_errors=True)
    scenario.mkdir(mode=0o755)
    with tarfile.open(GOLDEN / f"{name}.tar.gz") as tar:
        tar.extractall(scenario, filter="tar")
    _relocate(scenario / "home")
    return Tx(scenario, root / "wheelhouse")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_0_1_0_journal_resumes_and_reverts(root: Path, name: str) -> None:
    kind = SCENARIOS[name]["killed"][0]
    for direction in ("resume", "revert"):
        tx = _unpack(root, name)
        assert tx("status", expect=3).returncode == 3  # incomplete, as 0.1.0 left it
        tx("resume", *(["--revert"] if direction == "revert" else []))
        version = AFTER[direction][kind]
        if version is None:
            assert tx.list_json() == []
            assert not os.path.lexists(tx.bin / "txdemo")
            assert tx.envs("txdemo") == []
        else:
            assert tx.shim() == f"txdemo {version} (helper {version})"
            assert tx.tool("txdemo")["version"] == version
            assert len(tx.envs("txdemo")) == 1
        tx.assert_clean()
    shutil.rmtree(root / name)
