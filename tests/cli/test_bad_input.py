"""Bad input: one error line, the documented exit code (docs/cli.md), and nothing changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from txtool.cli import FAILED, USAGE


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, make_tx):
    """One home with txdemo 1.0, shared by the tests that must not change anything."""
    tx = make_tx(tmp_path_factory.mktemp("bad-input"))
    tx.install("txdemo==1.0")
    return tx


REFUSED_BEFORE_ANY_OPERATION = [
    pytest.param(["install", "foo bar baz"], "invalid requirement 'foo bar baz'", id="bad-req"),
    pytest.param(["install", "../x"], "'../x'", id="install-dotdot"),
    pytest.param(["install", "a/b"], "'a/b'", id="install-slash"),
    pytest.param(["upgrade", "../x"], "'../x'", id="upgrade-dotdot"),
    pytest.param(["upgrade", "a/b"], "'a/b'", id="upgrade-slash"),
    pytest.param(["uninstall", "../x"], "'../x'", id="uninstall-dotdot"),
    pytest.param(["uninstall", "a/b"], "'a/b'", id="uninstall-slash"),
    pytest.param(
        ["install", "multitool", "--python", "/nonexistent/python"],
        "/nonexistent/python",
        id="missing-python",
    ),
    pytest.param(["upgrade", "multitool"], "multitool is not installed", id="upgrade-unknown"),
    pytest.param(["uninstall", "multitool"], "multitool is not installed", id="uninstall-unknown"),
    pytest.param(["upgrade"], "--all", id="upgrade-nothing"),
    pytest.param(["resume", "0123456789ab"], "no operation", id="resume-unknown-op"),
]


@pytest.mark.parametrize(("argv", "needle"), REFUSED_BEFORE_ANY_OPERATION)
def test_usage_errors_change_nothing(installed, argv: list[str], needle: str) -> None:
    tx = installed
    before = tx.digest()  # the journal included: not even a record is written
    extra = tx.index if argv[0] == "install" else []
    proc = tx(*argv, *extra, expect=USAGE)
    assert needle in tx.one_error(proc)
    assert tx.digest() == before
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_usage_error_on_a_fresh_home_creates_nothing(tx) -> None:
    proc = tx("install", "foo bar baz", *tx.index, expect=USAGE)
    tx.one_error(proc)
    assert not tx.home.exists() and not tx.bin.exists()


def _failed_inside_operation(tx, proc, *needles: str) -> str:
    """A failure found by a step: reverted, so only the journal grew; disk and journal agree."""
    err = tx.one_error(proc)
    for needle in needles:
        assert needle in err, err
    assert "every change was undone" in err
    tx.assert_clean()
    return err


def test_unknown_package(txdemo1) -> None:
    tx = txdemo1
    before = tx.digest(journal=False)
    proc = tx.install("nosuchpkg", expect=FAILED)
    err = _failed_inside_operation(tx, proc, "nosuchpkg")
    assert "unsatisfiable" in err  # the whole cause, even where uv wrapped it
    assert tx.digest(journal=False) == before
    assert not (tx.home / "tools" / "nosuchpkg").exists()


def test_missing_find_links_dir(txdemo1) -> None:
    # docs/cli.md: a --find-links directory that does not exist is bad input, caught before
    # the journal is touched.
    tx = txdemo1
    missing = tx.root / "no-such-wheelhouse"
    before = tx.digest()
    proc = tx("install", "multitool", "--no-index", "--find-links", str(missing), expect=USAGE)
    assert str(missing) in proc.stderr
    assert tx.digest() == before


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_hostile_entry_point(tx, backend: str) -> None:
    # uv refuses the wheel itself; with pip, txtool's own check of entry point names does.
    proc = tx.install("evil", "--backend", backend, expect=FAILED)
    _failed_inside_operation(tx, proc, "evil", "'../evil'" if backend == "pip" else "../evil")
    assert not (tx.home / "tools" / "evil").exists()
    assert not tx.bin.exists() or not os.listdir(tx.bin)
    evil = [p for p in tx.root.rglob("*") if "evil" in p.name]
    assert evil == []
    assert tx.list_json() == []


def test_no_executables(tx) -> None:
    proc = tx.install("noexec", expect=FAILED)
    _failed_inside_operation(tx, proc, "noexec", "exposes no executables")
    assert not (tx.home / "tools" / "noexec").exists()
    assert tx.list_json() == []


def test_foreign_file_in_the_way(txdemo1) -> None:
    tx = txdemo1
    foreign = tx.bin / "ls-collide"
    foreign.write_text("#!/bin/sh\necho mine\n")
    before = tx.digest(journal=False)
    proc = tx.install("collide", expect=FAILED)
    _failed_inside_operation(tx, proc, str(foreign), "--force")
    assert tx.digest(journal=False) == before
    assert not foreign.is_symlink() and foreign.read_text() == "#!/bin/sh\necho mine\n"

    tx.install("collide", "--force")
    assert foreign.is_symlink()
    assert tx.shim("ls-collide") == "ls-collide 1.0"
    tx.assert_clean()

    tx("uninstall", "collide")
    assert not os.path.lexists(foreign)
    assert not (tx.home / "tools" / "collide").exists()
    tx.assert_clean()


def test_shim_of_another_tool_is_not_taken(txdemo1, tmp_path: Path) -> None:
    # A tool whose executable is already another tool's shim: refused even with --force.
    from txtool.wheelhouse import build_wheel

    tx = txdemo1
    wheels = tmp_path / "more-wheels"
    build_wheel(
        wheels,
        "copycat",
        "1.0",
        console_scripts={"txdemo": "copycat:main"},
        files={"copycat/__init__.py": "def main():\n    print('copycat')\n"},
    )
    before = tx.digest(journal=False)
    for force in ([], ["--force"]):
        proc = tx.install("copycat", "--find-links", str(wheels), *force, expect=FAILED)
        _failed_inside_operation(tx, proc, "belongs to the tool txdemo")
        assert tx.digest(journal=False) == before
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
