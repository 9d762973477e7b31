"""What the user asked for is kept: a recorded pin holds on ``upgrade`` until a new spec or
``@latest`` lifts it, recorded extras hold over a new spec and ``install --force``,
``reinstall`` rebuilds from the whole record, ``verify`` checks the extras' distributions,
and a change of interpreter is reported as such."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from txcli import Tx

from txtool.cli import FAILED


def _site_packages(env: Path) -> Path:
    (site,) = env.glob("lib/python*/site-packages")
    return site


def test_pinned_upgrade_stays_pinned_and_says_how_to_lift_it(tx: Tx) -> None:
    tx.install("fancy==1.0")
    assert "fancy 1.0  fancy==1.0  (fancy)" in tx("list").stdout
    for args in (["fancy"], ["--all"]):
        out = tx("upgrade", *args).stdout
        assert "fancy is up to date (1.0) within its pin fancy==1.0" in out, out
        assert "`txtool upgrade fancy@latest`" in out
    assert tx.tool("fancy")["version"] == "1.0"
    assert tx.shim("fancy") == "fancy 1.0 (plain)"
    data = json.loads(tx("upgrade", "fancy", "--json").stdout)
    assert data[0]["action"] == "up-to-date" and data[0]["pin"] == "fancy==1.0"

    assert "upgraded fancy 1.0 -> 3.0" in tx("upgrade", "fancy@latest").stdout
    assert tx.tool("fancy")["spec"] == "fancy"  # the pin is lifted for good
    out = tx("upgrade", "fancy").stdout
    assert out.strip() == "fancy is up to date (3.0)"
    tx.assert_clean()


def test_range_pin_holds_until_a_new_spec_replaces_it(tx: Tx) -> None:
    tx.install("fancy<3")
    assert tx.tool("fancy")["version"] == "2.0"
    assert "within its pin fancy<3" in tx("upgrade", "--all").stdout
    assert tx.tool("fancy")["version"] == "2.0"
    assert "upgraded fancy 2.0 -> 3.0" in tx("upgrade", "fancy<4").stdout
    entry = tx.tool("fancy")
    assert entry["spec"] == "fancy<4" and entry["version"] == "3.0"
    assert "within its pin fancy<4" in tx("upgrade", "fancy").stdout
    tx.assert_clean()


def test_extras_are_kept_by_a_new_spec_and_by_force(tx: Tx) -> None:
    tx.install("fancy[d]==1.0")
    assert tx.shim("fancy") == "fancy 1.0 (fancy_extra)"

    tx("upgrade", "fancy<3")  # a new spec without extras: [d] stays
    entry = tx.tool("fancy")
    assert (entry["spec"], entry["extras"], entry["version"]) == ("fancy[d]<3", ["d"], "2.0")
    assert tx.shim("fancy") == "fancy 2.0 (fancy_extra)"

    tx.install("fancy", "--force")  # the spec given replaces the pin, not the extras
    entry = tx.tool("fancy")
    assert (entry["spec"], entry["version"]) == ("fancy[d]", "3.0")
    assert tx.shim("fancy") == "fancy 3.0 (fancy_extra)"
    tx.assert_clean()


def test_verify_flags_a_missing_extra_and_reinstall_repairs_it(tx: Tx) -> None:
    tx.install("fancy[d]")
    (env,) = tx.envs("fancy")
    site = _site_packages(env)
    shutil.rmtree(site / "fancy_extra")
    (dist_info,) = site.glob("fancy_extra-*.dist-info")
    shutil.rmtree(dist_info)

    problems = tx("verify", expect=FAILED).stdout.splitlines()
    assert problems == [
        "fancy: fancy-extra (of its extra [d]) is missing from its environment;"
        " fix: txtool reinstall fancy"
    ]
    assert "reinstalled fancy 3.0" in tx("reinstall", "fancy").stdout
    assert tx.shim("fancy") == "fancy 3.0 (fancy_extra)"
    assert tx.envs("fancy") != [env]
    tx.assert_clean()


def test_reinstall_rebuilds_from_the_whole_record(tx: Tx) -> None:
    tx.install(
        "fancy[d]<3",
        "--with",
        "fancy-plugin==1.0",
        "--with-executables-from",
        "fancy-extra",
        "--backend",
        "pip",
    )
    before = tx.tool("fancy")
    (old_env,) = tx.envs("fancy")
    assert tx.shim("fancy-extra-cli") == "fancy-extra-cli 1.0"

    plan = json.loads(tx("reinstall", "--all", "--dry-run", "--json").stdout)
    assert [p["kind"] for p in plan] == ["reinstall"]
    assert "resolve fancy[d]<3 --with fancy-plugin==1.0" in plan[0]["steps"][0]["description"]

    out = tx("reinstall", "fancy").stdout
    assert out.strip() == "reinstalled fancy 2.0"
    after = tx.tool("fancy")
    for key in ("spec", "extras", "plugins", "executables_from", "pins", "options", "python"):
        assert after[key] == before[key], key
    assert after["options"]["backend"] == "pip"
    (new_env,) = tx.envs("fancy")
    assert new_env != old_env  # built beside the old one, switched at commit
    assert tx.shim("fancy") == "fancy 2.0 (fancy_extra fancy_plugin)"
    assert tx.shim("fancy-extra-cli") == "fancy-extra-cli 1.0"
    assert "reinstall" in tx("history", "fancy").stdout
    tx.assert_clean()


def test_bad_reinstall_changes_nothing(tx: Tx) -> None:
    tx.install("fancy")
    before = tx.digest()
    assert "not installed" in tx.one_error(tx("reinstall", "nosuch", expect=2))
    assert "--all" in tx.one_error(tx("reinstall", expect=2))
    assert tx.digest() == before


def test_a_change_of_python_is_reported_as_such(tx: Tx) -> None:
    tx.install("fancy<3")
    # Another interpreter: a link to the same one under another name is enough to change
    # the path the environment is built from.
    base = Path(tx.tool("fancy")["python"])
    other = tx.root / "other-python" / "python3"
    other.parent.mkdir()
    other.symlink_to(base)
    out = tx("upgrade", "fancy", "--python", str(other)).stdout
    assert f"upgraded fancy 2.0: Python {base} -> {other}" in out, out
    assert "within its pin fancy<3" in out
    assert tx.tool("fancy")["python"] == str(other)

    data = json.loads(tx("reinstall", "fancy", "--python", str(base), "--json").stdout)
    assert (data[0]["action"], data[0]["version"]) == ("reinstalled", "2.0")
    assert (data[0]["old_python"], data[0]["python"]) == (str(other), str(base))
    assert tx.tool("fancy")["python"] == str(base)
    tx.assert_clean()


def _version(python: str) -> str:
    code = "import platform; print(platform.python_version())"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def test_python_versions_are_named_when_they_differ(tx: Tx) -> None:
    tx.install("fancy")
    here = _version(tx.tool("fancy")["python"])
    found = {shutil.which(f"python3.{m}") for m in range(8, 16)} | {"/usr/bin/python3"}
    others = sorted(p for p in found if p and Path(p).exists() and _version(p) not in ("", here))
    if not others:
        pytest.skip(f"no interpreter other than Python {here} here")
    out = tx("reinstall", "fancy", "--python", others[0]).stdout
    assert out.strip() == f"reinstalled fancy 3.0: Python {here} -> {_version(others[0])}"
    tx.assert_clean()
