"""Hostile input: each case ends with one ``txtool: error:`` line, its documented exit code
(docs/cli.md), no traceback, and the data and bin dirs byte-for-byte unchanged.

A NUL byte cannot be passed through argv (the OS refuses it), so it is not tested here;
``names.requirement`` refuses it for other callers, and a control character (``\\x01``)
stands in for it. We run as root, so a read-only data dir cannot be made with chmod: the
"unwritable" cases point the data dir or bin dir under a regular file (ENOTDIR).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import txcampaign as tc

from txengine._journal import LOG_NAME, frame

USAGE, FAILED, JOURNAL = 2, 1, 5

CASES: list[tuple[str, list[str], int]] = [
    ("install path traversal", ["install", "../evil"], USAGE),
    ("install slash", ["install", "a/b"], USAGE),
    ("install absolute path", ["install", "/etc/passwd"], USAGE),
    ("install empty", ["install", ""], USAGE),
    ("install 10 kB name", ["install", "x" * 10_000], USAGE),
    ("install fullwidth t", ["install", "\uff54xdemo"], USAGE),
    ("install Cyrillic o", ["install", "txdem\u043e"], USAGE),
    ("install control char", ["install", "txdemo\x01"], USAGE),
    ("install newline", ["install", "txdemo\n==1.0"], USAGE),
    ("install URL reference", ["install", "txdemo @ file:///etc/passwd"], USAGE),
    ("install marker injection", ["install", "txdemo; os_name == 'posix'"], USAGE),
    ("install extras traversal", ["install", "txdemo[../x]"], USAGE),
    ("install dash-dash option", ["install", "--", "--force"], USAGE),
    ("install no spec", ["install"], USAGE),
    ("install unknown option", ["install", "--frobnicate", "txdemo"], USAGE),
    ("install bad backend", ["install", "txdemo", "--backend", "conda"], USAGE),
    ("install missing python", ["install", "multitool", "--python", "/nonexistent/python"], USAGE),
    ("option before command", ["--json", "list"], USAGE),
    ("source option before command", ["--no-index", "install", "txdemo"], USAGE),
    ("unknown command", ["frobnicate"], USAGE),
    ("uninstall traversal", ["uninstall", "../txdemo"], USAGE),
    ("uninstall absolute", ["uninstall", "/etc"], USAGE),
    ("uninstall empty", ["uninstall", ""], USAGE),
    ("uninstall confusable", ["uninstall", "\uff54xdemo"], USAGE),
    ("uninstall not installed", ["uninstall", "multitool"], USAGE),
    ("upgrade confusable", ["upgrade", "txdem\u043e"], USAGE),
    ("upgrade not installed", ["upgrade", "multitool"], USAGE),
    ("upgrade nothing", ["upgrade"], USAGE),
    ("upgrade --all with names", ["upgrade", "--all", "txdemo"], USAGE),
    ("upgrade --jobs 0", ["upgrade", "--all", "--jobs", "0"], USAGE),
    ("upgrade --jobs -3", ["upgrade", "--all", "--jobs", "-3"], USAGE),
    ("upgrade --jobs x", ["upgrade", "--all", "--jobs", "x"], USAGE),
    ("resume unknown op", ["resume", "deadbeef0000"], USAGE),
    ("resume --revert unknown op", ["resume", "--revert", "deadbeef0000"], USAGE),
    ("resume traversal", ["resume", "../x"], USAGE),
    ("history traversal", ["history", "../x"], USAGE),
    ("history empty", ["history", ""], USAGE),
    ("journal unknown action", ["journal", "frobnicate"], USAGE),
    ("journal no action", ["journal"], USAGE),
]


def digest(*roots: Path) -> str:
    h = hashlib.sha256()
    for root in roots:
        for dirpath, dirnames, filenames in sorted(os.walk(root)):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                p = Path(dirpath) / name
                h.update(str(p).encode())
                if p.is_symlink():
                    h.update(b"L" + os.readlink(p).encode())
                elif p.is_file():
                    h.update(b"F" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("hostile")
    tc.txtool(w, "install", "txdemo==1.0", *tc.source(wheels), check=True)
    return w


def _one_error(proc: object, code: int) -> None:
    stderr = proc.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == code, (proc.returncode, stderr)  # type: ignore[attr-defined]
    errors = [ln for ln in stderr.splitlines() if ln.startswith("txtool: error:")]
    assert len(errors) == 1, stderr
    assert len(errors[0]) < 400, errors[0]  # a 10 kB input is shown shortened


@pytest.mark.parametrize(("argv", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_argv(world: Path, argv: list[str], code: int) -> None:
    before = digest(world / "home", world / "bin")
    proc = tc.txtool(world, *argv)
    _one_error(proc, code)
    assert digest(world / "home", world / "bin") == before


def _rewrite_version(log: Path, version: int) -> None:
    """Re-frame the journal's last record with a newer format version (a valid checksum)."""
    lines = log.read_bytes().splitlines(keepends=True)
    payload = lines[-1][9:-1].replace(b'"v":1', b'"v":%d' % version, 1)
    assert b'"v":%d' % version in payload
    import zlib

    lines[-1] = b"%08x %s\n" % (zlib.crc32(payload), payload)
    log.write_bytes(b"".join(lines))
    assert frame  # the framing the journal uses; kept in sync with txengine._journal


@pytest.mark.parametrize(
    "argv", [["list"], ["status"], ["install", "multitool"], ["upgrade", "txdemo"], ["resume"]]
)
def test_journal_from_a_newer_txtool(wheels: Path, tmp_path: Path, argv: list[str]) -> None:
    tc.txtool(tmp_path, "install", "txdemo==1.0", *tc.source(wheels), check=True)
    _rewrite_version(tmp_path / "home" / "journal" / LOG_NAME, 99)
    before = digest(tmp_path / "home", tmp_path / "bin")
    proc = tc.txtool(tmp_path, *argv)
    _one_error(proc, JOURNAL)
    assert "format 99" in proc.stderr
    assert digest(tmp_path / "home", tmp_path / "bin") == before


def test_data_dir_under_a_regular_file(wheels: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    env = {"TXTOOL_HOME": str(tmp_path / "file" / "home")}
    before = digest(tmp_path)
    proc = tc.txtool(tmp_path, "install", "txdemo==1.0", *tc.source(wheels), env=env)
    _one_error(proc, FAILED)
    assert "Not a directory" in proc.stderr
    assert digest(tmp_path) == before


def test_bin_dir_under_a_regular_file(wheels: Path, tmp_path: Path) -> None:
    """The operation starts (the bin dir is only needed at copy-shims), fails, is undone."""
    (tmp_path / "file").write_text("not a directory\n")
    env = {"TXTOOL_BIN_DIR": str(tmp_path / "file" / "bin")}
    proc = tc.txtool(tmp_path, "install", "txdemo==1.0", *tc.source(wheels), env=env)
    _one_error(proc, FAILED)
    assert "every change was undone" in proc.stderr
    assert tc.picture(tmp_path) == {"tools": {}, "strays": []}
    assert (tmp_path / "file").read_text() == "not a directory\n"
