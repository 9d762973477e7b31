"""Resolve and install Python tools by driving uv (preferred) or pip.

txtool writes no resolver and no installer: this module turns a requirement into exact pins and
puts exactly those pins into a fresh environment, mapping the tools' errors to a few kinds the
CLI can explain. All subprocesses go through `anyio.run_process` (asyncio and trio).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

import anyio
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "Backend",
    "BackendError",
    "IndexOptions",
    "Installed",
    "PipBackend",
    "UvBackend",
    "env_python",
    "find_python",
    "get_backend",
    "inspect_env",
    "script_path",
]

_WINDOWS = sys.platform == "win32"


# --------------------------------------------------------------------------- secrets

MASK = "****"

# Masked URL -> the URL with its password, for this process only: the journal and every
# output hold the masked form; a child gets the real one through its environment.
_SECRETS: dict[str, str] = {}


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``****`` (remembered for this process's
    children); a URL without a password is returned as it is."""
    parts = urlsplit(url)
    if parts.password is None or parts.password == MASK:
        return url
    host = parts.netloc.rpartition("@")[2]
    masked = urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))
    _SECRETS[masked] = url
    return masked


def has_credentials(url: str) -> bool:
    return urlsplit(url).password is not None


def unmask_url(url: str, env_var: str) -> str:
    """The URL a child must use for a (possibly masked) recorded ``url``: the one given on
    this command line, else ``env_var`` (``UV_INDEX_URL``/``PIP_INDEX_URL``) when it is the
    same URL with its password, else the URL without a password, so that uv/pip find it in
    netrc or keyring. txtool never stores the password (docs/cli.md, "Credentials")."""
    parts = urlsplit(url)
    if parts.password != MASK:
        return url
    if url in _SECRETS:
        return _SECRETS[url]
    given = os.environ.get(env_var)
    if given and mask_url(given) == url:
        return given
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


def redact(text: str) -> str:
    """``text`` (a child's stderr, a message) with every known password masked."""
    for masked, real in _SECRETS.items():
        text = text.replace(real, masked)
    return text


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class IndexOptions:
    """Where packages come from; recorded in the journal so resume/upgrade reuse it."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def __post_init__(self) -> None:
        # Accept lists (e.g. from JSON) but keep the dataclass hashable.
        object.__setattr__(self, "find_links", tuple(self.find_links))

    def to_dict(self) -> dict[str, Any]:
        """What is journaled and shown: the index URL's password masked (see :func:`mask_url`)."""
        return {
            "index_url": None if self.index_url is None else mask_url(self.index_url),
            "find_links": list(self.find_links),
            "no_index": self.no_index,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IndexOptions:
        index_url = d.get("index_url")
        find_links = d.get("find_links") or ()
        if index_url is not None and not isinstance(index_url, str):
            raise ValueError(f"index_url must be a string, not {type(index_url).__name__}")
        if isinstance(find_links, str) or not all(isinstance(x, str) for x in find_links):
            raise ValueError("find_links must be a list of strings")
        return cls(
            index_url=index_url, find_links=tuple(find_links), no_index=bool(d.get("no_index"))
        )

    def merged(self, override: IndexOptions | None) -> IndexOptions:
        """Fields set in `override` (the command line) win over recorded ones."""
        if override is None:
            return self
        index_url = override.index_url if override.index_url is not None else self.index_url
        find_links = override.find_links or self.find_links
        # Naming an index on the command line means "use an index": it clears a recorded --no-index.
        no_index = override.no_index or (self.no_index and override.index_url is None)
        return IndexOptions(index_url=index_url, find_links=find_links, no_index=no_index)


class BackendError(Exception):
    """A backend failure. str(err) is one human line; `detail` holds the tool's full stderr."""

    KINDS = ("not-found", "unreachable", "invalid", "python", "failed")

    def __init__(self, message: str, *, kind: str = "failed", detail: str = "") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown BackendError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Installed:
    name: str  # canonical distribution name
    version: str
    console_scripts: dict[str, str] = field(default_factory=dict)  # name -> "module:attr"
    gui_scripts: dict[str, str] = field(default_factory=dict)
    # Executables shipped as files (wheel .data/scripts, e.g. ruff's binary): name -> path.
    data_scripts: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- paths


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


def inspect_env(env: Path, dist: str) -> Installed:
    """Read an installed distribution's version and entry points without running the env."""
    env = Path(env)
    want = canonicalize_name(dist)
    paths = [str(p) for p in _site_packages(env)]
    if paths:
        for d in importlib.metadata.distributions(path=paths):
            name = d.metadata["Name"]
            if name is None or canonicalize_name(name) != want:
                continue
            eps = d.entry_points
            # Entry point names are data from the package: kept verbatim, validated by the caller.
            console = {ep.name: ep.value for ep in eps if ep.group == "console_scripts"}
            gui = {ep.name: ep.value for ep in eps if ep.group == "gui_scripts"}
            return Installed(
                name=want,
                version=d.version,
                console_scripts=console,
                gui_scripts=gui,
                data_scripts=_data_scripts(env, d, set(console) | set(gui)),
            )
    raise BackendError(f"{dist} is not installed in {env}", kind="not-found")


def _data_scripts(
    env: Path, dist: importlib.metadata.Distribution, skip: set[str]
) -> dict[str, str]:
    """Files the distribution put into the environment's scripts directory itself."""
    scripts_dir = script_path(env, "x").parent.resolve()
    found = {}
    for f in dist.files or ():
        path = Path(str(dist.locate_file(f))).resolve()
        if path.parent != scripts_dir:
            continue
        name = path.stem if _WINDOWS and path.suffix.lower() == ".exe" else path.name
        if name not in skip:
            found[name] = str(script_path(env, name) if not _WINDOWS else path)
    return found


# --------------------------------------------------------------------------- python


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


# --------------------------------------------------------------------------- helpers


def _validate_requirement(requirement: str) -> Requirement:
    try:
        return Requirement(requirement)
    except InvalidRequirement as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "parse error"
        raise BackendError(
            f"invalid requirement {requirement!r}: {first}", kind="invalid"
        ) from None


def _local_path(location: str) -> Path | None:
    """The filesystem path a find-links/index location names, or None for remote URLs."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    return Path(location).expanduser()


def check_local_locations(index: IndexOptions) -> None:
    # pip only warns about a missing local location and then says "not found": check up front
    # so both backends report the real cause.
    for link in index.find_links:
        if has_credentials(link):
            raise BackendError(
                f"--find-links {mask_url(link)}: a password there would be on the command "
                "line of uv/pip; use --index-url, or put it in ~/.netrc",
                kind="invalid",
            )
    locations = list(index.find_links)
    if index.index_url and not index.no_index:
        locations.append(index.index_url)
    for loc in locations:
        p = _local_path(loc)
        if p is not None and not p.exists():
            raise BackendError(f"package location does not exist: {loc}", kind="unreachable")


def _index_flags(index: IndexOptions) -> list[str]:
    """The command-line flags for ``index``; the index URL goes through the environment
    (:func:`_index_env`), where no other user can read it (``ps``, /proc/PID/cmdline)."""
    flags: list[str] = []
    for link in index.find_links:
        flags += ["--find-links", link]
    if index.no_index:
        flags.append("--no-index")
    return flags


def _index_env(env: dict[str, str], index: IndexOptions, var: str) -> dict[str, str]:
    if index.index_url is not None:
        env[var] = unmask_url(index.index_url, var)
    return env


def _pin(name: str, version: str) -> str:
    return f"{canonicalize_name(name)}=={version}"


def _sorted_pins(pins: Sequence[str]) -> list[str]:
    # By name, not by string: "txdemo==1" must sort before "txdemo-helper==1".
    return sorted(pins, key=lambda p: p.partition("==")[0])


# Ordered: the first matching kind wins. Unreachable goes before not-found because an unreachable
# index also ends in "no matching distribution".
_KIND_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "python",
        (
            "no interpreter found",
            "could not locate python interpreter",
            "failed to inspect python interpreter",
            "no python interpreter found",
        ),
    ),
    (
        "invalid",
        (
            "couldn't parse requirement",
            "invalid requirement",
            "failed to parse",
            "expected package name",
        ),
    ),
    (
        "unreachable",
        (
            "failed to fetch",
            "could not connect",
            "dns error",
            "connection refused",
            "failed to read `--find-links` directory",
            "directory not found for find-links",
            "not a directory",
            "could not fetch url",
            "failed to establish a new connection",
            "max retries exceeded",
            "name or service not known",
            "temporary failure in name resolution",
            "is either a non-existing path or lacks a specific scheme",
            "is neither a file nor a directory",
            "not a trusted or secure host",
        ),
    ),
    (
        "not-found",
        (
            "not found in the package registry",
            "not found in the provided package locations",
            "no solution found",
            "there is no version of",
            "no matching distribution found",
            "could not find a version that satisfies",
        ),
    ),
)


def _classify(stderr: str) -> str:
    low = stderr.lower()
    for kind, needles in _KIND_PATTERNS:
        if any(n in low for n in needles):
            return kind
    return "failed"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _uv_message(stderr: str) -> str | None:
    """uv prints `error: X` then `  cause: Y` lines; keep X plus the first and last cause."""
    lines = [_ANSI.sub("", ln).strip() for ln in stderr.splitlines()]
    for i, ln in enumerate(lines):
        if ln.lower().startswith("error:"):
            parts = [ln[len("error:") :].strip().rstrip(":")]
            causes: list[str] = []
            for c in lines[i + 1 :]:
                if c.startswith("cause:"):
                    causes.append(c[len("cause:") :].strip())
                elif causes and c and not c.lower().startswith(("hint:", "help:", "error:")):
                    causes[-1] += " " + c  # uv wraps long causes at $COLUMNS
                elif causes:
                    break
            if causes:
                parts.append(causes[0])
                if causes[-1] != causes[0]:
                    parts.append(causes[-1])
            return ": ".join(p for p in parts if p)
    return None


_PIP_CONNECT = re.compile(r"Failed to establish a new connection: ([^'\")]+)")


def _pip_message(stderr: str) -> str | None:
    """The cause: for network trouble the warning that names it (pip then only says "no matching
    distribution"), else the first `ERROR:` line. Other WARNING lines are noise here."""
    if _classify(stderr) == "unreachable":
        needles = dict(_KIND_PATTERNS)["unreachable"]
        for ln in stderr.splitlines():
            if any(n in ln.lower() for n in needles):
                m = _PIP_CONNECT.search(ln)
                if m:
                    url = ln.rsplit("': ", 1)[-1].strip() if "': " in ln else ""
                    return f"cannot connect to the index{f' ({url})' if url else ''}: {m.group(1)}"
                return ln.strip().removeprefix("WARNING:").strip()
    for ln in stderr.splitlines():
        ln = ln.strip()
        if ln.startswith("ERROR:"):
            return ln[len("ERROR:") :].strip()
    return None


def _first_line(stderr: str) -> str | None:
    for ln in stderr.splitlines():
        ln = _ANSI.sub("", ln).strip()
        if ln and not ln.startswith(("WARNING", "warning:", "Using Python", "Looking in")):
            return ln
    return None


# Run in front of every uv/pip child: it dies with txtool (Linux PR_SET_PDEATHSIG), so a
# SIGKILLed txtool leaves no orphan writing into an environment that resume or revert then
# rebuilds or deletes; and it writes files no more permissive than umask 022, whatever the
# user's umask. A parent already gone before prctl took effect is caught by the ppid check.
_CHILD = """
import os, sys
if sys.platform.startswith("linux"):
    import ctypes, signal
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        sys.exit(137)
os.umask(os.umask(0o022) | 0o022)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as e:
    sys.stderr.write(f"cannot run {sys.argv[2]}: {e.strerror or e}\\n")
    sys.exit(127)
"""


def _guarded(cmd: Sequence[str]) -> list[str]:
    """``cmd`` behind the :data:`_CHILD` guard (POSIX; Windows has job objects, not this)."""
    if _WINDOWS:
        return list(cmd)
    return [sys.executable, "-I", "-S", "-c", _CHILD, str(os.getpid()), *cmd]


async def _run(
    cmd: Sequence[str],
    *,
    what: str,
    env: Mapping[str, str],
    stdin: bytes | None = None,
    message: Callable[[str], str | None] | None = None,
) -> str:
    """Run a tool; return its stdout or raise BackendError with a one-line cause."""
    try:
        if stdin is not None:
            proc = await anyio.run_process(_guarded(cmd), input=stdin, check=False, env=dict(env))
        else:
            # Tools must never wait for input from the user's terminal.
            proc = await anyio.run_process(
                _guarded(cmd), stdin=subprocess.DEVNULL, check=False, env=dict(env)
            )
    except OSError as e:
        raise BackendError(f"{what}: cannot run {cmd[0]}: {e.strerror or e}", kind="failed") from e
    out = proc.stdout.decode("utf-8", "replace")
    err = redact(proc.stderr.decode("utf-8", "replace"))
    if proc.returncode != 0:
        line = (message(err) if message else None) or _first_line(err)
        line = line or f"{Path(cmd[0]).name} exited with status {proc.returncode}"
        if len(line) > 400:
            line = line[:397] + "..."
        raise BackendError(f"{what}: {line}", kind=_classify(err), detail=err)
    return out


def _empty_or_missing(env: Path) -> None:
    if env.exists() and (not env.is_dir() or any(env.iterdir())):
        raise BackendError(
            f"cannot create environment: {env} exists and is not empty", kind="failed"
        )


def _check_install(pins: Sequence[str], index: IndexOptions) -> None:
    if not pins:
        raise BackendError("nothing to install", kind="invalid")
    for p in pins:
        _validate_requirement(p)
    check_local_locations(index)


def _parse_pins(text: str) -> list[str]:
    pins: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue  # comments and option lines such as --index-url
        req = Requirement(line.split(";", 1)[0].strip())
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise BackendError(f"unexpected line in resolver output: {raw!r}", kind="failed")
        pins.append(_pin(req.name, specs[0].version))
    return _sorted_pins(pins)


# --------------------------------------------------------------------------- backends


@runtime_checkable
class Backend(Protocol):
    name: str

    async def resolve(self, requirement: str, python: str, index: IndexOptions) -> list[str]: ...

    async def create_env(self, env: Path, python: str) -> None: ...

    async def install(self, env: Path, pins: Sequence[str], index: IndexOptions) -> None: ...


class UvBackend:
    """Drives the uv binary shipped by the `uv` PyPI package."""

    name = "uv"

    def __init__(self, uv: str | None = None, *, honor_config: bool = False) -> None:
        if uv is None:
            from uv import find_uv_bin

            uv = find_uv_bin()
        self.uv = os.fspath(uv)
        # uv.toml / a pyproject.toml in the cwd must not change what a tool resolves to; index
        # options are explicit and recorded in the journal. UV_* env vars are still honored.
        self.honor_config = honor_config

    def _common(self) -> list[str]:
        flags = ["--color", "never"]
        if not self.honor_config:
            flags.append("--no-config")
        return flags

    def _env(self, index: IndexOptions | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)  # --python names the target; an active venv must not
        env.setdefault("NO_COLOR", "1")
        if index is not None and index.index_url is not None:
            env.pop("UV_DEFAULT_INDEX", None)  # the recorded index wins, as --index-url did
        return _index_env(env, index, "UV_INDEX_URL") if index else env

    async def resolve(self, requirement: str, python: str, index: IndexOptions) -> list[str]:
        _validate_requirement(requirement)
        check_local_locations(index)
        cmd = [self.uv, "pip", "compile", "-", "--python", python, "--no-header"]
        cmd += ["--no-annotate", "--quiet", *self._common(), *_index_flags(index)]
        out = await _run(
            cmd,
            what=f"cannot resolve {requirement}",
            env=self._env(index),
            stdin=(requirement + "\n").encode(),
            message=_uv_message,
        )
        pins = _parse_pins(out)
        if not pins:
            raise BackendError(
                f"cannot resolve {requirement}: resolver returned nothing", kind="failed"
            )
        return pins

    async def create_env(self, env: Path, python: str) -> None:
        env = Path(env)
        _empty_or_missing(env)
        cmd = [self.uv, "venv", os.fspath(env), "--python", python, "--quiet", *self._common()]
        await _run(
            cmd, what=f"cannot create environment {env}", env=self._env(), message=_uv_message
        )

    async def install(self, env: Path, pins: Sequence[str], index: IndexOptions) -> None:
        _check_install(pins, index)
        # --no-deps: the pins are the complete, recorded resolution; no second resolve may differ.
        cmd = [self.uv, "pip", "install", "--python", os.fspath(env_python(env)), "--no-deps"]
        cmd += ["--quiet", *self._common(), *list(pins), *_index_flags(index)]
        await _run(
            cmd, what=f"cannot install into {env}", env=self._env(index), message=_uv_message
        )


class PipBackend:
    """Drives the pip of the interpreter running txtool, pointed at targets with `--python`."""

    name = "pip"

    def __init__(self, *, honor_config: bool = False) -> None:
        # The tool envs are made --without-pip, so txtool's own pip does the work (pip >= 22.3).
        if importlib.util.find_spec("pip") is None:
            raise BackendError(
                "the pip backend needs pip in txtool's own environment", kind="failed"
            )
        self.pip = [sys.executable, "-m", "pip"]
        self.honor_config = honor_config

    def _env(self, index: IndexOptions | None = None) -> dict[str, str]:
        env = dict(os.environ)
        if index is not None:
            _index_env(env, index, "PIP_INDEX_URL")
        if not self.honor_config:
            # Config files ignored (like uv --no-config); PIP_* env vars still honored.
            env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_REQUIRE_VIRTUALENV"] = "0"  # resolving against a base interpreter is fine
        env.pop("VIRTUAL_ENV", None)
        return env

    def _common(self) -> list[str]:
        return ["--no-input", "--disable-pip-version-check"]

    async def resolve(self, requirement: str, python: str, index: IndexOptions) -> list[str]:
        _validate_requirement(requirement)
        check_local_locations(index)
        cmd = [*self.pip, "--python", python, "install", "--dry-run", "--ignore-installed"]
        cmd += ["--quiet", "--report", "-", *self._common(), *_index_flags(index), requirement]
        out = await _run(
            cmd, what=f"cannot resolve {requirement}", env=self._env(index), message=_pip_message
        )
        try:
            report = json.loads(out)
            pins = [
                _pin(i["metadata"]["name"], i["metadata"]["version"]) for i in report["install"]
            ]
        except (ValueError, KeyError, TypeError) as e:
            raise BackendError(
                f"cannot resolve {requirement}: unreadable pip report ({e})",
                kind="failed",
                detail=out,
            ) from None
        if not pins:
            raise BackendError(
                f"cannot resolve {requirement}: resolver returned nothing", kind="failed"
            )
        return _sorted_pins(pins)

    async def create_env(self, env: Path, python: str) -> None:
        env = Path(env)
        _empty_or_missing(env)
        cmd = [python, "-m", "venv", "--without-pip", os.fspath(env)]
        await _run(cmd, what=f"cannot create environment {env}", env=self._env())

    async def install(self, env: Path, pins: Sequence[str], index: IndexOptions) -> None:
        _check_install(pins, index)
        cmd = [*self.pip, "--python", os.fspath(env_python(env)), "install", "--no-deps"]
        cmd += ["--quiet", *self._common(), *_index_flags(index), *list(pins)]
        await _run(
            cmd, what=f"cannot install into {env}", env=self._env(index), message=_pip_message
        )


def get_backend(name: str | None = None) -> Backend:
    """ "uv" | "pip" | None (TXTOOL_BACKEND, else uv when its binary is available, else pip)."""
    if name is None:
        name = os.environ.get("TXTOOL_BACKEND") or None
    if name is None:
        try:
            return UvBackend()
        except (ImportError, FileNotFoundError):
            return PipBackend()
    if name == "uv":
        try:
            return UvBackend()
        except (ImportError, FileNotFoundError) as e:
            raise BackendError(f"the uv backend is not available: {e}", kind="failed") from None
    if name == "pip":
        return PipBackend()
    raise ValueError(f"unknown backend {name!r} (expected 'uv' or 'pip')")
