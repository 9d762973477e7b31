"""``txtool demo``: the promise, shown offline in a throwaway home.

Installs txdemo 1.0 from a wheelhouse built on the spot, then upgrades it to 2.0 twice:
once with the shim "in use" (the Windows failure of the peer's bug, injected through the
engine's filesystem seam), which fails and is undone; once killed half way (SIGKILL),
which leaves an incomplete operation that the next ``upgrade`` finishes. Shims are copies
(``TXTOOL_SHIMS=copy``, as on Windows), so each upgrade really replaces the executable. Then
it rolls back to 1.0, offline, and forward again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .wheelhouse import build_demo_wheelhouse


class _Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.env = {
            **os.environ,
            "TXTOOL_HOME": str(root / "home"),
            "TXTOOL_BIN_DIR": str(self.bin),
            "TERM": "dumb",
            "TXTOOL_SHIMS": "copy",  # the Windows way: each upgrade replaces the executable
        }
        self.env.pop("TXENGINE_FAILPOINTS", None)
        self.failures: list[str] = []

    def txtool(self, *args: str, expect: int = 0, failpoints: str = "", note: str = "") -> str:
        env = dict(self.env)
        if failpoints:
            env["TXENGINE_FAILPOINTS"] = failpoints
        print(f"\n$ txtool {' '.join(args)}" + (f"    # {note}" if note else ""), flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "txtool", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = proc.stdout.rstrip()
        if out:
            print("  " + out.replace("\n", "\n  "))
        print(f"  [exit {proc.returncode}]")
        if proc.returncode != expect:
            self.failures.append(f"txtool {' '.join(args)} exited {proc.returncode}, not {expect}")
        return out

    def shim(self, expect: str | None) -> None:
        path = self.bin / "txdemo"
        print(f"\n$ {path}")
        if not os.path.lexists(path):
            print("  (no such file)")
            got = None
        else:
            proc = subprocess.run([str(path)], capture_output=True, text=True)
            got = proc.stdout.strip()
            print(f"  {got}")
        if (expect is None and got is not None) or (
            expect is not None and not (got or "").startswith(expect)
        ):
            self.failures.append(f"txdemo printed {got!r}, expected {expect!r}")


def run_demo(keep: bool = False) -> int:
    root = Path(tempfile.mkdtemp(prefix="txtool-demo-"))
    try:
        wheels = build_demo_wheelhouse(root / "wheels")
        d = _Demo(root)
        print(f"demo home: {root} (wheelhouse: {wheels}, offline)")
        d.txtool("install", "txdemo==1.0", "--no-index", "--find-links", str(wheels))
        d.shim("txdemo 1.0")
        d.txtool(
            "upgrade",
            "txdemo@latest",
            expect=1,
            failpoints=f"fs.link@{d.bin}/txdemo=in-use",
            note="the new shim cannot be placed: the old one is in use",
        )
        d.shim("txdemo 1.0")
        d.txtool("status")
        d.txtool(
            "upgrade",
            "txdemo@latest",
            expect=-9,
            failpoints="step.remove-shims.removed=kill",
            note="the process is killed half way (SIGKILL)",
        )
        d.shim(None)
        d.txtool("status", expect=3, note="the half-done upgrade is on record, with its fix")
        d.txtool("upgrade", "txdemo@latest", note="the next upgrade finishes it first")
        d.shim("txdemo 2.0")
        d.txtool("verify")
        d.txtool("rollback", "txdemo", note="back to the kept 1.0, no index needed")
        d.shim("txdemo 1.0")
        d.txtool("rollback", "txdemo", note="and a rollback can be rolled back")
        d.shim("txdemo 2.0")
        d.txtool("verify")
        d.txtool("history")
        if d.failures:
            print("\ndemo FAILED:\n  " + "\n  ".join(d.failures))
            return 1
        print("\ndemo OK: every failure was reported, nothing was left half done")
        return 0
    finally:
        if keep:
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)
