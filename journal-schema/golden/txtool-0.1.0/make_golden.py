"""Write the golden journals of txtool 0.1.0: operations SIGKILLed inside each step.

Run with the *0.1.0* txtool (commit 689a9a1) on its own interpreter, as root or not::

    git worktree add /tmp/tx010 689a9a1 && python3 -m venv /tmp/tx010/.venv
    /tmp/tx010/.venv/bin/pip install -e /tmp/tx010/engine -e /tmp/tx010
    /tmp/tx010/.venv/bin/python journal-schema/golden/txtool-0.1.0/make_golden.py

Every scenario lives under the fixed root ``/tmp/txtool-golden-0.1.0`` (the journal holds
absolute paths); its home and bin dir are packed into ``SCENARIO.tar.gz``, and
``scenarios.json`` says what was killed where. ``tests/cli/test_golden_010.py`` unpacks each
at the same root, points the environments at the interpreter running the tests, and
resumes and reverts it with today's code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from txtool.wheelhouse import build_test_wheelhouse

ROOT = Path("/tmp/txtool-golden-0.1.0")
HERE = Path(__file__).parent

# name -> (setup commands, the killed command, its failpoint)
SCENARIOS: dict[str, tuple[list[list[str]], list[str], str]] = {
    **{
        f"upgrade-killed-in-{step}": (
            [["install", "txdemo==1.0"]],
            ["upgrade", "txdemo"],
            f"step.{step}.{point}=kill",
        )
        for step, point in [
            ("resolve", "start"),
            ("install-env", "installed"),
            ("remove-shims", "removed"),
            ("copy-shims", "copied"),
            ("remove-env", "removed"),
        ]
    },
    "install-killed-in-install-env": (
        [],
        ["install", "txdemo==1.0"],
        "step.install-env.installed=kill",
    ),
    "uninstall-killed-after-remove-shims": (
        [["install", "txdemo==1.0"]],
        ["uninstall", "txdemo"],
        "journal.after.step-done#1=kill",
    ),
}


def run(scenario: Path, args: list[str], failpoints: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TXTOOL_", "TXENGINE_"))}
    env |= {"TXTOOL_HOME": str(scenario / "home"), "TXTOOL_BIN_DIR": str(scenario / "bin")}
    if failpoints:
        env["TXENGINE_FAILPOINTS"] = failpoints
    index = ["--no-index", "--find-links", str(ROOT / "wheelhouse")]
    cmd = [sys.executable, "-m", "txtool", *args]
    if args[0] in ("install", "upgrade"):
        cmd += index
    return subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    build_test_wheelhouse(ROOT / "wheelhouse")
    manifest = {}
    for name, (setup, killed, failpoints) in SCENARIOS.items():
        scenario = ROOT / name
        for args in setup:
            assert run(scenario, args) == 0, (name, args)
        code = run(scenario, killed, failpoints)
        assert code == -9, (name, code)
        with tarfile.open(HERE / f"{name}.tar.gz", "w:gz") as tar:
            for part in ("home", "bin"):
                if (scenario / part).exists():
                    tar.add(scenario / part, arcname=part)
        manifest[name] = {"setup": setup, "killed": killed, "failpoints": failpoints}
    (HERE / "scenarios.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
