"""An index password is never on a child's command line, in the journal or in any output
(issue 7.3). A real index on 127.0.0.1 that demands basic auth; while uv or pip talks to it,
every process's /proc/PID/cmdline is read, as any local user can (``ps``)."""

from __future__ import annotations

import base64
import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Tx

from txtool.cli import FAILED

USER, PASSWORD = "alice", "s3cret-Pa55"


def _cmdlines() -> list[str]:
    """Every command line but txtool's own (where the user chose to type the URL)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue  # gone meanwhile
    return [c for c in found if " -m txtool " not in c]


class _Index:
    """A PEP 503 index of the test wheelhouse behind basic auth."""

    def __init__(self, wheelhouse: Path) -> None:
        self.wheelhouse = wheelhouse
        self.leaks: list[str] = []
        self.authorized = 0
        self.refused = 0
        index = self
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                # The client is alive and waiting on us: read what `ps` shows right now.
                index.leaks += [c for c in _cmdlines() if PASSWORD in c]
                if self.headers.get("Authorization") != f"Basic {token}":
                    index.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="test"')
                    self.end_headers()
                    return
                index.authorized += 1
                body, ctype = index.page(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", ctype)
                self.end_headers()
                if body is not None and not head:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.server.server_address[1]}/simple/"

    def page(self, path: str) -> tuple[bytes | None, str]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:1] == ["files"] and len(parts) == 2:
            f = self.wheelhouse / parts[1]
            return (f.read_bytes() if f.is_file() else None), "application/octet-stream"
        if parts[:1] == ["simple"] and len(parts) == 2:
            want = parts[1]
            links = [
                f'<a href="/files/{html.escape(w.name)}">{html.escape(w.name)}</a>'
                for w in sorted(self.wheelhouse.glob("*.whl"))
                if w.name.split("-")[0].replace("_", "-").lower() == want
            ]
            if links:
                return ("<html><body>" + "".join(links) + "</body></html>").encode(), "text/html"
        return None, "text/html"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index(wheelhouse: Path) -> Iterator[_Index]:
    served = _Index(wheelhouse)
    yield served
    served.close()


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_password_reaches_the_index_but_no_command_line_journal_or_output(
    tx: Tx, index: _Index, backend: str
) -> None:
    tx.env["UV_NO_CACHE"] = "1"  # every run asks the index again
    tx.env["PIP_NO_CACHE_DIR"] = "1"
    proc = tx("install", "txdemo==1.0", "--backend", backend, "--index-url", index.url)
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    assert index.authorized > 0  # the secret did reach the index, through the environment
    assert index.leaks == []
    shown = [proc.stdout + proc.stderr]
    shown += [tx(*cmd).stdout for cmd in (["list", "--json"], ["journal", "show"], ["history"])]
    shown += [tx("upgrade", "txdemo", "--dry-run", "--json").stdout]
    for text in shown:
        assert PASSWORD not in text
    assert f"{USER}:****@" in shown[1]
    for f in tx.journal.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f

    # A later upgrade never saw the password: without it the index refuses, in one line...
    line = tx.one_error(tx("upgrade", "txdemo", expect=FAILED))
    assert PASSWORD not in line
    assert tx.tool("txdemo")["version"] == "1.0"
    # ...and given again through the backend's own variable, it is used, still off any argv.
    var = "UV_INDEX_URL" if backend == "uv" else "PIP_INDEX_URL"
    index.leaks.clear()
    tx("upgrade", "txdemo", **{var: index.url})
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert index.leaks == []


def test_find_links_with_a_password_is_refused(tx: Tx) -> None:
    before = tx.digest()
    proc = tx("install", "txdemo", "--find-links", f"https://{USER}:{PASSWORD}@h/w", expect=2)
    line = tx.one_error(proc)
    assert PASSWORD not in line and "netrc" in line
    assert tx.digest() == before
