"""Against the real package index: opt-in (``--run-network`` or TXTOOL_NETWORK_TESTS=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network


def _txtool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TXENGINE_")}
    env |= {"TXTOOL_HOME": str(tmp_path / "home"), "TXTOOL_BIN_DIR": str(tmp_path / "bin")}
    return subprocess.run(
        [sys.executable, "-m", "txtool", *args], env=env, capture_output=True, text=True
    )


def test_install_upgrade_uninstall_ruff_from_pypi(tmp_path: Path) -> None:
    # ruff ships its executable as a wheel data script, not an entry point.
    assert _txtool(tmp_path, "install", "ruff").returncode == 0
    shim = tmp_path / "bin" / "ruff"
    out = subprocess.run([str(shim), "--version"], capture_output=True, text=True).stdout
    assert out.startswith("ruff ")
    upgrade = _txtool(tmp_path, "upgrade", "ruff")
    assert upgrade.returncode == 0 and "up to date" in upgrade.stdout
    assert _txtool(tmp_path, "verify").returncode == 0
    assert _txtool(tmp_path, "uninstall", "ruff").returncode == 0
    assert not os.path.lexists(shim)
