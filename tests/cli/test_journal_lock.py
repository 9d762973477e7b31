"""The journal seen from the command line (show, verify, compact, corruption, a newer format)
and the lock that keeps a second txtool out."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from txtool.cli import BUSY, INCOMPLETE, JOURNAL, OK


def _frame(payload: bytes) -> bytes:
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def test_journal_show_and_verify(txdemo1) -> None:
    tx = txdemo1
    verified = tx("journal", "verify")
    assert verified.stdout.startswith("journal OK: 1 operations")
    shown = tx("journal", "show").stdout.splitlines()
    assert shown and all(ln.startswith("journal.log: {") for ln in shown)
    records = [json.loads(ln) for ln in tx("journal", "show", "--json").stdout.splitlines()]
    types = [r["type"] for r in records]
    assert (
        types[0] == "header" and "op-started" in types and types[-1] in ("committed", "cleaned-up")
    )
    assert "committed" in types


def test_journal_compact_keeps_tools(txdemo1) -> None:
    tx = txdemo1
    tx.install("multitool==1.0")
    proc = tx("journal", "compact")
    assert "compacted 2 closed operations" in proc.stdout
    assert (tx.journal / "journal.snapshot").exists()
    assert {t["name"]: t["version"] for t in tx.list_json()} == {
        "txdemo": "1.0",
        "multitool": "1.0",
    }
    tx("journal", "verify")
    tx.assert_clean()
    tx("upgrade", "txdemo@latest")  # a compacted history still knows what to upgrade from
    assert tx.shim() == "txdemo 2.0 (helper 2.0)"
    assert len(tx("history").stdout.splitlines()) == 3


COMMANDS = [
    pytest.param(["list"], id="list"),
    pytest.param(["status"], id="status"),
    pytest.param(["verify"], id="verify"),
    pytest.param(["history"], id="history"),
    pytest.param(["journal", "verify"], id="journal-verify"),
    pytest.param(["install", "multitool"], id="install"),
    pytest.param(["upgrade", "txdemo@latest"], id="upgrade"),
    pytest.param(["uninstall", "txdemo"], id="uninstall"),
    pytest.param(["resume"], id="resume"),
]


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory: pytest.TempPathFactory, make_tx):
    """A home whose journal has a bad checksum in a middle record; returns (tx, offset)."""
    tx = make_tx(tmp_path_factory.mktemp("corrupt"))
    tx.install("txdemo==1.0")
    log = tx.journal / "journal.log"
    lines = log.read_bytes().splitlines(keepends=True)
    assert len(lines) > 6
    offset = sum(len(ln) for ln in lines[:3])
    # Flip one character of the payload: the frame stays, the checksum no longer matches.
    bad = bytearray(lines[3])
    bad[-3] = ord("X") if bad[-3] != ord("X") else ord("Y")
    lines[3] = bytes(bad)
    log.write_bytes(b"".join(lines))
    return tx, offset


@pytest.mark.parametrize("argv", COMMANDS)
def test_corrupt_middle_record_stops_every_command(corrupt, argv: list[str]) -> None:
    tx, offset = corrupt
    before = tx.digest()
    extra = tx.index if argv[0] == "install" else []
    proc = tx(*argv, *extra, expect=JOURNAL)
    err = tx.one_error(proc)
    assert f"at byte {offset}" in err and "journal.log" in err
    assert tx.digest() == before  # nothing repaired, nothing cut off, nothing installed


@pytest.fixture(scope="module")
def too_new(tmp_path_factory: pytest.TempPathFactory, make_tx):
    tx = make_tx(tmp_path_factory.mktemp("too-new"))
    tx.install("txdemo==1.0")
    log = tx.journal / "journal.log"
    lines = log.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0][9:])
    assert header["type"] == "header" and header["v"] == 1
    header["v"] = 2
    lines[0] = _frame(json.dumps(header, separators=(",", ":")).encode())
    log.write_bytes(b"".join(lines))
    return tx


@pytest.mark.parametrize("argv", COMMANDS)
def test_journal_from_a_newer_txtool_is_refused(too_new, argv: list[str]) -> None:
    tx = too_new
    before = tx.digest()
    extra = tx.index if argv[0] == "install" else []
    proc = tx(*argv, *extra, expect=JOURNAL)
    err = tx.one_error(proc)
    assert "newer" in err and "format 2" in err
    assert tx.digest() == before


def test_lock_busy_names_the_holder(txdemo1, reap) -> None:
    tx = txdemo1
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from txengine import Journal\n"
            "j = Journal.open(sys.argv[1])\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(tx.journal),
        ],
        env=tx.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    reap.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    before = tx.digest(journal=False)

    proc = tx.install("multitool", TXTOOL_LOCK_TIMEOUT="0.5", expect=BUSY)
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("txtool: waiting for another txtool")
    assert f"pid {holder.pid}" in lines[0]
    err = tx.one_error(proc)
    assert str(holder.pid) in err and "lock" in err
    assert tx.digest(journal=False) == before

    # Reading needs no lock.
    assert tx("list").returncode == OK
    holder.kill()
    holder.wait(timeout=10)
    tx.install("multitool==1.0")  # the lock of a dead holder is free again
    assert tx.shim("mt-a") == "mt-a 1.0"


def _killed_upgrade(tx) -> None:
    tx("upgrade", "txdemo@latest", failpoints="step.switch-current.switched=kill", expect=-9)


@pytest.mark.parametrize("who", ["reused-pid", "zombie"])
def test_a_dead_holders_note_is_not_a_running_txtool(txdemo1, reap, who) -> None:
    tx = txdemo1
    _killed_upgrade(tx)
    # The note of the dead txtool now names a live unrelated process, or a zombie.
    other = subprocess.Popen(["sleep", "30"] if who == "reused-pid" else ["true"])
    reap.append(other)
    if who == "zombie":
        stat = Path(f"/proc/{other.pid}/stat")
        tx.wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", what="zombie")
    (tx.journal / "lock.owner").write_text(f"{other.pid}\n")
    status = tx("status", expect=INCOMPLETE)
    assert "INCOMPLETE upgrade txdemo" in status.stdout
    assert "RUNNING" not in status.stdout and "another txtool" not in status.stderr
    assert "INCOMPLETE upgrade" in tx("list", expect=INCOMPLETE).stdout
    tx("upgrade", "txdemo@latest")  # and the lock is free: re-running is the fix
    tx.assert_clean()


def test_an_operation_of_a_live_txtool_shows_as_running(txdemo1, reap) -> None:
    tx = txdemo1
    proc = tx.spawn("upgrade", "txdemo@latest", failpoints="step.install-env.created=sleep:4")
    reap.append(proc)
    tx.wait_for(tx.building, what="the new environment")
    status = tx("status", expect=OK)
    assert "RUNNING upgrade txdemo" in status.stdout and f"pid {proc.pid}" in status.stdout
    data = json.loads(tx("status", "--json", expect=OK).stdout)
    assert data["incomplete"] == [] and data["running"][0]["pid"] == proc.pid
    listing = tx("list", expect=OK)
    assert "RUNNING upgrade txdemo" in listing.stdout
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == OK, err
    tx.assert_clean()


def test_compaction_keeps_tools_behind_no_op_upgrades(txdemo1) -> None:
    """Only the operations that define a tool stay current (the upgrade, and the install of
    the generation kept for rollback); the no-op upgrade after them is history only, and
    `history` leaves it out."""
    tx = txdemo1
    tx("upgrade", "txdemo@latest")  # to 2.0
    tx("upgrade", "txdemo@latest")  # nothing newer: a no-op, the latest operation of the tool
    tx("journal", "compact")
    assert {t["name"]: t["version"] for t in tx.list_json()} == {"txdemo": "2.0"}
    assert sorted(p.name for p in tx.journal.iterdir() if p.name.startswith("journal.")) == [
        "journal.history",
        "journal.log",
        "journal.snapshot",
    ]
    from txengine import iter_history, load

    assert [v.kind for v in load(tx.journal)] == ["install", "upgrade"]
    assert [v.kind for v in iter_history(tx.journal)] == ["install", "upgrade", "upgrade"]
    shown = tx("history").stdout.splitlines()  # `history` reads the segment too
    assert [line.split()[3] for line in shown] == ["install", "upgrade"]
    assert [op["kind"] for op in json.loads(tx("history", "--json").stdout)] == [
        "install",
        "upgrade",
    ]
    tx.assert_clean()
