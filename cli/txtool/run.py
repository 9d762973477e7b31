"""``txtool run``: a tool (or a PEP 723 script) run from a cached environment, never installed.

The cache (``TXTOOL_CACHE_DIR``/run) holds, for each request key (the requirements, the
interpreter, the index options and the backend), a pointer file ``KEY.json`` naming the
environment ``envs/KEY-TOKEN`` it was built into. An environment is built beside the one in
use, under the key's lock, and becomes the key's only by the rename that writes the pointer:
a kill while building leaves an environment no pointer names, which no run ever uses and
the next build of that key (or ``cache prune``) deletes. Environments are never moved once
built: their launchers name their own path.

A pointer is fresh for ``TXTOOL_RUN_TTL`` seconds after its build (a day by default); then
the next run rebuilds it, picking up new releases. Each use touches the pointer: beyond
``TXTOOL_RUN_KEEP`` keys (8), the least recently used go, after each build and on
``cache prune``; ``cache clean`` deletes every environment. A key being built (its lock
held) is never pruned; an environment in use by a running tool is not known to the cache,
so pruning the least recently used one can pull it from under a long-running tool.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
import msgspec

from txengine import FileSystem, atomic_write, sweep_temps

from . import backend as be
from . import names
from .errors import UsageError
from .locations import BadSetting, _check_ancestors, _check_dir, make_dir

DEFAULT_TTL = 86400.0
DEFAULT_KEEP = 8

#: PEP 723's reference regular expression for an inline metadata block.
PEP723 = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")

_KEY = re.compile(r"^[0-9a-f]{16}$")


class Pointer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``KEY.json``: the environment a key runs from, when it was built, and what it holds."""

    env: str
    built: float
    what: str


@dataclass(frozen=True)
class Request:
    """What to run and with which packages; ``key`` names its cached environment."""

    requirements: tuple[str, ...]  # the tool's own first; empty for a script without any
    command: str | None  # the executable to run; None: the script with the env's python
    script: Path | None
    python: str
    index: be.IndexOptions
    backend: str

    @property
    def key(self) -> str:
        what = {
            "requirements": sorted(self.requirements),
            "python": self.python,
            "index": self.index.to_dict(),
            "backend": self.backend,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def what(self) -> str:
        return " ".join(self.requirements) or "(no dependencies)"


def _setting(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise BadSetting(f"{name}={raw!r} is not a number >= 0")
    return value


def script_metadata(text: str) -> dict[str, Any] | None:
    """A script's ``# /// script`` block (PEP 723), parsed; None without one."""
    matches = [m for m in PEP723.finditer(text) if m.group("type") == "script"]
    if len(matches) > 1:
        raise UsageError("the script has more than one `# /// script` block (PEP 723)")
    if not matches:
        return None
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in matches[0].group("content").splitlines(keepends=True)
    )
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"the script's `# /// script` block is not valid TOML: {e}") from None


def is_script(tool: str) -> bool:
    return tool.endswith(".py") and os.path.isfile(tool)


def request(
    tool: str,
    *,
    spec: str | None,
    with_: Sequence[str],
    python: str | None,
    index: be.IndexOptions,
    backend: str | None,
) -> Request:
    """Check what the command line asks for (bad input raises before anything exists)."""
    try:
        interpreter = be.find_python(python)
        backend_name = be.get_backend(backend).name
        be.check_local_locations(index)
    except (ValueError, be.BackendError) as e:
        raise UsageError(str(e)) from None
    extra = tuple(str(names.requirement(w)) for w in with_)
    if is_script(tool):
        if spec is not None:
            raise UsageError("--from names a package: a script brings its own dependencies")
        script = Path(tool).absolute()
        meta = script_metadata(script.read_text(encoding="utf-8", errors="replace")) or {}
        deps = meta.get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise UsageError("the script's `dependencies` must be a list of requirements")
        _check_requires_python(meta.get("requires-python"), interpreter)
        reqs = tuple(str(names.requirement(d)) for d in deps) + extra
        return Request(reqs, None, script, interpreter, index, backend_name)
    if spec is None:
        # `txtool run 'black==24.1'`: the package is the tool's name, the executable too.
        req = names.requirement(tool)
        command = req.name
    else:
        req = names.requirement(spec)
        command = names.executable_name(tool)
    return Request((str(req), *extra), command, None, interpreter, index, backend_name)


def _check_requires_python(spec: Any, python: str) -> None:
    if spec is None:
        return
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        wanted = SpecifierSet(str(spec))
    except InvalidSpecifier:
        raise UsageError(f"the script's requires-python {spec!r} is not valid") from None
    found = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    if found and not wanted.contains(found, prereleases=True):
        raise UsageError(
            f"the script requires Python {wanted}, {python} is {found}: choose one with --python"
        )


class Cache:
    """The run environments under ``root``; ``notify`` hears what takes time."""

    def __init__(
        self,
        root: Path,
        *,
        environ: Mapping[str, str] | None = None,
        notify: Callable[[str], None] = lambda message: None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.root = root / "run"
        self.envs = self.root / "envs"
        self.ttl = _setting(env, "TXTOOL_RUN_TTL", DEFAULT_TTL)
        self.keep = int(_setting(env, "TXTOOL_RUN_KEEP", DEFAULT_KEEP))
        self.notify = notify
        self.fs = FileSystem()

    # -- pointers ------------------------------------------------------------------------

    def _pointer_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def pointer(self, key: str) -> Pointer | None:
        """The key's pointer, if it is one this cache wrote (trust nothing read from disk)."""
        try:
            ptr = msgspec.json.decode(self._pointer_path(key).read_bytes(), type=Pointer)
        except (OSError, msgspec.DecodeError):
            return None
        if not re.fullmatch(rf"{key}-[0-9a-f]{{8}}", ptr.env):
            return None
        return ptr

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if _KEY.match(p.stem))

    def _fresh(self, ptr: Pointer | None) -> Path | None:
        if ptr is None or time.time() - ptr.built >= self.ttl:
            return None
        env = self.envs / ptr.env
        return env if be.env_python(env).exists() else None

    # -- building ------------------------------------------------------------------------

    def secure(self) -> None:
        """Refuse (:class:`UnsafeLocation`, exit 5) a cache another user could write: an
        environment planted there would run as this user."""
        _check_ancestors(self.root, "TXTOOL_CACHE_DIR")
        for path in (self.root.parent, self.root, self.envs):
            _check_dir(path, "the run cache")

    def environment(self, req: Request) -> Path:
        """The fresh environment of ``req``: the cached one, or one built now."""
        self.secure()
        key = req.key
        env = self._fresh(self.pointer(key))
        if env is None:
            make_dir(self.envs)
            with self._lock(key, wait=True):
                env = self._fresh(self.pointer(key))  # another run may have built it meanwhile
                if env is None:
                    env = self._build(req)
            self.prune(using=key)
        with contextlib.suppress(OSError):
            os.utime(self._pointer_path(key))  # recently used: the last to go
        return env

    def _build(self, req: Request) -> Path:
        key = req.key
        self._sweep(key)  # what a killed build of this key left
        env = self.envs / f"{key}-{secrets.token_hex(4)}"
        self.notify(f"building an environment for {req.what} (reused for {_span(self.ttl)})")
        try:
            anyio.run(_populate, req, env)
            ptr = Pointer(env=env.name, built=time.time(), what=req.what)
            # The one rename that makes the new environment the key's.
            atomic_write(self.fs, self._pointer_path(key), msgspec.json.encode(ptr))
        except BaseException:
            with contextlib.suppress(OSError):
                if os.path.lexists(env):
                    self.fs.rmtree(env)
            raise
        return env

    @contextlib.contextmanager
    def _lock(self, key: str, *, wait: bool) -> Iterator[bool]:
        """The key's build lock (``flock``: released by the kernel when its holder dies);
        yields False when ``wait`` is off and another process holds it."""
        path = self.root / f"{key}.lock"
        with open(path, "a+b") as f:
            yield self._acquire(f, wait)

    def _acquire(self, f: IO[bytes], wait: bool) -> bool:
        if os.name == "nt":
            return True  # racing builds each get their own environment; the last rename wins
        import fcntl

        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not wait:
                return False
        self.notify("waiting for another txtool building the same environment...")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        return True

    # -- pruning -------------------------------------------------------------------------

    def _sweep(self, key: str) -> list[Path]:
        """Under the key's lock: delete its environments that its pointer does not name."""
        ptr = self.pointer(key)
        gone = []
        for env in sorted(self.envs.glob(f"{key}-*")) if self.envs.is_dir() else []:
            if ptr is None or env.name != ptr.env:
                self.fs.rmtree(env)
                gone.append(env)
        return gone

    def _drop(self, key: str) -> list[Path]:
        """Under the key's lock: the pointer first, so no run picks what is being deleted."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.unlink(self._pointer_path(key))
        return self._sweep(key)

    def prune(self, *, everything: bool = False, using: str | None = None) -> list[Path]:
        """Delete stale and unnamed environments and, beyond ``keep``, the least recently
        used; ``everything``: all of them. A key being built by another process is skipped,
        and so is ``using``, the one this process is about to run from."""
        if not self.root.is_dir():
            return []
        self.secure()
        sweep_temps(self.root, self.fs)  # a pointer's temp that a kill left
        keys = set(self.keys())
        if self.envs.is_dir():
            keys |= {p.name.rsplit("-", 1)[0] for p in self.envs.iterdir()}
        used = sorted(self.keys(), key=lambda k: (k == using, self._last_used(k)), reverse=True)
        surplus = set(used[self.keep :]) - {using}
        gone: list[Path] = []
        for key in sorted(k for k in keys if _KEY.match(k)):
            with self._lock(key, wait=False) as held:
                if not held:
                    continue
                ptr = self.pointer(key)
                stale = ptr is not None and self._fresh(ptr) is None and key != using
                if everything or key in surplus or stale:
                    gone += self._drop(key)
                else:
                    gone += self._sweep(key)
        # The (empty) lock files stay: deleting one while another process waits on it
        # would let a third lock a new file of the same name and build at the same time.
        return gone

    def _last_used(self, key: str) -> float:
        try:
            return self._pointer_path(key).stat().st_mtime
        except OSError:
            return 0.0


async def _populate(req: Request, env: Path) -> None:
    """Resolve first (a bad requirement fails before anything exists), then build."""
    backend = be.get_backend(req.backend)
    pins: list[str] = []
    if req.requirements:
        first, *extra = req.requirements
        pins = await backend.resolve(first, req.python, req.index, plugins=extra)
    await backend.create_env(env, req.python)
    if pins:
        await backend.install(env, pins, req.index)


def _span(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{seconds:g} s"


def argv(req: Request, env: Path, args: Sequence[str]) -> list[str]:
    """The command line to run in ``env``; a missing executable is named with the ones
    the package does have."""
    if req.script is not None:
        python = be.env_python(env) if req.requirements else Path(req.python)
        return [str(python), str(req.script), *args]
    assert req.command is not None
    exe = be.script_path(env, req.command)
    if not exe.exists():
        package = names.requirement(req.requirements[0]).name
        try:
            found = be.inspect_env(env, package)
            have = sorted({*found.console_scripts, *found.gui_scripts, *found.data_scripts})
        except be.BackendError:
            have = []
        offer = (
            f" (it has {', '.join(have)}: `txtool run --from {package} {have[0]}`)" if have else ""
        )
        raise UsageError(f"{package} provides no executable {req.command!r}{offer}")
    return [str(exe), *args]


def execute(command: list[str]) -> int:
    """Become the tool (POSIX ``exec``: its exit status and every signal are its own); on
    Windows, run it and return its exit code."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if os.name == "nt":
        return subprocess.call(command)
    os.execv(command[0], command)


def cache_usage(paths: Sequence[Path]) -> str:
    return f"removed {len(paths)} environment{'s' if len(paths) != 1 else ''}"
