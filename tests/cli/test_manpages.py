"""Man pages a tool's wheel ships are linked under the man dir and removed with the tool,
journaled like shims: a kill or an error in the middle is finished or undone exactly."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from txtool.cli import FAILED, INCOMPLETE, OK

PAGES = ("man1/txman.1", "man5/txman.conf.5")


def _pages(tx) -> dict[str, str]:
    """Each page under the man dir: its link target, or "copy:" and its first line."""
    man = tx.root / "man"
    found = {}
    for rel in PAGES:
        path = man / rel
        if path.is_symlink():
            found[rel] = os.readlink(path)
        elif path.exists():
            found[rel] = "copy:" + path.read_text().splitlines()[-1]
    return found


def _env(tx) -> str:
    return tx.tool("txman")["environment"]


def test_pages_are_placed_and_removed_with_the_tool(tx) -> None:
    tx.install("txman==1.0")
    env = _env(tx)
    assert _pages(tx) == {rel: f"{env}/share/man/{rel}" for rel in PAGES}
    assert not (tx.root / "man" / "not-a-section").exists()
    if shutil.which("man"):
        page = subprocess.run(
            ["man", "-M", str(tx.root / "man"), "txman"],
            capture_output=True,
            text=True,
            env={**os.environ, "MANPAGER": "cat", "PAGER": "cat"},
            timeout=30,
        )
        assert "txman 1.0 test page" in page.stdout
    tx("upgrade", "txman@latest", *tx.index)
    new = _env(tx)
    assert new != env and _pages(tx) == {rel: f"{new}/share/man/{rel}" for rel in PAGES}
    assert "txman 2.0" in (tx.root / "man" / "man1" / "txman.1").read_text()
    tx("uninstall", "txman")
    assert _pages(tx) == {}
    tx.assert_clean()


def test_copies_where_links_are_not_used(tx) -> None:
    tx.install("txman==1.0", TXTOOL_SHIMS="copy")
    assert _pages(tx) == {rel: "copy:txman \\- txman 1.0 test page" for rel in PAGES}
    tx("uninstall", "txman")
    assert _pages(tx) == {}


def test_a_page_that_is_not_txtools_is_kept(tx) -> None:
    mine = tx.root / "man" / "man1" / "txman.1"
    mine.parent.mkdir(parents=True)
    mine.write_text("my own page\n")
    tx.install("txman==1.0")  # documentation never fails an install
    assert mine.read_text() == "my own page\n"
    assert list(_pages(tx)) == list(PAGES)
    tx("uninstall", "txman")
    assert mine.read_text() == "my own page\n"
    assert not (tx.root / "man" / "man5" / "txman.conf.5").exists()
    tx.assert_clean()


def test_an_error_while_linking_is_undone(tx) -> None:
    proc = tx.install("txman==1.0", failpoints="step.man-pages.linked#2=error:EIO", expect=FAILED)
    assert "txman" in tx.one_error(proc)
    assert _pages(tx) == {} and tx.list_json() == []
    assert not os.path.lexists(tx.bin / "txman")
    tx.assert_clean()


@pytest.mark.parametrize("direction", ["re-run", "revert"])
def test_a_kill_while_linking_is_finished_or_undone(tx, direction) -> None:
    tx.install("txman==1.0", failpoints="step.man-pages.linked=kill", expect=-9)
    assert len(_pages(tx)) == 1
    if direction == "revert":
        tx("resume", "--revert")
        assert _pages(tx) == {} and tx.list_json() == []
    else:
        tx.install("txman==1.0")
        assert list(_pages(tx)) == list(PAGES)
    tx.assert_clean()


def test_a_kill_while_removing_is_finished_by_the_next_uninstall(tx) -> None:
    tx.install("txman==1.0")
    tx("uninstall", "txman", failpoints="step.man-pages.removed=kill", expect=-9)
    assert len(_pages(tx)) == 1
    tx("status", expect=INCOMPLETE)
    tx("uninstall", "txman", expect=OK)
    assert _pages(tx) == {}
    tx.assert_clean()


def test_the_plan_names_the_step(tx) -> None:
    out = tx("install", "txman==1.0", *tx.index, "--dry-run").stdout
    assert "link man pages" in out
    tx.install("txman==1.0")
    assert "remove man pages" in tx("uninstall", "txman", "--dry-run").stdout


def test_an_uninstall_without_man_pages_has_no_man_pages_step(txdemo1) -> None:
    out = txdemo1("uninstall", "txdemo", "--dry-run").stdout
    assert "remove old shims" in out and "remove man pages" not in out
