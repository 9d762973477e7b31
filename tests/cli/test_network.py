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


def test_name_at_version_then_at_latest_from_pypi(tmp_path: Path) -> None:
    import json

    assert _txtool(tmp_path, "install", "ruff@0.9.2").returncode == 0
    (entry,) = json.loads(_txtool(tmp_path, "list", "--json").stdout)
    assert entry["version"] == "0.9.2" and entry["requirement"] == "ruff==0.9.2"
    upgrade = _txtool(tmp_path, "upgrade", "ruff@latest")
    assert upgrade.returncode == 0 and "upgraded ruff 0.9.2 -> " in upgrade.stdout
    assert _txtool(tmp_path, "verify").returncode == 0


def test_a_vcs_url_and_a_direct_url_from_the_real_index(tmp_path: Path) -> None:
    import json
    import urllib.request

    vcs = _txtool(tmp_path, "install", "git+https://github.com/pyjokes/pyjokes")
    assert vcs.returncode == 0, vcs.stderr
    (entry,) = json.loads(_txtool(tmp_path, "list", "--json").stdout)
    assert entry["name"] == "pyjokes" and entry["source"]["kind"] == "vcs"
    assert _txtool(tmp_path, "uninstall", "pyjokes").returncode == 0

    with urllib.request.urlopen("https://pypi.org/pypi/pyjokes/0.8.3/json", timeout=30) as r:
        urls = json.load(r)["urls"]
    wheel = next(u["url"] for u in urls if u["filename"].endswith(".whl"))
    direct = _txtool(tmp_path, "install", f"pyjokes @ {wheel}")
    assert direct.returncode == 0, direct.stderr
    assert json.loads(_txtool(tmp_path, "list", "--json").stdout)[0]["source"] == {
        "kind": "url",
        "location": wheel,
        "editable": False,
    }
    assert _txtool(tmp_path, "upgrade", "pyjokes").returncode == 0  # fetched again
    assert _txtool(tmp_path, "verify").returncode == 0


def test_a_pin_holds_until_latest_lifts_it(tmp_path: Path) -> None:
    import json

    assert _txtool(tmp_path, "install", "ruff==0.9.2").returncode == 0
    upgrade = _txtool(tmp_path, "upgrade", "ruff")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "ruff is up to date (0.9.2) within its pin ruff==0.9.2" in upgrade.stdout
    assert "`txtool upgrade ruff@latest`" in upgrade.stdout
    assert "ruff==0.9.2" in _txtool(tmp_path, "list").stdout
    lifted = _txtool(tmp_path, "upgrade", "ruff@latest")
    assert lifted.returncode == 0 and "upgraded ruff 0.9.2 -> " in lifted.stdout
    (entry,) = json.loads(_txtool(tmp_path, "list", "--json").stdout)
    assert entry["spec"] == "ruff" and entry["version"] != "0.9.2"
    assert _txtool(tmp_path, "verify").returncode == 0


def test_httpie_and_black_with_its_extra_and_a_plugin(tmp_path: Path) -> None:
    import json

    httpie = _txtool(tmp_path, "install", "httpie")
    assert httpie.returncode == 0, httpie.stderr
    assert (tmp_path / "bin" / "http").exists() and (tmp_path / "bin" / "https").exists()

    black = _txtool(tmp_path, "install", "black[d]<26", "--with", "tomli")
    assert black.returncode == 0, black.stderr
    assert (tmp_path / "bin" / "blackd").exists()
    upgrade = _txtool(tmp_path, "upgrade", "black<27")  # a new spec: [d] and tomli kept
    assert upgrade.returncode == 0, upgrade.stderr
    entry = next(
        e for e in json.loads(_txtool(tmp_path, "list", "--json").stdout) if e["name"] == "black"
    )
    assert (entry["spec"], entry["plugins"]) == ("black[d]<27", ["tomli"])
    assert any(p.startswith("aiohttp==") for p in entry["pins"])  # the extra's dependency
    assert _txtool(tmp_path, "reinstall", "--all").returncode == 0
    assert _txtool(tmp_path, "verify").returncode == 0
