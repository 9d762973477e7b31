"""Fixtures of the harness tests.

The campaigns start hundreds of short children that fsync every journal record; on a disk
those fsyncs, not the work, dominate. Kills, faults and the power-loss model do not depend
on the filesystem, so the cases run on tmpfs (``/dev/shm``) when there is one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHM = Path("/dev/shm")


@pytest.fixture
def workroot(tmp_path: Path) -> Iterator[Path]:
    """Where a test's campaign puts its case directories."""
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="txengine-harness-", dir=SHM))
        yield root
        shutil.rmtree(root, ignore_errors=True)
    else:
        yield tmp_path
