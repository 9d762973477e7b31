"""A closed output pipe (``| head -1``, real pipes, a real ``head``) never changes what the
operation does: it commits or reverts as it would have, the exit code says which, and no
traceback is printed (issue 7, item 7)."""

from __future__ import annotations

import fcntl
import subprocess
import tempfile
from pathlib import Path

import txcampaign as tc

from txengine import load


def _piped(world: Path, *args: str, merge: bool) -> tuple[int, str, str]:
    """``txtool ARGS | head -1`` (with ``2>&1`` when ``merge``): (txtool's exit, what head
    printed, txtool's stderr when not merged)."""
    with tempfile.TemporaryFile("w+") as err:
        tx = subprocess.Popen(
            [tc.PY, "-m", "txtool", *args],
            cwd=world,
            env=tc.base_env(world),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else err,
        )
        assert tx.stdout is not None
        # The smallest pipe (one page): output longer than a page meets the closed pipe
        # for sure, whatever the scheduling.
        fcntl.fcntl(tx.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        head = subprocess.run(["head", "-1"], stdin=tx.stdout, capture_output=True, text=True)
        tx.stdout.close()
        rc = tx.wait(timeout=120)
        err.seek(0)
        return rc, head.stdout, err.read()


def _only_op(world: Path) -> tuple[str, bool, bool]:
    views = [v for v in load(world / "home" / "journal") if v.kind == "install"]
    assert len(views) == 1, views
    return views[0].state, views[0].committed, views[0].incomplete


def test_install_piped_to_head_commits_and_says_so(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "home").mkdir()
    rc, first, _ = _piped(tmp_path, "install", "txdemo==1.0", *tc.source(wheels), merge=True)
    assert not first.startswith("Traceback"), first
    state, committed, incomplete = _only_op(tmp_path)
    assert not incomplete, f"exit {rc}, the install is {state}"
    assert committed and rc == 0, f"exit {rc}, the install is {state}"
    assert "txdemo" in tc.picture(tmp_path)["tools"]
    assert tc.txtool(tmp_path, "status").returncode == 0


def test_failing_install_piped_to_head_reverts_fully(tmp_path: Path, wheels: Path) -> None:
    (tmp_path / "home").mkdir()
    # Not txtool's, at a name only the built environment reveals: the install fails inside.
    (tmp_path / "bin" / "mt-b").mkdir(parents=True)
    rc, first, _ = _piped(tmp_path, "install", "multitool==1.0", *tc.source(wheels), merge=True)
    assert not first.startswith("Traceback"), first
    state, committed, incomplete = _only_op(tmp_path)
    assert not committed and not incomplete and rc == 1, f"exit {rc}, the install is {state}"
    assert (tmp_path / "bin" / "mt-b").is_dir()
    assert tc.picture(tmp_path)["tools"] == {}
    assert tc.txtool(tmp_path, "status").returncode == 0


def test_list_json_piped_to_head_prints_no_traceback(tmp_path: Path, wheels: Path) -> None:
    tc._install(tmp_path, wheels, "txdemo==1.0")
    log = (tmp_path / "home" / "journal" / "journal.log").read_bytes()
    rc, first, err = _piped(tmp_path, "list", "--json", merge=False)
    assert first == "[\n"
    assert "Traceback" not in err, err
    assert rc in (0, 1), rc
    assert (tmp_path / "home" / "journal" / "journal.log").read_bytes() == log


def test_long_output_piped_to_head_prints_no_traceback(tmp_path: Path, wheels: Path) -> None:
    tc._install(tmp_path, wheels, "txdemo==1.0")
    for _ in range(4):  # about 40 kB of records: many times the pipe
        tc.txtool(tmp_path, "uninstall", "txdemo", check=True)
        tc.txtool(tmp_path, "install", "txdemo==1.0", *tc.source(wheels), check=True)
    rc, first, err = _piped(tmp_path, "journal", "show", "--json", merge=False)
    assert first.startswith('{"type":"header"'), first
    assert "Traceback" not in err, err
    assert rc in (0, 1), rc
