"""The Windows rules, simulated through the seam (``TXENGINE_FS_BUSY``: those files are "in
use": unlink and replace fail, rename works and the file stays in use under its new name).

Asserted on the real files: the shim runs the right version, the stash under
``home/journal/stash`` stays while a file in it is in use (the operation is committed, its
clean-up pending, and the command still succeeded), and a later run without the busy file
deletes it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import txcampaign as tc

# Windows places copies of the launchers (a link to an .exe is not what users run).
COPIES = {"TXTOOL_SHIMS": "copy"}


def _stash(world: Path) -> list[str]:
    stash = world / "home" / "journal" / "stash"
    return sorted(p.name for p in stash.iterdir()) if stash.is_dir() else []


def _status(world: Path) -> dict:
    proc = tc.txtool(world, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _run(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout.strip()


def _clean(world: Path) -> None:
    """Nothing pending, nothing stray, the disk matches the journal."""
    assert _stash(world) == []
    assert _status(world) == {"incomplete": [], "cleanup_pending": []}
    assert tc.picture(world)["strays"] == []
    verify = tc.txtool(world, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_upgrade_with_the_old_shim_in_use(wheels: Path, tmp_path: Path) -> None:
    world = tmp_path
    tc.txtool(world, "install", "txdemo==1.0", *tc.source(wheels), check=True, env=COPIES)
    shim = world / "bin" / "txdemo"
    busy = {"TXENGINE_FS_BUSY": str(shim), **COPIES}
    proc = tc.txtool(world, "upgrade", "txdemo@latest", env=busy)
    # remove-shims renames the busy shim aside, so the upgrade goes through...
    assert proc.returncode == 0, proc.stderr
    assert _run(shim).startswith("txdemo 2.0 (helper 2.0)")
    # ... but the stash that holds it cannot be deleted: committed, clean-up pending.
    pending = _status(world)["cleanup_pending"]
    assert [p["tool"] for p in pending] == ["txdemo"]
    assert _stash(world) == [pending[0]["op"]]
    # Still in use (the seam knows a busy file by its path when a run starts: name it in
    # the stash now): a later run leaves it, and says nothing is wrong.
    op = pending[0]["op"]
    stashed = world / "home" / "journal" / "stash" / op
    held = [p for p in stashed.iterdir() if p.name.endswith("shim-txdemo")]
    assert len(held) == 1, list(stashed.iterdir())
    again = tc.txtool(world, "resume", env={"TXENGINE_FS_BUSY": str(held[0])})
    assert again.returncode == 0, again.stderr
    assert _stash(world) == [op]
    assert [p["op"] for p in _status(world)["cleanup_pending"]] == [op]
    # No longer in use: any later mutating run deletes it.
    later = tc.txtool(world, "install", "multitool==1.0", *tc.source(wheels))
    assert later.returncode == 0, later.stderr
    _clean(world)
    assert _run(shim).startswith("txdemo 2.0")


def test_uninstall_with_the_executable_in_use(wheels: Path, tmp_path: Path) -> None:
    world = tmp_path
    tc.txtool(world, "install", "txdemo==1.0", *tc.source(wheels), check=True)
    listing = json.loads(tc.txtool(world, "list", "--json", check=True).stdout)
    env = Path(listing[0]["environment"])
    shim = world / "bin" / "txdemo"
    busy = {"TXENGINE_FS_BUSY": f"{shim}:{env / 'bin' / 'txdemo'}"}
    proc = tc.txtool(world, "uninstall", "txdemo", env=busy)
    assert proc.returncode == 0, proc.stderr
    assert not shim.exists() and not env.exists()
    assert tc.picture(world)["tools"] == {
        "txdemo": {"envs": ["<empty tool dir>"], "shims": {}}
    } or (tc.picture(world)["tools"] == {})
    assert [p["tool"] for p in _status(world)["cleanup_pending"]] == ["txdemo"]
    assert len(_stash(world)) == 1
    later = tc.txtool(world, "resume")
    assert later.returncode == 0, later.stderr
    _clean(world)
    assert tc.picture(world)["tools"] == {}
    assert json.loads(tc.txtool(world, "list", "--json", check=True).stdout) == []


def test_renamed_aside_shim_in_use_is_cleaned_later(wheels: Path, tmp_path: Path) -> None:
    """Stash on another filesystem (EXDEV): the shim is renamed aside in the bin dir; in use,
    it stays there after commit; a later run deletes it."""
    world = tmp_path
    tc.txtool(world, "install", "txdemo==1.0", *tc.source(wheels), check=True, env=COPIES)
    shim = world / "bin" / "txdemo"
    env = {
        "TXENGINE_FS_BUSY": str(shim),
        "TXENGINE_FAILPOINTS": f"fs.rename@{shim}#1=error:EXDEV",
        **COPIES,
    }
    proc = tc.txtool(world, "upgrade", "txdemo@latest", env=env)
    assert proc.returncode == 0, proc.stderr
    assert _run(shim).startswith("txdemo 2.0")
    aside = [p.name for p in (world / "bin").iterdir() if p.name.startswith(".txdemo.txtool-")]
    assert len(aside) == 1, sorted(p.name for p in (world / "bin").iterdir())
    assert [p["tool"] for p in _status(world)["cleanup_pending"]] == ["txdemo"]
    later = tc.txtool(world, "resume")
    assert later.returncode == 0, later.stderr
    assert sorted(p.name for p in (world / "bin").iterdir()) == ["txdemo"]
    _clean(world)


def test_rollback_with_the_shim_in_use(wheels: Path, tmp_path: Path) -> None:
    """A rollback on Windows replaces each copied shim: the one in use is renamed aside
    into the stash, the old generation's copy placed, and the stash deleted by a later run."""
    world = tmp_path
    tc.txtool(world, "install", "txdemo==1.0", *tc.source(wheels), check=True, env=COPIES)
    tc.txtool(world, "upgrade", "txdemo@latest", check=True, env=COPIES)
    shim = world / "bin" / "txdemo"
    proc = tc.txtool(world, "rollback", "txdemo", env={"TXENGINE_FS_BUSY": str(shim), **COPIES})
    assert proc.returncode == 0, proc.stderr
    assert not shim.is_symlink() and _run(shim).startswith("txdemo 1.0 (helper 1.0)")
    assert [p["tool"] for p in _status(world)["cleanup_pending"]] == ["txdemo"]
    later = tc.txtool(world, "resume")
    assert later.returncode == 0, later.stderr
    _clean(world)
    assert _run(shim).startswith("txdemo 1.0")
