"""Seeing what would change (issue 9): ``list --outdated`` names the version each tool
would get within its recorded spec, and ``--dry-run`` shows ``from -> to`` for every tool;
both resolve without writing a record or changing a file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from txcli import Tx


def _releases(tx: Tx, *versions: str) -> Path:
    """A find-links directory holding only these releases of txdemo (and its helper)."""
    links = tx.root / "links"
    links.mkdir(exist_ok=True)
    for version in versions:
        for wheel in tx.wheelhouse.glob(f"txdemo*-{version}-*.whl"):
            shutil.copy(wheel, links)
    return links


def test_list_outdated_names_the_newer_version_and_changes_nothing(tx: Tx) -> None:
    links = _releases(tx, "1.0")
    tx("install", "txdemo", "--no-index", "--find-links", str(links))
    tx("install", "multitool==2.0", *tx.index)
    assert "every tool is up to date" in tx("list", "--outdated").stdout
    _releases(tx, "2.0")  # a new release appears where txdemo came from
    before = tx.digest()
    assert tx("list", "--outdated").stdout.splitlines() == ["txdemo 1.0 -> 2.0"]
    (entry,) = json.loads(tx("list", "--outdated", "--json").stdout)
    assert (entry["name"], entry["version"], entry["latest"]) == ("txdemo", "1.0", "2.0")
    assert tx.digest() == before  # not a record written, not a file touched
    tx("upgrade", "txdemo")
    assert "every tool is up to date" in tx("list", "--outdated").stdout


def test_list_outdated_says_which_tool_it_cannot_check(tx: Tx) -> None:
    links = _releases(tx, "1.0")
    tx("install", "txdemo", "--no-index", "--find-links", str(links))
    shutil.rmtree(links)
    proc = tx("list", "--outdated", expect=1)
    assert "cannot check txdemo" in tx.one_error(proc)


def test_dry_run_shows_from_and_to_for_every_tool(tx: Tx) -> None:
    links = _releases(tx, "1.0")
    tx("install", "txdemo", "--no-index", "--find-links", str(links))
    tx("install", "multitool==2.0", *tx.index)
    _releases(tx, "2.0")
    before = tx.digest()
    out = tx("upgrade", "--all", "--dry-run").stdout
    assert "upgrade multitool: 2.0 (up to date)\n" in out
    assert "upgrade txdemo: 1.0 -> 2.0\n" in out
    plans = json.loads(tx("upgrade", "--all", "--dry-run", "--json").stdout)
    assert [(p["tool"], p["from"], p["to"]) for p in plans] == [
        ("multitool", "2.0", "2.0"),
        ("txdemo", "1.0", "2.0"),
    ]
    out = tx("install", "slowtool", "--dry-run", *tx.index).stdout
    assert "install slowtool: (not installed) -> 2.0\n" in out
    assert "uninstall txdemo: 1.0 -> (removed)\n" in tx("uninstall", "txdemo", "--dry-run").stdout
    assert tx.digest() == before


def test_a_new_commit_is_outdated_and_a_directory_is_not(tx: Tx) -> None:
    from txprojects import git_commit, write_project

    repo = write_project(tx.root / "repo", "txvcs", "1.0")
    git_commit(repo)
    write_project(tx.root / "proj", "txproj", "1.0")
    tx.install(f"git+{repo.as_uri()}")
    tx.install("./proj")
    assert "every tool is up to date" in tx("list", "--outdated").stdout
    write_project(repo, "txvcs", "2.0")
    commit = git_commit(repo, "2.0")
    assert tx("list", "--outdated").stdout.splitlines() == [f"txvcs 1.0 -> {commit[:12]}"]
