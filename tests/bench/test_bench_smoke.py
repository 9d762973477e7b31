"""Each bench script runs to its table in quick mode (figures are not checked: not a timed test)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("compare.py", "txtool --version / python -c pass"),
        ("history.py", "compacting no-op upgrade"),
        ("parallel.py", "at once / one by one"),
        ("journal.py", "replay records/s"),
        ("breakdown.py", "imports of an upgrade"),
    ],
)
def test_bench_quick(script: str, expect: str) -> None:
    if script != "journal.py" and shutil.which("uv", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("uv is not installed beside this interpreter")
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # journal.py exits 1 when a goal is missed on a loaded machine: only a crash is a failure
    assert proc.returncode in (0, 1) if script == "journal.py" else proc.returncode == 0, (
        proc.stderr
    )
    assert expect in proc.stdout, proc.stdout + proc.stderr
