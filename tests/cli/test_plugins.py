"""Plugins in a tool's environment: ``install --with``, ``inject`` / ``uninject`` (journaled
rebuilds of the environment, like an upgrade), kept by upgrade and reinstall; the executables
of dependencies on request (``--with-executables-from``, ``--include-deps``, ``--include-apps``)."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
from txcli import Tx

from txtool.cli import FAILED, INCOMPLETE, USAGE


def test_install_with_a_plugin_and_upgrade_keeps_it(tx: Tx) -> None:
    out = tx.install("fancy<3", "--with", "fancy-plugin==1.0").stdout
    assert out.strip() == "installed fancy 2.0: fancy"  # the plugin has no executables
    assert tx.shim("fancy") == "fancy 2.0 (fancy_plugin)"
    entry = tx.tool("fancy")
    assert entry["plugins"] == ["fancy-plugin==1.0"]
    assert "fancy-plugin==1.0" in entry["pins"]  # resolved together with the tool
    assert "with fancy-plugin==1.0" in tx("list").stdout

    assert "upgraded fancy 2.0 -> 3.0" in tx("upgrade", "fancy@latest").stdout
    assert tx.shim("fancy") == "fancy 3.0 (fancy_plugin)"
    assert tx.tool("fancy")["plugins"] == ["fancy-plugin==1.0"]
    tx.assert_clean()


def test_only_the_tools_own_executables_get_shims(tx: Tx) -> None:
    tx.install("txdemo", "--with", "fancy-extra")  # fancy-extra has an executable
    assert sorted(os.listdir(tx.bin)) == ["txdemo"]
    assert tx.tool("txdemo")["plugins"] == ["fancy-extra"]
    tx.assert_clean()


def test_inject_and_uninject(tx: Tx) -> None:
    tx.install("fancy")
    (old_env,) = tx.envs("fancy")
    dry = tx("inject", "fancy", "fancy-plugin", "--dry-run").stdout
    assert "inject fancy:" in dry and "--with fancy-plugin" in dry
    assert tx.envs("fancy") == [old_env]

    assert tx("inject", "fancy", "fancy-plugin").stdout.strip() == "injected fancy 3.0"
    assert tx.shim("fancy") == "fancy 3.0 (fancy_plugin)"
    (env,) = tx.envs("fancy")
    assert env != old_env  # a new environment beside the old one, switched at commit
    assert tx.tool("fancy")["plugins"] == ["fancy-plugin"]
    out = tx("inject", "fancy", "fancy-plugin").stdout
    assert "already has these plugins" in out
    # Naming a plugin again with a new spec replaces its spec.
    tx("inject", "fancy", "fancy-plugin==1.0")
    entry = tx.tool("fancy")
    assert entry["plugins"] == ["fancy-plugin==1.0"] and "fancy-plugin==1.0" in entry["pins"]
    # Upgrade and reinstall keep it.
    tx("reinstall", "fancy")
    tx("upgrade", "fancy")
    assert tx.tool("fancy")["plugins"] == ["fancy-plugin==1.0"]

    assert tx("uninject", "fancy", "fancy_plugin").stdout.strip() == "uninjected fancy 3.0"
    assert tx.shim("fancy") == "fancy 3.0 (plain)"
    assert tx.tool("fancy")["plugins"] == []
    kinds = [ln.split()[3] for ln in tx("history", "fancy").stdout.splitlines()]
    assert kinds[-5:] == ["inject", "inject", "reinstall", "upgrade", "uninject"]
    tx.assert_clean()


def test_bad_plugin_commands_change_nothing(tx: Tx) -> None:
    tx.install("fancy")
    before, files = tx.digest(), tx.digest(journal=False)
    cases = [
        (("uninject", "fancy", "fancy-plugin"), "fancy-plugin is not injected into fancy"),
        (("inject", "nosuch", "fancy-plugin"), "nosuch is not installed"),
        (("inject", "fancy", "fancy"), "fancy cannot be a plugin of itself"),
        (("inject", "fancy", "../x"), "invalid requirement"),
        (("install", "txdemo", "--with", "a b c"), "invalid requirement"),
    ]
    for args, message in cases:
        assert message in tx.one_error(tx(*args, expect=USAGE)), args
    assert tx.digest() == before
    # An unknown plugin fails at resolve, undone: the tool is as it was.
    err = tx.one_error(tx("inject", "fancy", "no-such-plugin", expect=FAILED))
    assert "no-such-plugin" in err
    assert tx.digest(journal=False) == files
    assert tx.shim("fancy") == "fancy 3.0 (plain)"
    tx.assert_clean()


def test_executables_of_dependencies_on_request(tx: Tx) -> None:
    tx.install("fancy[d]", "--include-deps")
    assert sorted(os.listdir(tx.bin)) == ["fancy", "fancy-extra-cli"]
    assert tx.shim("fancy-extra-cli") == "fancy-extra-cli 1.0"
    assert tx.tool("fancy")["include_deps"] is True
    tx("upgrade", "fancy")  # kept by an upgrade too
    tx("uninstall", "fancy")
    assert os.listdir(tx.bin) == []

    tx.install("fancy[d]", "--with-executables-from", "fancy-extra")
    assert tx.tool("fancy")["executables_from"] == ["fancy-extra"]
    assert sorted(os.listdir(tx.bin)) == ["fancy", "fancy-extra-cli"]
    tx("uninstall", "fancy")

    # Not a dependency: refused at install-env, everything undone.
    err = tx.one_error(tx.install("fancy", "--with-executables-from", "txdemo", expect=FAILED))
    assert "txdemo is not among the distributions installed with fancy" in err
    assert tx.envs("fancy") == [] and os.listdir(tx.bin) == []

    tx.install("txdemo")
    tx("inject", "txdemo", "fancy-extra", "--include-apps")
    assert sorted(os.listdir(tx.bin)) == ["fancy-extra-cli", "txdemo"]
    tx("uninject", "txdemo", "fancy-extra")
    assert sorted(os.listdir(tx.bin)) == ["txdemo"]
    tx.assert_clean()


@pytest.mark.parametrize("how", ["resume", "resume --revert", "re-run"])
def test_sigkill_in_the_middle_of_an_inject(tx: Tx, how: str) -> None:
    tx.install("fancy")
    (old_env,) = tx.envs("fancy")
    proc = tx(
        "inject",
        "fancy",
        "fancy-plugin",
        failpoints="step.remove-shims.removed=kill",
        expect=-signal.SIGKILL,
    )
    assert "injected" not in proc.stdout
    assert not os.path.lexists(tx.bin / "fancy")
    assert "INCOMPLETE inject fancy" in tx("status", expect=INCOMPLETE).stdout
    tx("verify", expect=FAILED)

    if how == "re-run":
        proc = tx("inject", "fancy", "fancy-plugin")
        assert "finished the interrupted inject of fancy" in proc.stderr
    else:
        tx(*how.split())
    if how == "resume --revert":
        assert tx.shim("fancy") == "fancy 3.0 (plain)"
        assert tx.envs("fancy") == [old_env]
        assert tx.tool("fancy")["plugins"] == []
    else:
        assert tx.shim("fancy") == "fancy 3.0 (fancy_plugin)"
        assert tx.tool("fancy")["plugins"] == ["fancy-plugin"]
        assert len(tx.envs("fancy")) == 1
    tx.assert_clean()


def test_verify_flags_a_missing_plugin(tx: Tx) -> None:
    tx.install("fancy", "--with", "fancy-plugin")
    (env,) = tx.envs("fancy")
    (site,) = env.glob("lib/python*/site-packages")
    for path in site.glob("fancy_plugin*"):
        shutil.rmtree(path)
    (line,) = tx("verify", expect=FAILED).stdout.splitlines()
    assert line == (
        "fancy: its plugin fancy-plugin is missing from its environment;"
        " fix: txtool reinstall fancy"
    )
    tx("reinstall", "fancy")
    assert tx.shim("fancy") == "fancy 3.0 (fancy_plugin)"
    tx.assert_clean()
