"""End-to-end fixtures for the ``txtool`` command line.

Every test gets its own home and bin dir and runs ``python -m txtool`` as a real subprocess
against real uv/pip and real wheels (built once per session, no network).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from txcli import Tx

from txtool.wheelhouse import build_test_wheelhouse


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="session")
def make_tx(wheelhouse: Path) -> Callable[[Path], Tx]:
    """For fixtures of a wider scope: a :class:`Tx` rooted at the given directory."""
    return lambda root: Tx(root, wheelhouse)


@pytest.fixture
def tx(tmp_path: Path, wheelhouse: Path) -> Tx:
    return Tx(tmp_path, wheelhouse)


@pytest.fixture
def txdemo1(tx: Tx) -> Tx:
    """A home with txdemo 1.0 installed."""
    tx.install("txdemo==1.0")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
    return tx


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; killed (by their own pid) if still running at the end."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
