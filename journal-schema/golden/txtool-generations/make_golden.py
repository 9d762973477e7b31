"""Write the golden journals of the first txtool with generations, once.

    python journal-schema/golden/txtool-generations/make_golden.py

Runs the real CLI under the fixed root ``/tmp/txtool-golden-generations`` (journals hold
absolute paths) from the offline test wheelhouse: install, upgrade, rollback, a forced
reinstall, gc, and ``upgrade --all`` with its ``rollback --all``; then an uninstall of one
tool. Keeps each journal directory (``log/``: as written; ``compacted/``: after
``journal compact``) without the environments, and ``expected.json``: what the projection
of installed tools must give. ``tests/cli/test_generations.py`` checks that every later
release projects these journals to the same tools, generations and stable paths. Golden
files are never regenerated: the script refuses to overwrite them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from txtool.locations import Locations
from txtool.reading import read_state
from txtool.tools import project
from txtool.wheelhouse import build_test_wheelhouse

ROOT = Path("/tmp/txtool-golden-generations")
HERE = Path(__file__).resolve().parent
KEEP = ("journal.log", "journal.snapshot", "journal.history")


def summary(loc: Locations) -> dict[str, Any]:
    """What a release must project from the journal: per tool, the fields rollback uses."""
    tools = project(read_state(loc, print))
    return {
        name: {
            "version": t.version,
            "generation": t.number,
            "previous": t.previous,
            "stable_path": t.link,
            "shims": t.shims,
            "targets": t.targets,
            "generations": [[g.number, g.version, g.env] for g in t.generations],
        }
        for name, t in sorted(tools.items())
    }


def main() -> None:
    if any((HERE / d).exists() for d in ("log", "compacted")):
        sys.exit("golden journals exist already; they are never regenerated")
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(mode=0o755)
    wheels = build_test_wheelhouse(ROOT / "wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TXTOOL_", "TXENGINE_"))}
    env |= {"TXTOOL_HOME": str(ROOT / "home"), "TXTOOL_BIN_DIR": str(ROOT / "bin")}
    index = ["--no-index", "--find-links", str(wheels)]
    for argv in (
        ["install", "txdemo==1.0", "multitool==1.0", *index],
        ["upgrade", "txdemo"],
        ["rollback", "txdemo"],
        ["install", "--force", "txdemo==2.0", *index],
        ["gc", "--keep", "1"],
        ["upgrade", "--all"],
        ["rollback", "--all"],
        ["install", "slowtool==1.0", *index],
        ["uninstall", "slowtool"],
    ):
        subprocess.run([sys.executable, "-m", "txtool", *argv], env=env, check=True)
    loc = Locations(ROOT / "home", ROOT / "bin")
    expected = {"log": summary(loc)}
    (HERE / "log").mkdir()
    for name in KEEP:
        if (loc.journal_dir / name).exists():
            shutil.copy2(loc.journal_dir / name, HERE / "log" / name)
    subprocess.run([sys.executable, "-m", "txtool", "journal", "compact"], env=env, check=True)
    expected["compacted"] = summary(loc)
    assert expected["compacted"] == expected["log"], "compaction changed the projection"
    (HERE / "compacted").mkdir()
    for name in KEEP:
        if (loc.journal_dir / name).exists():
            shutil.copy2(loc.journal_dir / name, HERE / "compacted" / name)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
