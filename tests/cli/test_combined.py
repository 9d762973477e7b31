"""Issues 9, 10 and 11 together, as an outsider would combine them: rollback of a tool's
plugins, extras and source; man pages across generations; a directory source rolled back
offline; the keep window under reinstall and inject; a kept generation deleted by hand; what
``list`` shows. Every test runs the real CLI against real environments and real wheels."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from txcli import Tx
from txprojects import write_project

from txtool.cli import FAILED, USAGE

PAGES = ("man1/txman.1", "man5/txman.conf.5")


@pytest.fixture
def offline(tmp_path: Path, wheelhouse: Path) -> Tx:
    """A home with a wheelhouse of its own, which the test may delete."""
    own = tmp_path / "wheels"
    shutil.copytree(wheelhouse, own)
    return Tx(tmp_path, own)


def _verify_clean(tx: Tx) -> None:
    proc = tx("verify", expect=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _recorded(tx: Tx, name: str) -> tuple[str, list[str], list[str], int]:
    entry = tx.tool(name)
    return entry["spec"], entry["extras"], entry["plugins"], entry["generation"]


def test_rollback_restores_plugins_extras_and_spec(offline: Tx) -> None:
    tx = offline
    tx.install("fancy[d]==1.0", "--with", "fancy-plugin")
    first = _recorded(tx, "fancy")
    assert first[:3] == ("fancy[d]==1.0", ["d"], ["fancy-plugin"])
    assert tx.shim("fancy") == "fancy 1.0 (fancy_extra fancy_plugin)"
    tx("upgrade", "fancy@latest")
    tx("uninject", "fancy", "fancy-plugin")
    assert tx.shim("fancy") == "fancy 3.0 (fancy_extra)"
    tx("inject", "fancy", "fancy-plugin==1.0")
    tx("uninject", "fancy", "fancy-plugin")  # four generations: 1 was pruned (K=2)
    assert [g["generation"] for g in tx.tool("fancy")["generations"]] == [3, 4, 5]
    tx("rollback", "fancy", "--to", "4")
    assert _recorded(tx, "fancy") == ("fancy[d]", ["d"], ["fancy-plugin==1.0"], 4)
    assert tx.shim("fancy") == "fancy 3.0 (fancy_extra fancy_plugin)"
    _verify_clean(tx)
    tx("rollback", "fancy", "--to", "3")  # the generation without the plugin
    assert _recorded(tx, "fancy") == ("fancy[d]", ["d"], [], 3)
    assert tx.shim("fancy") == "fancy 3.0 (fancy_extra)"
    _verify_clean(tx)
    # From a rolled-back generation, an upgrade keeps that generation's spec and plugins.
    tx("rollback", "fancy", "--to", "4")
    out = tx("upgrade", "fancy").stdout
    assert "fancy is up to date (3.0)" in out, out
    assert _recorded(tx, "fancy")[:3] == ("fancy[d]", ["d"], ["fancy-plugin==1.0"])


def test_rollback_of_a_pinned_generation_keeps_its_pin(offline: Tx) -> None:
    tx = offline
    tx.install("fancy[d]==1.0", "--with", "fancy-plugin==1.0")
    tx("upgrade", "fancy@latest")
    assert _recorded(tx, "fancy")[:3] == ("fancy[d]", ["d"], ["fancy-plugin==1.0"])
    hidden = tx.wheelhouse.rename(tx.root / "hidden")  # no index during the rollback
    tx("rollback", "fancy")
    assert _recorded(tx, "fancy") == ("fancy[d]==1.0", ["d"], ["fancy-plugin==1.0"], 1)
    assert tx.shim("fancy") == "fancy 1.0 (fancy_extra fancy_plugin)"
    _verify_clean(tx)
    # The rolled-back generation's pin holds again: an upgrade stays within it.
    hidden.rename(tx.wheelhouse)
    out = tx("upgrade", "fancy").stdout
    assert "within its pin fancy[d]==1.0" in out, out
    assert tx.tool("fancy")["version"] == "1.0"


def _pages(tx: Tx) -> dict[str, str]:
    """Each page under the man dir: the version its text names, or "dangling"."""
    found = {}
    for rel in PAGES:
        path = tx.root / "man" / rel
        if os.path.lexists(path):
            found[rel] = path.read_text().split('"')[-2] if path.exists() else "dangling"
    return found


def test_man_pages_follow_the_generation(offline: Tx) -> None:
    tx = offline
    tx.install("txman==1.0")
    tx("upgrade", "txman@latest")
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 2.0")
    hidden = tx.wheelhouse.rename(tx.root / "hidden")
    tx("rollback", "txman")
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 1.0")
    env = tx.tool("txman")["environment"]
    assert os.readlink(tx.root / "man" / PAGES[0]) == f"{env}/share/man/{PAGES[0]}"
    _verify_clean(tx)
    # gc of every generation but the current: the pages point at the one kept.
    tx("gc", "txman", TXTOOL_KEEP_GENERATIONS="0")
    assert [g["generation"] for g in tx.tool("txman")["generations"]] == [1]
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 1.0")
    _verify_clean(tx)
    # An upgrade from the rolled-back generation with K=0 prunes the one the pages named:
    # they move to the new one, none is left dangling.
    hidden.rename(tx.wheelhouse)
    tx("upgrade", "txman@latest", TXTOOL_KEEP_GENERATIONS="0")
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 2.0")
    _verify_clean(tx)
    tx("uninstall", "txman")
    assert _pages(tx) == {}
    _verify_clean(tx)


def test_verify_checks_man_page_links(tx: Tx) -> None:
    tx.install("txman==1.0")
    man = tx.root / "man"
    (man / PAGES[0]).unlink()
    (man / PAGES[1]).unlink()
    (man / PAGES[1]).write_text("someone else's page\n")
    proc = tx("verify", expect=FAILED)
    lines = proc.stdout.splitlines()
    assert f"txman: man page {man / PAGES[0]} is missing; fix: txtool reinstall txman" in lines
    assert any(
        ln.startswith(f"txman: {man / PAGES[1]} is not txtool's")
        and ln.endswith("then txtool reinstall txman")
        for ln in lines
    ), lines
    (man / PAGES[1]).unlink()
    tx("reinstall", "txman")
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 1.0")
    _verify_clean(tx)


def test_a_directory_tool_rolls_back_offline_after_its_directory_is_gone(tx: Tx) -> None:
    proj = tx.root / "proj"
    write_project(proj, "txproj", "1.0", message="old code")
    tx.install("./proj")
    for version in ("2.0", "3.0"):
        write_project(proj, "txproj", version, message=f"code of {version}")
        tx("upgrade", "txproj", *tx.index)
        assert tx.shim("txproj") == f"code of {version}"
    shutil.rmtree(proj)
    shutil.rmtree(tx.wheelhouse.parent / "nothing", ignore_errors=True)
    out = tx("rollback", "txproj").stdout  # no index, no directory: the kept environment
    assert "rolled back txproj 3.0 -> 2.0 (generation 2)" in out, out
    assert tx.shim("txproj") == "code of 2.0"
    tx("rollback", "txproj", "--to", "1")
    assert tx.shim("txproj") == "old code"
    entry = tx.tool("txproj")
    assert entry["source"] == {"kind": "directory", "location": str(proj), "editable": False}
    _verify_clean(tx)
    gens = json.loads(tx("history", "txproj", "--generations", "--json").stdout)
    assert [(g["generation"], g["version"], g["current"]) for g in gens] == [
        (1, "1.0", True),
        (2, "2.0", False),
        (3, "3.0", False),
    ]
    rows = [ln.split() for ln in tx("history", "txproj", "--generations").stdout.splitlines()]
    assert [(r[:3], r[-1]) for r in rows] == [
        (["*", "1", "1.0"], gens[0]["environment"]),
        (["2", "2.0", rows[1][2]], gens[1]["environment"]),
        (["3", "3.0", rows[2][2]], gens[2]["environment"]),
    ]
    # Its source is gone: every rebuild from it says so in one line and changes nothing.
    before = tx.digest()
    for args in (
        ["upgrade", "txproj"],
        ["reinstall", "txproj"],
        ["reinstall", "--all"],
        ["inject", "txproj", "fancy-plugin"],
    ):
        line = tx.one_error(tx(*args, *tx.index, expect=USAGE))
        assert f"installed from {proj}, which is gone" in line, (args, line)
    assert tx.digest() == before  # refused before any operation: not even a journal record


def _gens(tx: Tx, name: str) -> list[int]:
    return [g["generation"] for g in tx.tool(name)["generations"]]


def test_reinstall_and_inject_keep_the_window(tx: Tx) -> None:
    tx.install("fancy<3")
    tx("reinstall", "fancy")
    tx("reinstall", "fancy")
    assert _gens(tx, "fancy") == [1, 2, 3]
    tx("inject", "fancy", "fancy-plugin")
    assert _gens(tx, "fancy") == [2, 3, 4]  # generation 1 fell out of the window of 2
    assert sorted(map(str, tx.envs("fancy"))) == sorted(
        g["environment"] for g in tx.tool("fancy")["generations"]
    )
    tx("uninject", "fancy", "fancy-plugin", TXTOOL_KEEP_GENERATIONS="1")
    assert _gens(tx, "fancy") == [4, 5]
    tx("reinstall", "fancy", TXTOOL_KEEP_GENERATIONS="0")
    assert _gens(tx, "fancy") == [6]
    assert len(tx.envs("fancy")) == 1
    _verify_clean(tx)


def test_rollback_after_reinstall_with_another_python_says_so(tx: Tx) -> None:
    tx.install("fancy<3")
    base = Path(tx.tool("fancy")["python"])
    other = tx.root / "other-python" / "python3"
    other.parent.mkdir()
    other.symlink_to(base)
    tx("reinstall", "fancy", "--python", str(other))
    assert tx.tool("fancy")["python"] == str(other)
    out = tx("rollback", "fancy").stdout
    assert f"Python {other} -> {base}" in out, out
    assert tx.tool("fancy")["python"] == str(base)
    data = json.loads(tx("rollback", "fancy", "--json").stdout)
    assert (data[0]["old_python"], data[0]["python"]) == (str(base), str(other))
    _verify_clean(tx)


def test_a_kept_generation_deleted_by_hand(tx: Tx) -> None:
    tx.install("txdemo==1.0")
    tx("upgrade", "txdemo@latest")
    (kept,) = [g for g in tx.tool("txdemo")["generations"] if not g["current"]]
    shutil.rmtree(kept["environment"])
    proc = tx("verify", expect=FAILED)
    assert (
        f"txdemo: kept generation 1 (1.0): environment {kept['environment']} is missing; "
        "fix: txtool gc txdemo" in proc.stdout.splitlines()
    ), proc.stdout
    before = tx.digest(journal=False)
    line = tx.one_error(tx("rollback", "txdemo", expect=FAILED))
    assert "generation 1 of txdemo" in line and "`txtool gc txdemo` forgets it" in line, line
    assert "missing" in tx("history", "txdemo", "--generations").stdout.splitlines()[0]
    assert tx.digest(journal=False) == before  # nothing changed: the current generation runs
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx("gc", "txdemo")
    assert _gens(tx, "txdemo") == [2]
    _verify_clean(tx)


def test_list_text_shows_spec_source_plugins_and_generation(tx: Tx) -> None:
    tx.install("fancy[d]<3", "--with", "fancy-plugin")
    tx("upgrade", "fancy<4")
    proj = tx.root / "proj"
    write_project(proj, "txproj", "1.0")
    tx.install("./proj")
    out = tx("list").stdout
    (fancy,) = [ln for ln in out.splitlines() if ln.startswith("fancy ")]
    assert "fancy[d]<4" in fancy and "fancy-plugin" in fancy and "generation 2" in fancy, out
    (txproj,) = [ln for ln in out.splitlines() if ln.startswith("txproj ")]
    assert str(proj) in txproj and "generation 1" in txproj, out


def test_a_page_kept_at_install_is_removed_after_a_rollback_linked_it(offline: Tx) -> None:
    """The pages a tool has are those the operation that made its generation current
    linked: a rollback may link a page its generation's own install had to leave alone."""
    tx = offline
    mine = tx.root / "man" / PAGES[0]
    mine.parent.mkdir(parents=True)
    mine.write_text("my own page\n")
    tx.install("txman==1.0")
    assert mine.read_text() == "my own page\n"
    mine.unlink()
    tx("upgrade", "txman@latest")
    tx("rollback", "txman")  # generation 1 again, and now both of its pages are linked
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 1.0")
    _verify_clean(tx)
    (tx.root / "man" / PAGES[0]).unlink()
    assert f"man page {mine} is missing" in tx("verify", expect=FAILED).stdout
    tx("reinstall", "txman")
    tx("uninstall", "txman")
    assert _pages(tx) == {}
    _verify_clean(tx)


def test_copied_pages_and_shims_follow_a_rollback(offline: Tx) -> None:
    tx = offline
    tx.install("txman==1.0", TXTOOL_SHIMS="copy")
    tx("upgrade", "txman@latest", TXTOOL_SHIMS="copy")
    tx("rollback", "txman", TXTOOL_SHIMS="copy")
    assert tx.shim("txman") == "txman 1.0"
    assert _pages(tx) == dict.fromkeys(PAGES, "txman 1.0")
    assert not (tx.root / "man" / PAGES[0]).is_symlink()
    _verify_clean(tx)
    (tx.root / "man" / PAGES[1]).write_text("edited\n")
    assert "is not txtool's (a file that is not a copy of" in tx("verify", expect=FAILED).stdout


@pytest.mark.parametrize("point", ["step.man-pages.removed", "step.man-pages.linked#2"])
@pytest.mark.parametrize("settle", ["resume", "revert"])
def test_a_rollback_killed_among_its_man_pages(offline: Tx, point: str, settle: str) -> None:
    tx = offline
    tx.install("txman==1.0")
    tx("upgrade", "txman@latest")
    tx.wheelhouse.rename(tx.root / "hidden")  # resume and revert need no index either
    tx("rollback", "txman", failpoints=f"{point}=kill", expect=-9)
    tx("resume", *(["--revert"] if settle == "revert" else []))
    want = "txman 1.0" if settle == "resume" else "txman 2.0"
    assert tx.shim("txman") == want
    assert _pages(tx) == dict.fromkeys(PAGES, want)
    _verify_clean(tx)
    tx("uninstall", "txman")
    assert _pages(tx) == {}


def test_rollback_across_an_inject_with_its_executables(offline: Tx) -> None:
    tx = offline
    tx.install("fancy[d]==1.0")
    tx("inject", "fancy", "fancy-extra", "--include-apps")
    assert tx.shim("fancy-extra-cli") == "fancy-extra-cli 1.0"
    tx.wheelhouse.rename(tx.root / "hidden")
    tx("rollback", "fancy")
    assert not os.path.lexists(tx.bin / "fancy-extra-cli")  # generation 1 does not expose it
    assert sorted(tx.tool("fancy")["executables"]) == ["fancy"]
    _verify_clean(tx)
    tx("rollback", "fancy")
    assert tx.shim("fancy-extra-cli") == "fancy-extra-cli 1.0"
    assert tx.tool("fancy")["executables_from"] == ["fancy-extra"]
    _verify_clean(tx)
