"""A real PEP 503 package index of the test wheelhouse on 127.0.0.1, for tests that need uv
and pip to talk to a server: behind basic auth (credentials tests), or holding a download open
(a child kept busy in its window for a signal)."""

from __future__ import annotations

import base64
import html
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def cmdlines() -> dict[int, str]:
    """Every process's command line, as any local user reads it (``ps``)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                raw = (proc / "cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            found[int(proc.name)] = raw.replace(b"\0", b" ").decode("utf-8", "replace")
    return found


class Index:
    """The wheelhouse as an index. ``auth``: (user, password) every request must carry.
    ``hold(path)``: True makes that request wait until :meth:`release` (or 60 s).
    ``on_request(path)`` runs while the client waits on the answer."""

    def __init__(
        self,
        wheelhouse: Path,
        *,
        auth: tuple[str, str] | None = None,
        hold: Callable[[str], bool] = lambda path: False,
        on_request: Callable[[str], None] = lambda path: None,
    ) -> None:
        self.wheelhouse = wheelhouse
        self.auth = auth
        self.authorized = 0
        self.held = threading.Event()  # set once a request is being held
        self._released = threading.Event()
        index = self
        token = base64.b64encode(":".join(auth).encode()).decode() if auth else None

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                on_request(self.path)
                if token is not None and self.headers.get("Authorization") != f"Basic {token}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="test"')
                    self.end_headers()
                    return
                index.authorized += 1
                if hold(self.path):
                    index.held.set()
                    index._released.wait(60)
                body, ctype = index.page(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", ctype)
                if body is not None:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body is not None and not head:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        cred = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"http://{cred}127.0.0.1:{self.server.server_address[1]}/simple/"

    def page(self, path: str) -> tuple[bytes | None, str]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts[:1] == ["files"] and len(parts) == 2:
            f = self.wheelhouse / parts[1]
            return (f.read_bytes() if f.is_file() else None), "application/octet-stream"
        if parts[:1] == ["simple"] and len(parts) == 2:
            links = [
                f'<a href="/files/{html.escape(w.name)}">{html.escape(w.name)}</a>'
                for w in sorted(self.wheelhouse.glob("*.whl"))
                if w.name.split("-")[0].replace("_", "-").lower() == parts[1]
            ]
            if links:
                return ("<html><body>" + "".join(links) + "</body></html>").encode(), "text/html"
        return None, "text/html"

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
