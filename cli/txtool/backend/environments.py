"""What a tool environment holds (read without running it) and which Python builds it."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..names import canonical
from .errors import BackendError

if TYPE_CHECKING:
    import importlib.metadata

_WINDOWS = sys.platform == "win32"


class Installed(msgspec.Struct, frozen=True):
    name: str  # canonical distribution name
    version: str
    console_scripts: dict[str, str] = {}  # name -> "module:attr"
    gui_scripts: dict[str, str] = {}
    # Executables shipped as files (wheel .data/scripts, e.g. ruff's binary): name -> path.
    data_scripts: dict[str, str] = {}


def env_python(env: Path) -> Path:
    env = Path(env)
    return env / "Scripts" / "python.exe" if _WINDOWS else env / "bin" / "python"


def script_path(env: Path, name: str, gui: bool = False) -> Path:
    """Where the environment's launcher for an entry point lives (gui and console share a dir)."""
    env = Path(env)
    return env / "Scripts" / f"{name}.exe" if _WINDOWS else env / "bin" / name


def _site_packages(env: Path) -> list[Path]:
    if _WINDOWS:
        candidates = [env / "Lib" / "site-packages"]
    else:
        candidates = sorted(env.glob("lib/python*/site-packages"))
        candidates += sorted(env.glob("lib/pypy*/site-packages"))
    return [p for p in candidates if p.is_dir()]


def _dist_infos(env: Path, dist: str) -> list[Path]:
    """The environment's ``*.dist-info`` directories of ``dist`` (a canonical name), found
    by a directory listing: no metadata is read, nothing is imported."""
    found = []
    for site in _site_packages(env):
        for entry in os.listdir(site):
            stem, dot, suffix = entry.rpartition(".")
            if dot and suffix == "dist-info" and canonical(stem.partition("-")[0]) == dist:
                found.append(site / entry)
    return found


def _dist_info_versions(env: Path, dist: str) -> set[str]:
    """The versions ``dist``'s ``*.dist-info`` directory names say (``NAME-VERSION``)."""
    return {p.name.removesuffix(".dist-info").partition("-")[2] for p in _dist_infos(env, dist)}


def _interpreter_problem(env: Path) -> str | None:
    """Why the environment's interpreter cannot start, from what a stat shows: its link
    (or copy) resolves to no executable file, or pyvenv.cfg's ``home`` is gone (the base
    interpreter was uninstalled or moved)."""
    python = env_python(env)
    target = Path(os.path.realpath(python))
    if not target.is_file() or not os.access(target, os.X_OK):
        return f"its Python {python} does not start (its target {target} is missing)"
    try:
        cfg = (env / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"its Python {python} does not start ({env / 'pyvenv.cfg'} is missing)"
    for line in cfg.splitlines():
        key, eq, value = line.partition("=")
        if eq and key.strip() == "home" and not Path(value.strip()).is_dir():
            return f"its Python {python} does not start (its home {value.strip()} is missing)"
    return None


def env_damage(env: Path, dist: str, version: str) -> str | None:
    """What is broken in a tool's environment, found without running it or reading any
    metadata: the environment is missing, ``dist`` is missing or at another version than
    ``version``, or its interpreter is dead. Costs a few stats when all is well; only a
    doubtful version (a dist-info named otherwise) reads the metadata."""
    env = Path(env)
    if not env.is_dir():
        return f"environment {env} is missing"
    dist = canonical(dist)
    if version not in _dist_info_versions(env, dist):
        try:
            installed = inspect_env(env, dist)
        except BackendError:
            return f"{dist} is not installed in {env}"
        if installed.version != version:
            return f"environment has {installed.version}, journal says {version}"
    return _interpreter_problem(env)


def distributions(env: Path) -> dict[str, importlib.metadata.Distribution]:
    """Every distribution installed in the environment, by canonical name (read, not run)."""
    import importlib.metadata  # here: ~20 ms of imports, paid only by what reads an env

    paths = [str(p) for p in _site_packages(Path(env))]
    found = importlib.metadata.distributions(path=paths) if paths else ()
    return {canonical(d.metadata["Name"]): d for d in found if d.metadata["Name"]}


def inspect_env(env: Path, dist: str) -> Installed:
    """Read an installed distribution's version and entry points without running the env.

    Read from its ``.dist-info`` directory alone (``METADATA``'s ``Version``,
    ``entry_points.txt``, ``RECORD``; the formats of the binary distribution spec), not
    through importlib.metadata, which costs some 9 ms of imports and parses the metadata of
    every distribution in the environment to find one."""
    env = Path(env)
    dist = canonical(dist)
    found = _dist_infos(env, dist)
    if not found:
        raise BackendError(f"{dist} is not installed in {env}", kind="not-found")
    if len(found) > 1:
        names = ", ".join(sorted(p.name for p in found))
        raise BackendError(f"{env} holds {dist} more than once ({names})", kind="failed")
    info = found[0]
    version = _metadata_version(info)
    if version is None:
        raise BackendError(f"{info / 'METADATA'} names no version", kind="failed")
    eps = _entry_points(info)
    console, gui = eps.get("console_scripts", {}), eps.get("gui_scripts", {})
    return Installed(
        name=dist,
        version=version,
        console_scripts=console,
        gui_scripts=gui,
        data_scripts=_data_scripts(env, info, set(console) | set(gui)),
    )


def _metadata_version(info: Path) -> str | None:
    """``Version`` of the ``METADATA`` headers (which end at the first empty line)."""
    try:
        text = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if not line.strip():
            break
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() == "version":
            return value.strip()
    return None


def _entry_points(info: Path) -> dict[str, dict[str, str]]:
    """``entry_points.txt``: group -> name -> "module:attr" (an INI file without
    interpolation or continuation lines; names kept verbatim, validated by the caller)."""
    try:
        text = (info / "entry_points.txt").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    groups: dict[str, dict[str, str]] = {}
    group: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = groups.setdefault(line[1:-1].strip(), {})
        elif group is not None:
            name, eq, value = line.partition("=")
            if eq:
                group[name.strip()] = value.strip()
    return groups


def _data_scripts(env: Path, info: Path, skip: set[str]) -> dict[str, str]:
    """Files the distribution put into the environment's scripts directory itself (its
    ``RECORD`` names them, relative to site-packages)."""
    import csv

    scripts_dir = script_path(env, "x").parent.resolve()
    found = {}
    try:
        with open(info / "RECORD", encoding="utf-8", newline="") as f:
            rows = [row[0] for row in csv.reader(f) if row]
    except FileNotFoundError:
        return {}
    for row in rows:
        path = (info.parent / row).resolve()
        if path.parent != scripts_dir:
            continue
        name = path.stem if _WINDOWS and path.suffix.lower() == ".exe" else path.name
        if name not in skip:
            found[name] = str(script_path(env, name) if not _WINDOWS else path)
    return found


def _is_executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def find_python(spec: str | None) -> str:
    """Absolute path of the interpreter tool environments are built from."""
    if spec is None:
        # Not txtool's own venv python: tool envs must survive txtool's venv being removed.
        base = getattr(sys, "_base_executable", None) or sys.executable
        for cand in (base, sys.executable):
            if cand and _is_executable(Path(cand)):
                return os.path.abspath(cand)
        raise BackendError("cannot find the Python interpreter running txtool", kind="python")
    spec = spec.strip()
    if not spec:
        raise BackendError("empty Python interpreter specification", kind="python")
    looks_like_path = os.sep in spec or (os.altsep is not None and os.altsep in spec)
    if looks_like_path:
        p = Path(spec).expanduser()
        if not p.exists():
            raise BackendError(f"Python interpreter not found: {spec}", kind="python")
        if not _is_executable(p):
            raise BackendError(f"Python interpreter is not executable: {spec}", kind="python")
        return os.path.abspath(p)
    # "3.12" -> python3.12; "python3.12", "pypy3" -> looked up as given.
    name = f"python{spec}" if re.fullmatch(r"\d+(\.\d+)*", spec) else spec
    found = shutil.which(name)
    if found is None:
        raise BackendError(f"Python interpreter not found on PATH: {name}", kind="python")
    return os.path.abspath(found)
