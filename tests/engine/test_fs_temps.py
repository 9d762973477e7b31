"""The atomic primitives' temp files: none is left by a failure, and a kill's is swept.

The full-disk tests use a real ENOSPC: as root they mount a 256 KiB tmpfs, fill it, and
then place a file on it; they skip (with the reason) when the mount is not possible.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from txengine import (
    FileSystem,
    Journal,
    atomic_copy,
    atomic_symlink,
    atomic_write,
    is_engine_temp,
    sweep_temps,
)
from txengine._fs import temp_sibling

FS = FileSystem()


@pytest.fixture
def full_disk() -> Iterator[Path]:
    """A real, small tmpfs holding ``old`` (a file), ``link`` (a symlink) and a filler
    that takes every free block; unmounted afterwards whatever happens."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for a real ENOSPC needs root on Linux")
    mnt = Path(tempfile.mkdtemp(prefix="txengine-enospc-"))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip() or proc.returncode}")
    try:
        (mnt / "old").write_bytes(b"old contents\n")
        (mnt / "link").symlink_to("old")
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()


def entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


BIG = b"n" * (64 * 1024)


@pytest.mark.parametrize(
    "place",
    [
        pytest.param(lambda mnt, src: atomic_write(FS, mnt / "old", BIG), id="atomic_write"),
        pytest.param(lambda mnt, src: atomic_copy(FS, src, mnt / "old"), id="atomic_copy"),
        pytest.param(
            lambda mnt, src: atomic_symlink(FS, "t" * 3000, mnt / "link"), id="atomic_symlink"
        ),
        pytest.param(lambda mnt, src: FS.write_new(mnt / "new", BIG), id="write_new"),
        pytest.param(lambda mnt, src: FS.copy_new(src, mnt / "new"), id="copy_new"),
    ],
)
def test_a_real_full_disk_leaves_no_temp_and_the_old_file(
    full_disk: Path, tmp_path: Path, place: Callable[[Path, Path], None]
) -> None:
    src = tmp_path / "src"
    src.write_bytes(BIG)
    before = entries(full_disk)
    with pytest.raises(OSError) as info:
        place(full_disk, src)
    assert info.value.errno == errno.ENOSPC
    assert entries(full_disk) == before == ["filler", "link", "old"]
    assert (full_disk / "old").read_bytes() == b"old contents\n"
    assert os.readlink(full_disk / "link") == "old"


def test_a_failed_rename_removes_the_temp(tmp_path: Path) -> None:
    """The rename onto a directory fails (EISDIR): the written temp goes too."""
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        atomic_write(FS, tmp_path / "d", b"data")
    assert entries(tmp_path) == ["d"]


def test_temp_names_say_whose_they_are(tmp_path: Path) -> None:
    tmp = temp_sibling(tmp_path / "tool")
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(f".tool.txengine-{os.getpid()}-") and tmp.name.endswith(".tmp")
    assert is_engine_temp(tmp)
    long = temp_sibling(tmp_path / ("é" * 127))  # 254 bytes: the name is shortened to fit
    assert len(long.name.encode()) <= 255 and is_engine_temp(long)
    for other in (
        ".tool.tmp-0123abcd",  # 0.1.0's names carry no pid: never ours to judge
        ".tool.txengine-12-0123abcd",
        "tool.txengine-12-0123abcd.tmp",
        ".tool.txengine-0-0123abcd.tmp",
        ".tool.txengine-12-0123ABCD.tmp",
        ".tool.txengine-x-0123abcd.tmp",
        ".tool.txengine-aside-0123abcd",
    ):
        assert not is_engine_temp(tmp_path / other), other


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_sweep_removes_only_temps_whose_writer_is_gone(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # until it has exited, unreaped
            if Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.01)
        dead = dead_pid()
        name = lambda pid, tok="0123abcd": f".tool.txengine-{pid}-{tok}.tmp"  # noqa: E731
        gone = [name(dead), name(zombie.pid, "00000001"), name(sleeper.pid, "00000002")]
        kept = [name(sleeper.pid), name(os.getpid()), ".tool.tmp-0123abcd", "tool", "notes"]
        for n in gone + kept:
            (tmp_path / n).write_text("x")
        os.symlink("tool", tmp_path / name(dead, "00000003"))  # a link's temp is a link
        gone.append(name(dead, "00000003"))
        old = time.time() - 7 * 3600  # a live pid, but hours old: the pid was reused
        os.utime(tmp_path / name(sleeper.pid, "00000002"), (old, old))
        (tmp_path / name(dead, "00000004")).mkdir()  # we never make directories
        kept.append(name(dead, "00000004"))
        if os.geteuid() == 0:  # another user's file is never ours, whatever its name
            other = tmp_path / name(dead, "00000005")
            other.write_text("theirs")
            os.chown(other, 65534, 65534)
            kept.append(other.name)

        removed = sweep_temps(tmp_path)

        assert sorted(p.name for p in removed) == sorted(gone)
        assert entries(tmp_path) == sorted(kept)
        assert sweep_temps(tmp_path) == []
        assert sweep_temps(tmp_path / "missing") == []
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


CHILD = """
import sys
from pathlib import Path
from txengine import FileSystem, Journal, atomic_write
target = Path(sys.argv[1])
if sys.argv[2] == "write":
    atomic_write(FileSystem(), target, b"new")
else:
    Journal.open(target)  # a new journal: its log is placed atomically
"""


def killed_child(tmp_path: Path, *args: str) -> None:
    env = dict(os.environ, TXENGINE_FAILPOINTS="fs.replace=kill")
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr


def test_a_killed_write_leaves_a_temp_that_the_sweep_removes(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    killed_child(tmp_path, str(target), "write")
    (left,) = [p for p in tmp_path.iterdir() if p != target]
    assert is_engine_temp(left) and left.read_bytes() == b"new"
    assert sweep_temps(tmp_path) == [left]
    assert entries(tmp_path) == ["file"] and target.read_bytes() == b"old"


def test_opening_a_journal_sweeps_the_temp_a_kill_left_there(tmp_path: Path) -> None:
    jdir = tmp_path / "j"
    killed_child(tmp_path, str(jdir), "journal")
    assert [p.name for p in jdir.iterdir() if is_engine_temp(p)]
    with Journal.open(jdir):
        assert not [p.name for p in jdir.iterdir() if is_engine_temp(p)]
