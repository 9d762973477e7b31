"""txtool never touches what is not its own (issue 7.1, 7.2): a home or bin dir another user
controls is refused, a journal naming paths outside txtool's directories is never acted on, and
a file placed at a shim path since txtool put its shim there is kept."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from txcli import Tx

from txtool.cli import FAILED, JOURNAL, OK


@pytest.fixture(scope="session")
def other_user() -> Iterator[str]:
    """A real second local user, removed at the end of the session."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("needs root with useradd and runuser to create a second user")
    name = f"txsafe{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A world-writable sticky directory, like /tmp or a shared CI cache."""
    path = Path(tempfile.mkdtemp(prefix="txtool-shared-", dir="/tmp"))
    os.chmod(path, 0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as(user: str, *cmd: str) -> None:
    subprocess.run(["runuser", "-u", user, "--", *cmd], check=True, timeout=30)


def _home_tx(tx: Tx, home: Path, bin_dir: Path | None = None) -> Tx:
    tx.home = home
    tx.env["TXTOOL_HOME"] = str(home)
    if bin_dir is not None:
        tx.bin = bin_dir
        tx.env["TXTOOL_BIN_DIR"] = str(bin_dir)
    return tx


@pytest.mark.parametrize("mode", ["0755", "0777"])
def test_home_precreated_by_another_user_is_refused(
    tx: Tx, other_user: str, shared_tmp: Path, mode: str
) -> None:
    home = shared_tmp / "home"
    _as(other_user, "mkdir", "-m", mode, str(home))
    _as(other_user, "mkdir", "-m", "0777", str(home / "journal"))
    _home_tx(tx, home)
    before = tx.digest()
    proc = tx.install("txdemo==1.0", expect=JOURNAL)
    line = tx.one_error(proc)
    assert str(home) in line and "belongs to uid" in line
    assert tx.digest() == before  # nothing created: no journal record, no tools/, no bin dir
    assert not tx.bin.exists()


@pytest.mark.parametrize("where", ["home", "tools", "bin"])
def test_dir_writable_by_others_is_refused(tx: Tx, where: str) -> None:
    tx.install("txdemo==1.0")
    path = {"home": tx.home, "tools": tx.home / "tools", "bin": tx.bin}[where]
    os.chmod(path, 0o777)
    before = tx.digest()
    line = tx.one_error(tx("upgrade", "txdemo@latest", *tx.index, expect=JOURNAL))
    assert str(path) in line and "writable by other users" in line
    assert tx.digest() == before
    os.chmod(path, 0o755)
    tx.assert_clean()


def test_sticky_shared_bin_dir_is_accepted_and_foreign_shim_kept(
    tx: Tx, other_user: str, shared_tmp: Path
) -> None:
    """A bin dir like /tmp (sticky, world-writable) is usable, but another user's file at a
    shim path is theirs, even a link to our own launcher."""
    _home_tx(tx, tx.home, shared_tmp)
    tx.install("txdemo==1.0")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    launcher = os.readlink(tx.bin / "txdemo")
    _as(other_user, "ln", "-s", launcher, str(tx.bin / "mt-a"))
    line = tx.one_error(tx.install("multitool==1.0", expect=FAILED))
    assert str(tx.bin / "mt-a") in line and "--force" in line
    assert os.lstat(tx.bin / "mt-a").st_uid != os.geteuid()  # still theirs, untouched


def test_modes_do_not_depend_on_the_umask(tx: Tx, tmp_path: Path) -> None:
    txtool = [sys.executable, "-m", "txtool", "install", "txdemo==1.0", *tx.index]
    proc = subprocess.run(
        ["sh", "-c", 'umask 000 && exec "$@"', "sh", *txtool],
        env=tx.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == OK, proc.stderr
    for path in [tx.home, tx.home / "tools", tx.home / "tools" / "txdemo", tx.bin]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755, path
    (env,) = tx.envs("txdemo")
    for dirpath, dirnames, filenames in os.walk(env):
        for name in dirnames + filenames:
            st = os.lstat(Path(dirpath) / name)
            # uv makes its empty `.lock` 0666 on purpose (shared locking); it holds no code.
            if not stat.S_ISLNK(st.st_mode) and name != ".lock":
                assert not st.st_mode & stat.S_IWOTH, Path(dirpath) / name


def _tamper(journal: Path, old: str, new: str) -> None:
    """Rewrite the journal as an attacker with write access would: valid checksums."""
    log = journal / "journal.log"
    lines = []
    for raw in log.read_bytes().splitlines():
        _, _, payload = raw.partition(b" ")
        payload = payload.replace(old.encode(), new.encode())
        lines.append(b"%08x %s" % (zlib.crc32(payload), payload))
    log.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("dotdot", [False, True])
def test_journal_naming_a_path_outside_the_home_is_never_acted_on(
    txdemo1: Tx, tmp_path: Path, dotdot: bool
) -> None:
    tx = txdemo1
    victim = tmp_path / "victim"
    (victim / "bin").mkdir(parents=True)
    (victim / "precious").write_text("keep me")
    old_env = tx.tool("txdemo")["environment"]
    tx(
        "upgrade",
        "txdemo@latest",
        *tx.index,
        failpoints="step.switch-current.switched=kill",
        expect=-9,
    )
    planted = f"{old_env}/../../../../victim" if dotdot else str(victim)
    _tamper(tx.journal, old_env, planted)
    journal_before = (tx.journal / "journal.log").read_bytes()
    for args in (["resume"], ["resume", "--revert"], ["install", "other", *tx.index]):
        line = tx.one_error(tx(*args, expect=JOURNAL))
        assert "outside" in line, line
    assert (victim / "precious").read_text() == "keep me"
    assert (tx.journal / "journal.log").read_bytes() == journal_before


@pytest.fixture
def foreign(txdemo1: Tx, tmp_path: Path) -> Iterator[tuple[Tx, Path]]:
    yield txdemo1, txdemo1.bin / "txdemo"


def _replace_shim(shim: Path, kind: str) -> str:
    shim.unlink()
    if kind == "script":
        shim.write_text("#!/bin/sh\necho my own wrapper\n")
        shim.chmod(0o755)
    elif kind == "directory":
        shim.mkdir()
        (shim / "notes.txt").write_text("my notes")
    else:  # a link another home, uv tool or pipx placed
        os.symlink("/opt/pipx/venvs/txdemo/bin/txdemo", shim)
    return kind


@pytest.mark.parametrize("kind", ["script", "directory", "link"])
def test_upgrade_refuses_a_shim_path_that_is_no_longer_ours(
    foreign: tuple[Tx, Path], kind: str
) -> None:
    tx, shim = foreign
    _replace_shim(shim, kind)
    before = tx.digest(journal=False)
    line = tx.one_error(tx("upgrade", "txdemo==2.0", *tx.index, expect=FAILED))
    assert str(shim) in line and "no longer txtool's" in line and "--force" in line
    assert tx.digest(journal=False) == before
    assert tx.tool("txdemo")["version"] == "1.0"


@pytest.mark.parametrize("kind", ["script", "directory", "link"])
def test_uninstall_keeps_a_shim_path_that_is_no_longer_ours(
    foreign: tuple[Tx, Path], kind: str
) -> None:
    tx, shim = foreign
    _replace_shim(shim, kind)

    def at_shim() -> dict[str, str]:
        return {k: v for k, v in tx.tree_digest(tx.bin).items() if k.startswith(str(shim))}

    kept = at_shim()
    proc = tx("uninstall", "txdemo")
    assert f"kept {shim}" in proc.stdout
    assert tx.list_json() == []
    assert at_shim() == kept and kept
    assert not tx.envs("txdemo")


@pytest.mark.parametrize("kind", ["script", "directory", "link"])
def test_verify_reports_a_foreign_shim_without_aborting(
    foreign: tuple[Tx, Path], kind: str
) -> None:
    tx, shim = foreign
    tx.install("multitool==1.0")
    _replace_shim(shim, kind)
    (other_env,) = tx.envs("multitool")
    shutil.rmtree(other_env)
    proc = tx("verify", expect=FAILED)
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    (about_shim,) = [ln for ln in lines if str(shim) in ln]
    assert "not txtool's" in about_shim and "move it elsewhere" in about_shim
    assert any(ln.startswith("multitool:") and "missing" in ln for ln in lines)  # went on


def test_symlink_placement_error_names_the_bin_dir_path(txdemo1: Tx) -> None:
    tx = txdemo1
    tx("uninstall", "txdemo")
    try:  # root ignores modes: a read-only bind mount makes the link fail for real
        subprocess.run(["mount", "--bind", str(tx.bin), str(tx.bin)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(tx.bin)], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        subprocess.run(["umount", str(tx.bin)], check=False)
        pytest.skip("cannot bind-mount a read-only bin dir here")
    try:
        line = tx.one_error(tx.install("txdemo==1.0", expect=FAILED))
    finally:
        subprocess.run(["umount", str(tx.bin)], check=True)
    assert str(tx.bin / "txdemo") in line, line
    assert str(tx.home) not in line, line


def test_journal_with_paths_of_an_unexpected_shape_is_refused(txdemo1: Tx) -> None:
    tx = txdemo1
    # Copied shims (the Windows path) are moved at each upgrade: the journal names them.
    fail = "step.remove-shims.removed=kill"
    tx("upgrade", "txdemo@latest", *tx.index, failpoints=fail, expect=-9, TXTOOL_SHIMS="copy")
    _tamper(tx.journal, '"moves":[{"path":', '"moves":[{"where":')
    before = tx.digest(journal=False), (tx.journal / "journal.log").read_bytes()
    line = tx.one_error(tx("resume", expect=JOURNAL))
    assert "unexpected shape" in line
    assert (tx.digest(journal=False), (tx.journal / "journal.log").read_bytes()) == before
