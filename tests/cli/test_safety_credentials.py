"""An index password is never on a child's command line, in the journal or in any output
(issue 7.3). A real index on 127.0.0.1 that demands basic auth; while uv or pip talks to it,
every process's /proc/PID/cmdline is read, as any local user can (``ps``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from txcli import Tx
from txindex import Index, cmdlines

from txtool.cli import FAILED

USER, PASSWORD = "alice", "s3cret-Pa55"


class _Leaks:
    """Command lines holding the password, read while the client waits on the index; txtool's
    own is left out (there the user chose to type it)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def __call__(self, path: str) -> None:
        self.found += [c for c in cmdlines().values() if PASSWORD in c and " -m txtool " not in c]


@pytest.fixture
def leaks() -> _Leaks:
    return _Leaks()


@pytest.fixture
def index(wheelhouse: Path, leaks: _Leaks) -> Iterator[Index]:
    served = Index(wheelhouse, auth=(USER, PASSWORD), on_request=leaks)
    yield served
    served.close()


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_password_reaches_the_index_but_no_command_line_journal_or_output(
    tx: Tx, index: Index, leaks: _Leaks, backend: str
) -> None:
    tx.env["UV_NO_CACHE"] = "1"  # every run asks the index again
    tx.env["PIP_NO_CACHE_DIR"] = "1"
    proc = tx("install", "txdemo==1.0", "--backend", backend, "--index-url", index.url)
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert index.authorized > 0  # the secret did reach the index, through the environment
    assert leaks.found == []
    shown = [proc.stdout + proc.stderr]
    shown += [tx(*cmd).stdout for cmd in (["list", "--json"], ["journal", "show"], ["history"])]
    shown += [tx("upgrade", "txdemo@latest", "--dry-run", "--json").stdout]
    for text in shown:
        assert PASSWORD not in text
    assert f"{USER}:****@" in shown[1]
    for f in tx.journal.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f

    # A later upgrade never saw the password: without it the index refuses, in one line...
    line = tx.one_error(tx("upgrade", "txdemo@latest", expect=FAILED))
    assert PASSWORD not in line
    assert tx.tool("txdemo")["version"] == "1.0"
    # ...and given again through the backend's own variable, it is used, still off any argv.
    var = "UV_INDEX_URL" if backend == "uv" else "PIP_INDEX_URL"
    leaks.found.clear()
    tx("upgrade", "txdemo@latest", **{var: index.url})
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert leaks.found == []


def test_find_links_with_a_password_is_refused(tx: Tx) -> None:
    before = tx.digest()
    proc = tx("install", "txdemo", "--find-links", f"https://{USER}:{PASSWORD}@h/w", expect=2)
    line = tx.one_error(proc)
    assert PASSWORD not in line and "netrc" in line
    assert tx.digest() == before
