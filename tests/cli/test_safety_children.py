"""A SIGKILL of txtool alone leaves no uv/pip running and writing (issue 7.10): the child,
caught downloading from a real index that holds the wheel, dies with txtool; afterwards
`resume` and `resume --revert` leave a working tool or no tool, and nothing reappears."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from txcli import Tx
from txindex import Index

from txtool.cli import OK


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(proc.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap the orphan)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def held(tx: Tx) -> Iterator[Index]:
    """An index that holds any download once the new environment exists (pip's at its own
    path, uv's in a build place): install-env's uv/pip is then blocked inside its window,
    with the environment half built."""
    tools = tx.home / "tools" / "txdemo"

    def in_install(path: str) -> bool:
        built = tx.building() or (tools.is_dir() and any(tools.iterdir()))
        return path.startswith("/files/") and built

    index = Index(tx.wheelhouse, hold=in_install)
    yield index
    index.close()


@pytest.mark.parametrize("backend", ["uv", "pip"])
@pytest.mark.parametrize("direction", ["resume", "revert"])
def test_sigkill_of_txtool_takes_its_child_along(
    tx: Tx, held: Index, backend: str, direction: str, reap: list
) -> None:
    env = {"UV_NO_CACHE": "1", "PIP_NO_CACHE_DIR": "1"}
    args = ["install", "txdemo==1.0", "--backend", backend, "--index-url", held.url]
    proc = tx.spawn(*args, **env)
    reap.append(proc)
    assert held.held.wait(60), proc.communicate(timeout=5)
    children = [c for c in _children(proc.pid) if _running(c)]
    assert children, "the installer child should be running while the index holds it"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while any(_running(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [c for c in children if _running(c)]
    held.release()  # an orphan, if any, would now go on writing into the environment
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "uv/pip outlived the txtool that started it"

    if direction == "revert":
        tx("resume", "--revert", **env)
        time.sleep(1)  # what an orphan would write, it would have written by now
        assert tx.envs("txdemo") == []
        assert not os.path.lexists(tx.bin / "txdemo")
    else:
        tx("resume", **env)
        assert tx.shim() == "txdemo 1.0 (helper 1.0)"
        (built,) = tx.envs("txdemo")
        assert tx.tool("txdemo")["environment"] == str(built)
    assert tx("status", expect=OK)
    tx.assert_clean()
