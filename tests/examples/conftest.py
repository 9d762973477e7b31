"""The example installers under ``examples/`` are importable here, and in their children."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BUNDLES = Path(__file__).resolve().parents[2] / "examples" / "bundles"
sys.path.insert(0, str(BUNDLES))
SHM = Path("/dev/shm")


@pytest.fixture
def workroot(tmp_path: Path) -> Iterator[Path]:
    """Where a campaign puts its cases: tmpfs when there is one (fsyncs dominate on disk)."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="txengine-examples-", dir=SHM))
        yield root
        shutil.rmtree(root, ignore_errors=True)
    else:
        yield tmp_path
