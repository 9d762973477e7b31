"""Sources other than an index (issue 9): a project directory, a wheel, an sdist, a direct
URL, a VCS repository and an editable project, each built here offline, each through the
same journaled steps: install, upgrade (back to the recorded source), reinstall, verify,
uninstall, and a SIGKILL in the middle of the install resumed and reverted."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from txcli import Tx
from txprojects import git_commit, served, write_project, write_sdist

from txtool.cli import FAILED, INCOMPLETE, USAGE
from txtool.wheelhouse import build_wheel


@dataclass
class Source:
    kind: str
    spec: list[str]  # what the user types after `install`
    name: str
    location: str  # what `list --json` records as the source's location
    # Puts VERSION (and MESSAGE, what the executable prints) at the same place.
    change: Callable[[str, str], None]
    # An upgrade rebuilds what is there now: a new version for a directory or a repository,
    # the same version rebuilt for a file or a URL.
    upgraded_version: str
    editable: bool = False


def _wheel(dist: Path, name: str, version: str, message: str) -> Path:
    mod = name.replace("-", "_")
    return build_wheel(
        dist,
        name,
        version,
        console_scripts={name: f"{mod}:main"},
        files={f"{mod}/__init__.py": f"def main() -> None:\n    print({message!r})\n"},
    )


def _sources(root: Path, url: str) -> dict[str, Source]:
    proj, repo, dist = root / "proj", root / "repo", root / "dist"
    write_project(proj, "txproj", "1.0")
    write_project(repo, "txvcs", "1.0")
    git_commit(repo)
    sdist_project = write_project(root / "sdist-src", "txsdist", "1.0")
    sdist = write_sdist(sdist_project, dist)
    wheel = _wheel(dist, "txwheel", "1.0", "txwheel 1.0")
    served_wheel = _wheel(root / "www", "txurl", "1.0", "txurl 1.0")

    def directory(version: str, message: str) -> None:
        write_project(proj, "txproj", version, message=message)

    def vcs(version: str, message: str) -> None:
        write_project(repo, "txvcs", version, message=message)
        git_commit(repo, version)

    def sdist_again(version: str, message: str) -> None:
        write_project(sdist_project, "txsdist", "1.0", message=message)
        write_sdist(sdist_project, dist)

    def wheel_again(version: str, message: str) -> None:
        _wheel(dist, "txwheel", "1.0", message)

    def url_again(version: str, message: str) -> None:
        _wheel(root / "www", "txurl", "1.0", message)

    return {
        "directory": Source("directory", ["./proj"], "txproj", str(proj), directory, "2.0"),
        "editable": Source(
            "directory", ["-e", "./proj"], "txproj", str(proj), directory, "2.0", editable=True
        ),
        "vcs": Source("vcs", [f"git+{repo.as_uri()}"], "txvcs", f"git+{repo.as_uri()}", vcs, "2.0"),
        "sdist": Source("sdist", [str(sdist)], "txsdist", str(sdist), sdist_again, "1.0"),
        "wheel": Source("wheel", [str(wheel)], "txwheel", str(wheel), wheel_again, "1.0"),
        "url": Source(
            "url",
            [f"txurl @ {url}{served_wheel.name}"],
            "txurl",
            f"{url}{served_wheel.name}",
            url_again,
            "1.0",
        ),
    }


@pytest.fixture
def www(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "www").mkdir()
    with served(tmp_path / "www") as url:
        yield url


@pytest.fixture(params=["directory", "editable", "vcs", "sdist", "wheel", "url"])
def source(request: pytest.FixtureRequest, tx: Tx, www: str) -> Source:
    return _sources(tx.root, www)[request.param]


def _recorded(tx: Tx, src: Source) -> dict[str, object]:
    entry = tx.tool(src.name)
    assert entry["source"] == {
        "kind": src.kind,
        "location": src.location,
        "editable": src.editable,
    }
    return entry


def test_install_upgrade_reinstall_verify_uninstall(tx: Tx, source: Source) -> None:
    src = source
    proc = tx.install(*src.spec)
    assert f"installed {src.name} 1.0" in proc.stdout
    assert tx.shim(src.name) == f"{src.name} 1.0"
    _recorded(tx, src)
    tx.assert_clean()

    # Upgrade goes back to where the tool came from, and builds what is there now.
    src.change(src.upgraded_version, f"{src.name} {src.upgraded_version} new")
    if src.editable:  # an editable install runs the source tree itself, even before upgrade
        assert tx.shim(src.name) == f"{src.name} {src.upgraded_version} new"
    proc = tx("upgrade", src.name, *tx.index)
    moved = "" if src.upgraded_version == "1.0" else f" -> {src.upgraded_version}"
    assert f"upgraded {src.name} 1.0{moved}\n" in proc.stdout  # no "1.0 -> 1.0"
    assert tx.shim(src.name) == f"{src.name} {src.upgraded_version} new"
    _recorded(tx, src)
    tx.assert_clean()

    # reinstall rebuilds from the recorded source as it is now; so does install --force.
    src.change(src.upgraded_version, f"{src.name} reinstalled")
    tx("reinstall", src.name)
    assert tx.shim(src.name) == f"{src.name} reinstalled"
    _recorded(tx, src)
    src.change(src.upgraded_version, f"{src.name} forced")
    tx.install("--force", *src.spec)
    assert tx.shim(src.name) == f"{src.name} forced"
    _recorded(tx, src)
    tx.assert_clean()

    tx("uninstall", src.name)
    assert not (tx.bin / src.name).exists()
    assert tx.list_json() == []
    tx.assert_clean()


def test_sigkill_during_install_is_resumed_and_reverted(tx: Tx, source: Source) -> None:
    src = source
    proc = tx.install(*src.spec, failpoints="step.copy-shims.copied=kill", expect=None)
    assert proc.returncode == -signal.SIGKILL
    assert (tx.bin / src.name).exists()  # killed after the shim was placed
    tx("status", expect=INCOMPLETE)
    tx("resume", "--revert")
    assert _files(tx) == []  # no environment, no shim: only txtool's own directories
    assert tx.list_json() == []
    tx.assert_clean()

    proc = tx.install(*src.spec, failpoints="step.install-env.installed=kill", expect=None)
    assert proc.returncode == -signal.SIGKILL
    tx("resume")  # forward, from the recorded source and resolution
    assert tx.shim(src.name) == f"{src.name} 1.0"
    _recorded(tx, src)
    tx.assert_clean()


def _files(tx: Tx) -> list[str]:
    """Everything but directories in the home (less the journal) and the bin dir."""
    return [p for p, kind in tx.digest(journal=False).items() if kind not in ("dir", "absent")]


@pytest.mark.parametrize("kind", ["directory", "editable", "vcs", "sdist"])
def test_the_pip_backend_installs_and_upgrades_each_source(tx: Tx, www: str, kind: str) -> None:
    src = _sources(tx.root, www)[kind]
    tx.install(*src.spec, "--backend", "pip")
    assert tx.shim(src.name) == f"{src.name} 1.0"
    _recorded(tx, src)
    src.change(src.upgraded_version, "rebuilt by pip")
    tx("upgrade", src.name, *tx.index)
    assert tx.shim(src.name) == "rebuilt by pip"
    assert tx.tool(src.name)["options"]["backend"] == "pip"
    tx.assert_clean()


def test_a_bare_url_and_an_editable_project_are_named_from_their_metadata(tx: Tx, www: str) -> None:
    srcs = _sources(tx.root, www)
    url = srcs["url"].location
    proc = tx.install(url)  # no name given: the wheel's file name says it
    assert "installed txurl 1.0" in proc.stdout
    assert tx.tool("txurl")["requirement"] == f"txurl @ {url}"
    tx.install(f"txvcs @ {srcs['vcs'].location}")
    assert tx.tool("txvcs")["source"]["kind"] == "vcs"
    assert tx.tool("txvcs")["pins"][0].startswith(f"txvcs @ {srcs['vcs'].location}@")


def test_upgrade_of_a_repository_at_the_same_commit_is_up_to_date(tx: Tx, www: str) -> None:
    src = _sources(tx.root, www)["vcs"]
    tx.install(*src.spec)
    assert "up to date" in tx("upgrade", src.name, *tx.index).stdout
    tx.assert_clean()


def test_a_source_that_is_gone_fails_upgrade_and_the_tool_keeps_working(tx: Tx, www: str) -> None:
    srcs = _sources(tx.root, www)
    for src in (srcs["directory"], srcs["vcs"]):
        tx.install(*src.spec)
    before = tx.digest()
    shutil.rmtree(tx.root / "proj")
    line = tx.one_error(tx("upgrade", "txproj", *tx.index, expect=USAGE))
    assert str(tx.root / "proj") in line and "gone" in line
    assert tx.digest() == before  # refused before any operation
    shutil.rmtree(tx.root / "repo")
    line = tx.one_error(tx("upgrade", "txvcs", *tx.index, expect=FAILED))
    assert "txvcs" in line and "undone" in line
    for name in ("txproj", "txvcs"):
        assert tx.shim(name) == f"{name} 1.0"
        assert tx.tool(name)["version"] == "1.0"
    tx.assert_clean()


def test_name_at_version_and_name_at_latest(tx: Tx) -> None:
    tx.install("txdemo@1.0")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert tx.tool("txdemo")["requirement"] == "txdemo==1.0"
    tx("upgrade", "txdemo@latest", *tx.index)
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    tx("upgrade", "txdemo@1.0", *tx.index)
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    line = tx.one_error(tx.install("txdemo@newest", expect=USAGE))
    assert "'latest' or a version" in line


def test_latest_moves_a_directory_tool_to_the_index(tx: Tx, www: str) -> None:
    src = _sources(tx.root, www)["directory"]
    tx.install(*src.spec)
    index = tx.root / "index"
    _wheel(index, "txproj", "3.0", "txproj 3.0 from the index")
    tx("upgrade", "txproj@latest", "--no-index", "--find-links", str(index))
    assert tx.shim("txproj") == "txproj 3.0 from the index"
    assert tx.tool("txproj")["source"] == {"kind": "index", "location": None, "editable": False}


BAD_SOURCES = [
    pytest.param(["./nothere"], USAGE, "no such file or directory", id="missing-path"),
    pytest.param(["./notaproject"], USAGE, "is not a Python project", id="not-a-project"),
    pytest.param(["./notes.txt"], USAGE, "'./notes.txt'", id="not-a-wheel"),
    pytest.param(["-e", "txdemo"], USAGE, "--editable needs a local project", id="editable-name"),
    pytest.param(
        ["txdemo @ https://u:pw@127.0.0.1:9/txdemo-1.0-py3-none-any.whl"],
        USAGE,
        "netrc",
        id="password-in-url",
    ),
    pytest.param(["txdemo @ ftp://h/x.whl"], USAGE, "file://", id="scheme"),
    # Found by the resolver, before any operation: nothing is written, not even a record.
    pytest.param(["git+file:///nonexistent/repo"], FAILED, "nonexistent", id="no-repository"),
]


@pytest.mark.parametrize(("argv", "code", "needle"), BAD_SOURCES)
def test_a_bad_source_is_one_line_and_changes_nothing(
    txdemo1: Tx, argv: list[str], code: int, needle: str
) -> None:
    tx = txdemo1
    (tx.root / "notaproject").mkdir()
    (tx.root / "notes.txt").write_text("hello\n")
    before = tx.digest()
    line = tx.one_error(tx.install(*argv, expect=code))
    assert needle in line and ":pw@" not in line
    assert tx.digest() == before
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_an_unreachable_url_fails_in_its_operation_and_is_undone(txdemo1: Tx) -> None:
    tx = txdemo1
    before = tx.digest(journal=False)
    proc = tx.install("http://127.0.0.1:9/gone-1.0-py3-none-any.whl", expect=FAILED)
    assert "gone" in tx.one_error(proc)
    assert tx.digest(journal=False) == before
    tx.assert_clean()
