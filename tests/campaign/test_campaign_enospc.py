"""A sample of the real-ENOSPC sweep (``txenospc``; the whole sweep runs in ``run_full.py``):
a tmpfs that really fills up at a few chosen points of install, upgrade and uninstall."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import txenospc as te

from txengine.testing import failpoints

REASON = te.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _case(name: str, label: str, wheels: Path, root: Path) -> te.Outcome:
    s = te.sweep(name)
    cal = te.calibrate(s, wheels, root, want=(label,))
    return te.run_case(s, cal, te.point(cal, label), wheels, root)


@pytest.mark.parametrize(
    ("sweep", "label"),
    [
        ("install", "record op-started"),
        ("upgrade", "record committed"),
        ("uninstall", "record op-started"),
        ("upgrade", "record cleaned-up"),
        ("uninstall", "record step-started"),
        ("upgrade-copy", "fs.copy bin/.txdemo.txengine-*.tmp"),
        ("install-copy", "fs.write journal/.journal.log.txengine-*.tmp"),
    ],
)
def test_full_disk_keeps_the_promise(
    sweep: str, label: str, wheels: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = _case(sweep, label, wheels, tmp_path_factory.mktemp("enospc"))
    assert not out.problems, f"{out.summary}:\n" + "\n".join(out.problems)


def test_fill_makes_the_next_write_really_fail(tmp_path: Path) -> None:
    """The failpoint action itself: after ``fill`` the kernel refuses a new block and a new
    inode; after ``fill:blocks`` a new file is made but its first block is refused."""
    with te.tmpfs(tmp_path / "mnt") as mnt:
        (mnt / "d").mkdir()
        for action, inodes_left in (("fill", False), ("fill:blocks", True)):
            failpoints.configure(f"x={action}")
            try:
                failpoints.hit("x", mnt / "d" / "new")
            finally:
                failpoints.configure(None)
            try:
                fd = os.open(mnt / "d" / "new", os.O_CREAT | os.O_WRONLY)
            except OSError as e:
                assert not inodes_left and e.errno == errno.ENOSPC
            else:
                assert inodes_left
                with pytest.raises(OSError) as err:
                    os.write(fd, b"x")
                os.close(fd)
                assert err.value.errno == errno.ENOSPC
            te.free_space(mnt)
            assert not list(mnt.glob(te.FILL_PREFIX + "*"))
            with open(mnt / "d" / "after", "wb") as f:  # freeing really frees
                f.write(bytes(8192))
            os.unlink(mnt / "d" / "after")
            if os.path.exists(mnt / "d" / "new"):
                os.unlink(mnt / "d" / "new")
