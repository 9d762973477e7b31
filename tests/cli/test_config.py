"""The backends' own index configuration (issue 9): the user's and the system's uv.toml and
pip.conf, and the UV_*/PIP_* variables, are honoured; a project's configuration in the
current directory is not; the effective settings are recorded, so an upgrade resolves from
the same place; a password in them is never recorded, printed or on a command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from txcli import Tx
from txindex import Index, cmdlines

from txtool.cli import FAILED


@pytest.fixture
def cfg(tx: Tx) -> Tx:
    """A Tx whose user configuration directory is its own and empty, and no UV_*/PIP_*
    index variable of the machine's."""
    home = tx.root / "config"
    home.mkdir()
    for var in list(tx.env):
        if var.startswith(("UV_", "PIP_")) or var == "PIP_CONFIG_FILE":
            del tx.env[var]
    tx.env["XDG_CONFIG_HOME"] = str(home)
    tx.env["XDG_CONFIG_DIRS"] = str(tx.root / "system-config")  # no system file of the machine's
    return tx


def _user_uv_toml(tx: Tx, text: str) -> Path:
    path = Path(tx.env["XDG_CONFIG_HOME"]) / "uv" / "uv.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _offline(tx: Tx) -> str:
    return f'no-index = true\nfind-links = ["{tx.wheelhouse}"]\n'


# A setting that breaks every install from the test wheelhouse (wheels only): if uv or pip
# read the file holding it, the install fails.
NO_WHEELS_UV = "no-binary = true\n"
NO_WHEELS_PIP = "[global]\nno-binary = :all:\n"


def test_the_users_uv_toml_is_honoured_and_recorded(cfg: Tx) -> None:
    tx = cfg
    _user_uv_toml(tx, _offline(tx))
    tx("install", "txdemo==1.0")  # no index option: the user's uv.toml says where
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    recorded = tx.tool("txdemo")["options"]["index"]
    assert recorded["find_links"] == [str(tx.wheelhouse)] and recorded["no_index"] is True
    # The file changes afterwards: the upgrade resolves from where the tool came from.
    _user_uv_toml(tx, 'index-url = "http://127.0.0.1:9/simple"\n')
    tx("upgrade", "txdemo@latest", UV_OFFLINE="1")
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"


def test_a_setting_in_the_users_uv_toml_reaches_uv(cfg: Tx) -> None:
    tx = cfg
    _user_uv_toml(tx, NO_WHEELS_UV)
    line = tx.one_error(tx.install("txdemo==1.0", expect=FAILED))
    assert "txdemo" in line
    assert tx.list_json() == []


def test_the_system_uv_toml_is_honoured(cfg: Tx) -> None:
    tx = cfg
    system = Path(tx.env["XDG_CONFIG_DIRS"]) / "uv" / "uv.toml"
    system.parent.mkdir(parents=True)
    system.write_text(_offline(tx))
    tx("install", "txdemo==1.0")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_a_projects_configuration_in_the_current_directory_changes_nothing(
    cfg: Tx, backend: str
) -> None:
    tx = cfg
    (tx.root / "uv.toml").write_text(NO_WHEELS_UV)
    (tx.root / "pip.conf").write_text(NO_WHEELS_PIP)
    sub = tx.root / "project"
    sub.mkdir()
    (sub / "pyproject.toml").write_text(
        "[project]\nname = 'p'\nversion = '0'\n[tool.uv]\nno-binary = true\n"
    )
    # The control: run from there, uv itself obeys that file and cannot install a wheel.
    uv = subprocess.run(
        [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "compile",
            "-",
            "--no-index",
            "--find-links",
            str(tx.wheelhouse),
        ],
        input="txdemo==1.0\n",
        cwd=tx.root,
        capture_output=True,
        text=True,
        env=tx.env,
    )
    assert uv.returncode != 0, uv.stdout
    for cwd in (tx.root, sub):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "txtool",
                "install",
                "--force",
                "txdemo==1.0",
                "--backend",
                backend,
                *tx.index,
            ],
            cwd=cwd,
            env=tx.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_uv_variables_are_honoured_and_recorded(cfg: Tx) -> None:
    tx = cfg
    tx("install", "txdemo==1.0", UV_NO_INDEX="1", UV_FIND_LINKS=str(tx.wheelhouse))
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.tool("txdemo")["options"]["index"]["find_links"] == [str(tx.wheelhouse)]
    tx("upgrade", "txdemo@latest")  # without the variables: from the recorded place
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"


def test_the_users_pip_conf_and_pip_variables_are_honoured(cfg: Tx) -> None:
    tx = cfg
    conf = Path(tx.env["XDG_CONFIG_HOME"]) / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f"[global]\nno-index = true\nfind-links = {tx.wheelhouse}\n")
    tx("install", "txdemo==1.0", "--backend", "pip")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.tool("txdemo")["options"]["index"]["find_links"] == [str(tx.wheelhouse)]
    conf.unlink()
    tx(
        "install",
        "multitool==1.0",
        "--backend",
        "pip",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(tx.wheelhouse),
    )
    assert tx.shim("mt-a") == "mt-a 1.0"
    named = tx.root / "named.conf"  # PIP_CONFIG_FILE, with a setting that breaks the install
    named.write_text(NO_WHEELS_PIP)
    line = tx.one_error(
        tx.install("slowtool==1.0", "--backend", "pip", expect=FAILED, PIP_CONFIG_FILE=str(named))
    )
    assert "slowtool" in line


USER, PASSWORD = "alice", "s3cret-Pa55"


@pytest.fixture
def leaks() -> list[str]:
    """Command lines holding the password, read while a client waits on the index."""
    return []


@pytest.fixture
def index(wheelhouse: Path, leaks: list[str]) -> Iterator[Index]:
    def look(path: str) -> None:
        leaks.extend(c for c in cmdlines().values() if PASSWORD in c)

    served = Index(wheelhouse, auth=(USER, PASSWORD), on_request=look)
    yield served
    served.close()


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_a_password_in_the_users_config_is_used_never_recorded(
    cfg: Tx, index: Index, leaks: list[str], backend: str
) -> None:
    tx = cfg
    tx.env["UV_NO_CACHE"] = "1"
    tx.env["PIP_NO_CACHE_DIR"] = "1"
    if backend == "uv":
        _user_uv_toml(tx, f'index-url = "{index.url}"\n')
    else:
        conf = Path(tx.env["XDG_CONFIG_HOME"]) / "pip" / "pip.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(f"[global]\nindex-url = {index.url}\n")
    proc = tx("install", "txdemo==1.0", "--backend", backend)
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert index.authorized > 0
    recorded = tx.tool("txdemo")["options"]["index"]["index_url"]
    assert recorded == index.url.replace(PASSWORD, "****")
    # The upgrade resolves from the recorded index; the password comes from the file again.
    tx("upgrade", "txdemo@latest")
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    shown = proc.stdout + proc.stderr + tx("list", "--json").stdout + tx("journal", "show").stdout
    assert PASSWORD not in shown
    for f in tx.journal.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
    assert leaks == []


def test_uvs_empty_projects_are_removed_and_a_killed_runs_are_swept(tx: Tx) -> None:
    tmp = tx.root / "tmp"
    tmp.mkdir()
    tx.env["TMPDIR"] = str(tmp)
    gone = subprocess.Popen(["true"])  # a pid that has exited
    gone.wait()
    left = tmp / f"txtool-uv-{gone.pid}-abcd"  # what a SIGKILL in a uv call leaves
    left.mkdir()
    (left / "uv.toml").write_text("")
    mine = tmp / "txtool-uv-notapid"  # not named for a process: not txtool's to remove
    mine.mkdir()
    tx.install("txdemo==1.0")
    assert sorted(p.name for p in tmp.iterdir()) == ["txtool-uv-notapid"]


def test_effective_settings_are_read_as_uv_and_pip_read_them(tmp_path: Path) -> None:
    from txtool.backend import IndexOptions, effective_index

    user = tmp_path / "user"
    (user / "uv").mkdir(parents=True)
    (user / "uv" / "uv.toml").write_text(
        'find-links = ["links"]\nextra-index-url = ["https://top.example/simple"]\n'
        '[[index]]\nurl = "https://extra.example/simple"\n'
        '[[index]]\nurl = "https://private.example/simple"\nexplicit = true\n'
        '[[index]]\nurl = "https://default.example/simple"\ndefault = true\n'
        '[pip]\nextra-index-url = ["https://pip.example/simple"]\n'
    )
    env = {"XDG_CONFIG_HOME": str(user), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    uv = effective_index("uv", None, env)
    assert uv.index_url == "https://default.example/simple"
    assert uv.extra_index_urls == ("https://pip.example/simple",)  # [pip] wins for uv pip
    assert uv.find_links == (str(user / "uv" / "links"),)  # relative to the file
    # The command line wins field by field; a variable wins over the file.
    given = IndexOptions(index_url="https://cli.example/simple")
    assert effective_index("uv", given, env).index_url == "https://cli.example/simple"
    assert effective_index("uv", None, env | {"UV_NO_INDEX": "1"}).no_index is True
    assert effective_index("uv", None, env | {"UV_NO_CONFIG": "1"}) == IndexOptions()

    (user / "pip").mkdir()
    (user / "pip" / "pip.conf").write_text(
        "[global]\nindex-url = https://global.example/simple\nfind-links = a b\n"
        "[install]\nindex-url = https://install.example/simple\n"
    )
    pip = effective_index("pip", None, env)
    assert pip.index_url == "https://install.example/simple"  # [install] over [global]
    assert pip.find_links == (str(user / "pip" / "a"), str(user / "pip" / "b"))
    named = tmp_path / "named.conf"
    named.write_text("[global]\nindex-url = https://named.example/simple\n")
    assert effective_index("pip", None, env | {"PIP_CONFIG_FILE": str(named)}).index_url == (
        "https://named.example/simple"
    )
    assert effective_index("pip", None, env | {"PIP_CONFIG_FILE": os.devnull}).index_url is None
