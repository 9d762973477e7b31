"""Sources the tests build offline: a local project with an in-tree PEP 517 backend (no build
tool to download), its sdist, a ``git`` repository of it, and a served directory for direct
URLs. Each tool's executable prints ``NAME VERSION``, so a test sees which build runs."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# A real build backend (PEP 517 and PEP 660), in the project itself (``backend-path``): uv and
# pip build it in isolation without fetching setuptools. Name and version come from the
# project's pyproject.toml, its module from the source tree, read at build time.
_BACKEND = """
import os, tomllib, zipfile

def _project():
    with open("pyproject.toml", "rb") as f:
        p = tomllib.load(f)["project"]
    return p["name"], p["version"], p.get("dependencies", []), p.get("scripts", {})

def _norm(name):
    return name.replace("-", "_").lower()

def _metadata():
    name, version, deps, _ = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    return "\\n".join(lines + [f"Requires-Dist: {d}" for d in deps]) + "\\n"

def _dist_info(directory):
    name, version, _, _ = _project()
    info = f"{_norm(name)}-{version}.dist-info"
    os.makedirs(os.path.join(directory, info), exist_ok=True)
    with open(os.path.join(directory, info, "METADATA"), "w") as f:
        f.write(_metadata())
    return info

def get_requires_for_build_wheel(config_settings=None):
    return []

get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    return _dist_info(directory)

prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel

def _wheel(directory, editable):
    name, version, _, scripts = _project()
    info = f"{_norm(name)}-{version}.dist-info"
    filename = f"{_norm(name)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w") as z:
        if editable:
            z.writestr(f"_{_norm(name)}_editable.pth", os.path.abspath("src") + "\\n")
        else:
            for root, _, files in os.walk("src"):
                for f in files:
                    if f.endswith(".py"):
                        path = os.path.join(root, f)
                        z.write(path, os.path.relpath(path, "src"))
        z.writestr(f"{info}/METADATA", _metadata())
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
        eps = "".join(f"{k} = {v}\\n" for k, v in scripts.items())
        z.writestr(f"{info}/entry_points.txt", "[console_scripts]\\n" + eps)
        z.writestr(f"{info}/RECORD", "")
    return filename

def build_wheel(directory, config_settings=None, metadata_directory=None):
    return _wheel(directory, editable=False)

def build_editable(directory, config_settings=None, metadata_directory=None):
    return _wheel(directory, editable=True)
"""


def _module(name: str) -> str:
    return name.replace("-", "_").lower()


def write_project(root: Path, name: str, version: str, *, message: str | None = None) -> Path:
    """A project directory (created or rewritten) whose executable ``NAME`` prints
    ``NAME VERSION`` (or ``message``)."""
    mod = _module(name)
    (root / "src" / mod).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        "[build-system]\nrequires = []\nbuild-backend = 'txbackend'\nbackend-path = ['.']\n\n"
        f"[project]\nname = '{name}'\nversion = '{version}'\n\n"
        f"[project.scripts]\n{name} = '{mod}:main'\n"
    )
    (root / "txbackend.py").write_text(_BACKEND)
    text = message or f"{name} {version}"
    (root / "src" / mod / "__init__.py").write_text(f"def main() -> None:\n    print({text!r})\n")
    return root


def write_sdist(project: Path, outdir: Path) -> Path:
    """``NAME-VERSION.tar.gz`` of ``project``, as a build frontend would make it."""
    import tomllib

    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    base = f"{_module(meta['name'])}-{meta['version']}"
    outdir.mkdir(parents=True, exist_ok=True)
    sdist = outdir / f"{base}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for path in sorted(project.rglob("*")):
            if path.is_file() and ".git" not in path.parts and "__pycache__" not in path.parts:
                tar.add(path, f"{base}/{path.relative_to(project)}")
        pkg_info = f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        tar.addfile(info, io.BytesIO(pkg_info.encode()))
    return sdist


_GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git_commit(repo: Path, message: str = "commit") -> str:
    """Commit everything in ``repo`` (``git init`` first if needed); return the commit id."""

    def git(*args: str) -> str:
        env = os.environ | _GIT_ENV
        out = subprocess.run(
            ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    if not (repo / ".git").exists():
        git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", message)
    return git("rev-parse", "HEAD")


@contextmanager
def served(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP on 127.0.0.1; yields the base URL (``http://.../``)."""
    handler = partial(_Quiet, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass
