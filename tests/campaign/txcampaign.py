"""txtool's scenarios for the crash-test harness (``txtool.testing``), and shared helpers.

Every scenario runs the real CLI as a child, ``python -m txtool ...``, in a work directory
holding ``home/`` (``TXTOOL_HOME``) and ``bin/`` (``TXTOOL_BIN_DIR``), and installs from the
offline test wheelhouse with ``--no-index --find-links``.

The picture of a world (:func:`picture`) is taken from the real files, normalized so that two
runs compare equal: each environment directory (its name is random) is replaced by a label
made of the distributions installed in it, a digest of its file list and two integrity checks
(every file named by each RECORD exists; every console script's ``#!`` names the
environment's own interpreter); each shim in the bin dir by the label of the environment it
points to and the script it runs. Anything else is a stray: files in the bin dir that are not
shims into a tool's environment (temporary or renamed-aside files), unknown entries in the
home, and stash directories under ``home/journal/stash`` that the journal does not account
for (no operation of that id). An empty tool directory is left out while the tool's
operation has its clean-up pending (the clean-up removes it).

The resume child is ``resume_child.py``: ``txtool resume [--revert]`` run in process, which
then also fails (exit 6) when a clean-up is still pending, so that "resume finishes
everything" includes deleting the stash.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from txengine.testing import Scenario

PY = sys.executable
HERE = Path(__file__).resolve().parent
RESUME_CHILD = HERE / "resume_child.py"

# Variables a child must not inherit from the test process.
_SCRUB = ("TXENGINE_FAILPOINTS", "TXENGINE_FAILPOINT_TRACE", "TXENGINE_FS_BUSY")


def txtool_env(world: Path) -> dict[str, str]:
    return {
        "TXTOOL_HOME": str(world / "home"),
        "TXTOOL_BIN_DIR": str(world / "bin"),
        "TERM": "dumb",
        "TXTOOL_LOCK_TIMEOUT": "120",
    }


def base_env(world: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(txtool_env(world))
    env.update(extra or {})
    return env


def txtool(
    world: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in ``world``; output captured as text."""
    proc = subprocess.run(
        [PY, "-m", "txtool", *args],
        cwd=world,
        env=base_env(world, env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"txtool {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def source(wheels: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheels)]


# -- the picture ------------------------------------------------------------------------------

_JOURNAL_OWN = {"journal.log", "journal.snapshot", "lock", "lock.owner", "stash"}


def _site_packages(env: Path) -> Path | None:
    found = sorted(env.glob("lib/python*/site-packages"))
    return found[0] if found else None


def env_label(env: Path) -> str:
    """What an environment is, without its random name: dists, file list digest, integrity."""
    if not env.is_dir() or env.is_symlink():
        return f"not-a-dir:{env.name}"
    files = []
    for root, dirs, names in os.walk(env):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            files.append(os.path.relpath(os.path.join(root, name), env))
    digest = hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:10]
    sp = _site_packages(env)
    dists: list[str] = []
    complete = True
    if sp is not None:
        for info in sorted(sp.glob("*.dist-info")):
            dists.append(info.name[: -len(".dist-info")])
            record = info / "RECORD"
            if not record.is_file():
                complete = False
                continue
            for line in record.read_text(encoding="utf-8").splitlines():
                rel = line.split(",", 1)[0]
                if rel and not (sp / rel).exists():
                    complete = False
    else:
        complete = False
    shebangs = True
    interpreter = f"#!{env / 'bin' / 'python'}"
    bindir = env / "bin"
    if bindir.is_dir():
        for script in sorted(bindir.iterdir()):
            if script.is_symlink() or not script.is_file():
                continue
            with open(script, "rb") as f:
                head = f.readline().decode("utf-8", "replace").rstrip("\n")
            if head.startswith("#!") and "python" in head and head != interpreter:
                shebangs = False
    flags = ("" if complete else " INCOMPLETE-RECORD") + ("" if shebangs else " BAD-SHEBANG")
    return f"{{{','.join(dists)}}}#{digest}{flags}"


def _pending_subjects(journal: Path) -> set[str]:
    """Tools whose committed operation still has its clean-up pending."""
    from txengine import load

    try:
        return {v.subject for v in load(journal, warn=lambda _m: None).uncleaned()}
    except Exception:
        return set()


def _journal_accounts(journal: Path) -> set[str] | str:
    """Operation ids whose stash the journal accounts for: incomplete, clean-up pending, or
    closed (a run killed after an operation closed leaves its stash; the next mutating run
    sweeps it, and ``resume_child`` checks that it did)."""
    from txengine import load

    try:
        state = load(journal, warn=lambda _m: None)
    except Exception as e:  # a broken journal is part of the picture, not a crash of ours
        return f"journal does not load: {type(e).__name__}"
    return {v.id for v in state}


def picture(world: Path, *, run_shims: bool = False) -> dict[str, Any]:
    """The normalized picture of a txtool world (see the module doc)."""
    home, bindir = world / "home", world / "bin"
    tools: dict[str, dict[str, Any]] = {}
    envs: dict[str, tuple[str, str]] = {}  # env path -> (tool, label)
    strays: list[str] = []
    if home.is_dir():
        for entry in sorted(home.iterdir()):
            if entry.name not in ("journal", "tools"):
                strays.append(f"home/{entry.name}")
    tools_dir = home / "tools"
    if tools_dir.is_dir():
        for tool_dir in sorted(tools_dir.iterdir()):
            if not tool_dir.is_dir() or tool_dir.is_symlink():
                strays.append(f"home/tools/{tool_dir.name} (not a directory)")
                continue
            t = tools.setdefault(tool_dir.name, {"envs": [], "shims": {}})
            entries = sorted(tool_dir.iterdir())
            for env in [e for e in entries if not e.is_symlink()]:
                label = env_label(env)
                envs[str(env)] = (tool_dir.name, label)
                t["envs"].append(label)
            for link in [e for e in entries if e.is_symlink()]:
                # The stable path: labelled by the generation it names.
                named = envs.get(str(tool_dir / os.readlink(link)))
                label = f"{link.name} -> {named[1] if named else os.readlink(link)}"
                envs[str(link)] = (tool_dir.name, label)
                t["envs"].append(label)
            t["envs"].sort()
            if not t["envs"]:
                if tool_dir.name in _pending_subjects(home / "journal"):
                    del tools[tool_dir.name]  # the pending clean-up removes it
                else:
                    t["envs"] = ["<empty tool dir>"]
    if os.path.lexists(bindir):
        if not bindir.is_dir():
            strays.append("bin (not a directory)")
        else:
            for shim in sorted(bindir.iterdir()):
                strays += _shim(shim, envs, tools, run_shims)
    journal = home / "journal"
    if journal.is_dir():
        stash = journal / "stash"
        if stash.is_dir() and any(stash.iterdir()):
            accounted = _journal_accounts(journal)
            if isinstance(accounted, str):
                strays.append(accounted)
                accounted = set()
            for op in sorted(stash.iterdir()):
                if op.name not in accounted:
                    strays.append(f"stash/{op.name} (no open operation or pending clean-up)")
    return {"tools": tools, "strays": strays}


def _shim(
    shim: Path, envs: dict[str, tuple[str, str]], tools: dict[str, dict[str, Any]], run: bool
) -> list[str]:
    if not shim.is_symlink():
        if shim.is_file():  # a copy shim (TXTOOL_SHIMS=copy): the bytes of an entry point
            for env, (tool, label) in envs.items():
                script = Path(env) / "bin" / shim.name
                if script.is_file() and filecmp.cmp(script, shim, shallow=False):
                    rel = os.path.relpath(script, env)
                    tools[tool]["shims"][shim.name] = (label, rel, "copy")
                    return []
        kind = "dir" if shim.is_dir() else "file"
        return [f"bin/{shim.name} ({kind}, not a shim)"]
    target = os.readlink(shim)
    for env, (tool, label) in envs.items():
        if target.startswith(env + os.sep):
            rel = os.path.relpath(target, env)
            desc: tuple[str, ...] = (label, rel, "ok" if os.path.exists(target) else "DANGLING")
            if run:
                out = subprocess.run([str(shim)], capture_output=True, text=True, timeout=60)
                desc += (out.stdout.strip(),)
            tools[tool]["shims"][shim.name] = desc
            return []
    return [f"bin/{shim.name} -> {target} (no environment)"]


def split(pic: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return pic["tools"], pic["strays"]


class PerTool:
    """The expected world of a command that runs one operation per tool (``upgrade --all``).

    Each tool is its own operation, so after a crash some tools may be upgraded and others
    not: the promise is per tool. A picture equals ``PerTool(..., "new")`` when it has no
    strays, every tool is exactly old or exactly new, and at least one is new (an operation
    committed); it equals ``PerTool(..., "old")`` when every tool is exactly old or exactly
    new. The harness asks ``picture == new`` first, so a world that equals only ``old`` is the
    all-old world, which it requires to have nothing committed.
    """

    def __init__(self, old: dict[str, Any], new: dict[str, Any], which: str) -> None:
        self.old, self.new, self.which = old, new, which

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PerTool):
            return self is other
        if not isinstance(other, dict) or other.get("strays") or "tools" not in other:
            return False
        tools = other["tools"]
        if set(tools) != set(self.old) | set(self.new):
            return False
        states = []
        for name, got in tools.items():
            if got == self.new.get(name):
                states.append("new")
            elif got == self.old.get(name):
                states.append("old")
            else:
                return False
        return "new" in states if self.which == "new" else True

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<every tool old or new{', at least one new' if self.which == 'new' else ''}>"


# -- scenarios --------------------------------------------------------------------------------


def _install(world: Path, wheels: Path, *specs: str) -> None:
    world.mkdir(parents=True, exist_ok=True)
    txtool(world, "install", *specs, *source(wheels), check=True)


def resume_argv(world: Path, revert: bool) -> list[str]:
    return [PY, str(RESUME_CHILD), *(["--revert"] if revert else [])]


def _scenario(
    name: str, setup: Any, run: Sequence[str], env: Any = txtool_env, **kw: Any
) -> Scenario:
    return Scenario(
        name=name,
        setup=setup,
        run=[PY, "-m", "txtool", *run],
        resume=resume_argv,
        observe=picture,
        env=env,
        journal_dir=lambda w: w / "home" / "journal",
        timeout=120.0,
        **kw,
    )


SCENARIOS = ("install", "upgrade", "uninstall", "multitool", "upgrade-all", "rollback")


def scenario(name: str, wheels: Path) -> Scenario:
    """One of :data:`SCENARIOS`, installing from ``wheels``."""
    wheels = Path(wheels).resolve()
    if name == "install":
        return _scenario(
            "install",
            lambda w: (w / "home").mkdir(parents=True, exist_ok=True),
            ["install", "txdemo==1.0", *source(wheels)],
        )
    if name == "upgrade":
        return _scenario(
            "upgrade", lambda w: _install(w, wheels, "txdemo==1.0"), ["upgrade", "txdemo@latest"]
        )
    if name == "uninstall":
        return _scenario(
            "uninstall", lambda w: _install(w, wheels, "txdemo==1.0"), ["uninstall", "txdemo"]
        )
    if name == "multitool":
        return _scenario(
            "multitool",
            lambda w: _install(w, wheels, "multitool==1.0"),
            ["upgrade", "multitool@latest"],
            # No generation kept: the upgrade prunes the old environment (prune-envs).
            env=lambda w: txtool_env(w) | {"TXTOOL_KEEP_GENERATIONS": "0"},
        )
    if name == "rollback":
        # multitool 2.0 -> 1.0: mt-gui goes, mt-a and mt-b stay links through the stable path.
        def upgraded(w: Path) -> None:
            _install(w, wheels, "multitool==1.0")
            txtool(w, "upgrade", "multitool@latest", check=True)

        return _scenario("rollback", upgraded, ["rollback", "multitool"])
    if name == "upgrade-all":
        # Installed unpinned while only the 1.0 releases were published (upgrade --all
        # keeps a pin), upgraded once every release is: the full wheelhouse given again.
        specs = ("txdemo", "multitool", "slowtool")
        first = first_releases(wheels)
        run = ["upgrade", "--all", *source(wheels)]
        old, new = _calibrate(first, specs, run)
        return _scenario(
            "upgrade-all",
            lambda w: _install(w, first, *specs),
            run,
            old=PerTool(old, new, "old"),
            new=PerTool(old, new, "new"),
        )
    raise ValueError(f"unknown scenario {name!r}")


def first_releases(wheels: Path) -> Path:
    """A find-links dir beside ``wheels`` with only its 1.0 releases (an index before 2.0)."""
    first = wheels.with_name(wheels.name + "-1.0")
    first.mkdir(exist_ok=True)
    for wheel in wheels.glob("*-1.0-*.whl"):
        shutil.copy2(wheel, first)
    return first


def _calibrate(
    wheels: Path, specs: Sequence[str], run: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each tool's old and new picture, from one clean run."""
    with tempfile.TemporaryDirectory(prefix="txcampaign-calibrate-") as tmp:
        world = Path(tmp)
        _install(world, wheels, *specs)
        old, old_strays = split(picture(world))
        txtool(world, *run, check=True)
        new, new_strays = split(picture(world))
    if old_strays or new_strays:
        raise AssertionError(f"calibration left strays: {old_strays} {new_strays}")
    return old, new
