"""The journal on disk: framing, torn tails, corruption, versions, lifecycle, compaction, lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from txhelpers import log_records, project, raw_line

import txengine._journal as journal_mod
from txengine import (
    Journal,
    JournalCorrupt,
    JournalTooNew,
    OperationView,
    iter_history,
    latest_committed,
    load,
)
from txengine._events import (
    CleanedUp,
    Committed,
    Header,
    OpStarted,
    PlannedStep,
    StepDone,
    StepStarted,
)
from txengine._framing import REGION, check_line, decode_line
from txengine._journal import HISTORY_NAME, LOG_NAME, SNAPSHOT_NAME, frame
from txengine._replay import JournalState

PLAN = [PlannedStep(type="x", args={})]


def _full_op(j: Journal, subject: str = "s") -> str:
    """Append a whole one-step operation, committed and cleaned up."""
    op = j.new_op_id()
    j.append_sync(OpStarted, op, kind="install", subject=subject, plan=PLAN)
    j.append_sync(StepStarted, op, index=0, intent={"i": 1})
    j.append_sync(StepDone, op, index=0, result={"r": subject})
    j.append_sync(Committed, op)
    j.append_sync(CleanedUp, op)
    return op


def _open_op(j: Journal) -> str:
    op = j.new_op_id()
    j.append_sync(OpStarted, op, kind="install", subject="open", plan=PLAN)
    j.append_sync(StepStarted, op, index=0)
    return op


def _line_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offsets, pos = [], 0
    for line in data.splitlines(keepends=True):
        offsets.append(pos)
        pos += len(line)
    return offsets


def test_round_trip(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        done = _full_op(j)
        live = _open_op(j)
        before = project(j.state)
    assert (tmp_path / LOG_NAME).stat().st_mode & 0o777 == 0o600
    with Journal.open(tmp_path) as j:
        assert project(j.state) == before
        assert j.state.ops[done].state == "done"
        assert j.state.ops[done].results == [{"r": "s"}]
        assert j.state.ops[live].state == "step_open"
        assert j.state.ops[live].intents == [{}]
        rec = j.append_sync(StepDone, live, index=0)
        assert rec.seq == 8
    assert load(tmp_path).ops[live].state == "running"


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(None, id="half-a-record"),
        pytest.param(b"\x00garbage\xff\nmore garbage\n\x01", id="garbage"),
        pytest.param(b"deadbeef {}\n", id="bad-checksum-line"),
    ],
)
def test_torn_tail_is_cut_off_with_a_warning(tmp_path: Path, tail: bytes | None) -> None:
    with Journal.open(tmp_path) as j:
        op = _open_op(j)
        before = project(j.state)
    log = tmp_path / LOG_NAME
    size = log.stat().st_size
    if tail is None:
        line = frame(StepDone(seq=99, op=op, ts=0.0, index=0))
        tail = line[: len(line) // 2]
    with open(log, "ab") as f:
        f.write(tail)

    warnings: list[str] = []
    assert project(load(tmp_path, warnings.append)) == before
    assert len(warnings) == 1 and "ignored" in warnings[0]
    assert log.stat().st_size == size + len(tail)  # load() changes nothing

    warnings.clear()
    with Journal.open(tmp_path, warn=warnings.append) as j:
        assert len(warnings) == 1
        assert "cut off" in warnings[0] and f"at byte {size}" in warnings[0]
        assert log.stat().st_size == size
        assert project(j.state) == before
        j.append_sync(StepDone, op, index=0, result={"ok": True})
    warnings.clear()
    state = load(tmp_path, warnings.append)
    assert warnings == []
    assert state.ops[op].results == [{"ok": True}]


def test_corrupt_record_in_the_middle_names_file_and_offset(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        _full_op(j)
    log = tmp_path / LOG_NAME
    offsets = _line_offsets(log)
    data = bytearray(log.read_bytes())
    target = offsets[3]  # the step-done record (line 0 is the header)
    i = data.index(b'"r"', target)
    data[i + 1] = ord("R")  # a single changed byte, checksum now wrong
    log.write_bytes(bytes(data))

    for attempt in (lambda: load(tmp_path), lambda: Journal.open(tmp_path)):
        with pytest.raises(JournalCorrupt) as info:
            attempt()
        assert info.value.offset == target
        assert info.value.path == log
        assert str(log) in str(info.value) and f"at byte {target}" in str(info.value)
    assert log.read_bytes() == bytes(data)  # never "repaired" away


def _long_log(directory: Path, ops: int) -> list[bytes]:
    """Write a log of ``ops`` one-step operations, several replay chunks long; its lines."""
    lines = [frame(Header(kind="log", created=0.0))]
    seq = 0
    for n in range(ops):
        op = f"{n:012x}"
        for cls, fields in (
            (OpStarted, {"kind": "k", "subject": f"s{n % 7}", "plan": PLAN}),
            (StepStarted, {"index": 0, "intent": {"n": n}}),
            (StepDone, {"index": 0, "result": {"n": n}}),
            (Committed, {}),
            (CleanedUp, {}),
        ):
            seq += 1
            lines.append(frame(cls(seq=seq, op=op, ts=float(seq), **fields)))  # type: ignore[arg-type]
    (directory / LOG_NAME).write_bytes(b"".join(lines))
    return lines


MANY = 3 * REGION // 400 + 7  # operations: five lines of about 90 bytes each


def _line_after(lines: list[bytes], offset: int) -> int:
    """The index of the first of ``lines`` that starts after byte ``offset``."""
    pos = 0
    for i, line in enumerate(lines):
        if pos > offset:
            return i
        pos += len(line)
    raise AssertionError("the log is too short")


def _fold_line_by_line(lines: list[bytes]) -> JournalState:
    """What a journal's lines mean, folded one record at a time (the reference for load)."""
    state = JournalState()
    for line in lines[1:]:
        payload = check_line(line.rstrip(b"\n"))
        assert payload is not None
        state.apply(decode_line(Path(LOG_NAME), payload, 0))  # type: ignore[arg-type]
    return state


def test_a_log_of_many_chunks_loads_as_folded_line_by_line(tmp_path: Path) -> None:
    lines = _long_log(tmp_path, MANY)
    assert sum(map(len, lines)) > 3 * REGION
    state = load(tmp_path)
    assert len(state.ops) == MANY and state.last_seq == len(lines) - 1
    assert project(state) == project(_fold_line_by_line(lines))
    with Journal.open(tmp_path) as j:
        assert project(j.state) == project(state)
        assert j.compact() == len(state.ops)  # every record of the log was kept for it
    assert len(load(tmp_path).ops) == 7  # the latest operation of each subject


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda line: line[:20] + b"X" + line[21:], id="checksum"),
        pytest.param(lambda line: line[:8] + b"\t" + line[9:], id="tab-for-space"),
        pytest.param(lambda line: raw_line({"type": "step-done", "v": 1}), id="undecodable"),
        pytest.param(lambda line: raw_line({"type": "quantum", "v": 1}), id="unknown-type"),
        pytest.param(lambda line: frame(Header(kind="log", created=0.0)), id="header"),
        pytest.param(
            lambda line: frame(StepDone(seq=10**9, op="000000000000", ts=0.0, index=0)),
            id="illegal-transition",
        ),
    ],
)
def test_damage_in_a_later_chunk_is_named_at_its_offset(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    lines = _long_log(tmp_path, MANY)
    target = _line_after(lines, 2 * REGION + 100)  # a line of the third region
    lines[target] = damage(lines[target].rstrip(b"\n")).rstrip(b"\n") + b"\n"
    data = b"".join(lines)
    (tmp_path / LOG_NAME).write_bytes(data)
    for attempt in (lambda: load(tmp_path), lambda: Journal.open(tmp_path)):
        with pytest.raises(JournalCorrupt) as info:
            attempt()
        assert info.value.offset == sum(map(len, lines[:target]))
    assert (tmp_path / LOG_NAME).read_bytes() == data  # never "repaired" away


@pytest.mark.parametrize("sign", [b"+", b" "])
def test_a_checksum_is_eight_hex_digits_and_nothing_else(tmp_path: Path, sign: bytes) -> None:
    # A checksum with a leading zero, written as int() would also read it: "+abc..." or
    # " abc..." is the same number, but not the frame every writer writes.
    lines = _long_log(tmp_path, 30)
    target = next(i for i, line in enumerate(lines) if i > 1 and line.startswith(b"0"))
    lines[target] = sign + lines[target][1:]
    (tmp_path / LOG_NAME).write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt) as info:
        load(tmp_path)
    assert info.value.offset == sum(map(len, lines[:target]))


def test_a_newer_record_in_a_later_chunk_is_refused(tmp_path: Path) -> None:
    lines = _long_log(tmp_path, MANY)
    lines.insert(
        _line_after(lines, 2 * REGION + 100),
        raw_line({"type": "step-done", "v": 2, "seq": 1, "op": "x"}),
    )
    (tmp_path / LOG_NAME).write_bytes(b"".join(lines))
    with pytest.raises(JournalTooNew):
        load(tmp_path)


def test_a_torn_tail_after_many_chunks_is_cut_off(tmp_path: Path) -> None:
    lines = _long_log(tmp_path, MANY)
    size = (tmp_path / LOG_NAME).stat().st_size
    with open(tmp_path / LOG_NAME, "ab") as f:
        f.write(lines[-1][:30])
    warnings: list[str] = []
    assert project(load(tmp_path, warnings.append)) == project(_fold_line_by_line(lines))
    assert len(warnings) == 1 and f"at byte {size}" in warnings[0]


def _valid_log(tmp_path: Path) -> tuple[Path, str]:
    with Journal.open(tmp_path) as j:
        op = _open_op(j)
    return tmp_path / LOG_NAME, op


@pytest.mark.parametrize("last", [True, False], ids=["at-end", "in-middle"])
@pytest.mark.parametrize("kind", ["record", "header", "unknown-type"])
def test_newer_format_is_refused(tmp_path: Path, kind: str, last: bool) -> None:
    log, op = _valid_log(tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    if kind == "header":
        line = raw_line({"type": "header", "v": 2, "kind": "log", "created": 0.0})
        lines[0] = line
    else:
        rec = {"type": "step-done", "v": 2, "seq": 3, "op": op, "ts": 0.0, "index": 0}
        if kind == "unknown-type":
            rec = {"type": "quantum-step", "v": 2, "seq": 3, "op": op, "ts": 0.0, "spin": 1}
        lines.insert(len(lines) if last else 1, raw_line(rec))
    log.write_bytes(b"".join(lines))
    for attempt in (lambda: load(tmp_path), lambda: Journal.open(tmp_path)):
        with pytest.raises(JournalTooNew) as info:
            attempt()
        assert info.value.found == 2 and info.value.supported == 1
        assert "upgrade" in str(info.value)


def test_unknown_type_of_current_version_is_corrupt_not_skipped(tmp_path: Path) -> None:
    log, op = _valid_log(tmp_path)
    size = log.stat().st_size
    with open(log, "ab") as f:
        f.write(raw_line({"type": "quantum-step", "v": 1, "seq": 3, "op": op, "ts": 0.0}))
    with pytest.raises(JournalCorrupt) as info:
        load(tmp_path)
    assert info.value.offset == size


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"type": "step-done", "index": 0}, id="done-without-started"),
        pytest.param({"type": "committed"}, id="commit-with-step-pending"),
        pytest.param({"type": "step-started", "index": 1}, id="step-out-of-order"),
        pytest.param({"type": "cleaned-up"}, id="cleanup-before-commit"),
    ],
)
def test_illegal_sequence_is_corrupt(tmp_path: Path, bad: dict[str, object]) -> None:
    op = "feedfacecafe"
    lines = [
        frame(Header(kind="log", created=0.0)),
        frame(OpStarted(seq=1, op=op, ts=0.0, kind="k", subject="s", plan=[*PLAN, *PLAN], meta={})),
        raw_line({**bad, "v": 1, "seq": 2, "op": op, "ts": 0.0}),
        frame(StepStarted(seq=3, op=op, ts=0.0, index=0)),
    ]
    (tmp_path / LOG_NAME).write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt) as info:
        load(tmp_path)
    assert info.value.offset == len(lines[0]) + len(lines[1])
    assert "not allowed" in info.value.reason or "step" in info.value.reason


def test_sequence_numbers_must_increase(tmp_path: Path) -> None:
    op = "feedfacecafe"
    lines = [
        frame(Header(kind="log", created=0.0)),
        frame(OpStarted(seq=5, op=op, ts=0.0, kind="k", subject="s", plan=PLAN)),
        frame(StepStarted(seq=5, op=op, ts=0.0, index=0)),
    ]
    (tmp_path / LOG_NAME).write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match="not increasing"):
        load(tmp_path)


def test_compaction_folds_closed_ops_and_keeps_live_ones(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        closed = [_full_op(j, f"s{i}") for i in range(3)]
        live = _open_op(j)
        before = project(j.state)
        assert j.closed_in_log() == 3
        assert j.compact() == 3
        assert j.compact() == 0
        assert project(j.state) == before
        # The log holds only a header now; the live op's records moved to the snapshot.
        assert [r["type"] for r in log_records(tmp_path)] == ["header"]
        j.append_sync(StepDone, live, index=0, result={"after": "compact"})
        after = project(j.state)
    assert (tmp_path / SNAPSHOT_NAME).stat().st_mode & 0o777 == 0o600
    state = load(tmp_path)
    assert project(state) == after
    assert all(state.ops[op].compacted for op in closed)
    assert state.ops[closed[1]].results == [{"r": "s1"}]
    with Journal.open(tmp_path) as j:  # a second compaction folds the live op once done
        j.append_sync(Committed, live)
        j.append_sync(CleanedUp, live)
        assert j.compact() == 1
        final = project(j.state)
    assert project(load(tmp_path)) == final


def test_crash_between_snapshot_and_log_replacement(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        for i in range(2):
            _full_op(j, f"s{i}")
        live = _open_op(j)
        old_log = (tmp_path / LOG_NAME).read_bytes()
        j.compact()
        before = project(j.state)
    # The crash: the new snapshot is in place but the old log was never replaced.
    (tmp_path / LOG_NAME).write_bytes(old_log)
    state = load(tmp_path)
    assert project(state) == before
    assert len(state.ops) == 3
    with Journal.open(tmp_path) as j:
        assert project(j.state) == before
        j.append_sync(StepDone, live, index=0)
        j.append_sync(Committed, live)
        j.append_sync(CleanedUp, live)
        after = project(j.state)
    assert project(load(tmp_path)) == after
    with Journal.open(tmp_path) as j:
        assert j.compact() == 1
        assert [r["type"] for r in log_records(tmp_path)] == ["header"]
    assert project(load(tmp_path)) == after


# -- current state in the snapshot, history in its own segment ---------------------------------


def _history(directory: Path) -> list[tuple[str, str]]:
    return [(v.id, v.state) for v in iter_history(directory)]


def test_snapshot_keeps_current_state_and_history_keeps_every_closed_op(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        ops = [_full_op(j, "tool") for _ in range(3)] + [_full_op(j, "other")]
        live = _open_op(j)
        assert j.compact() == 4
        # In memory as on disk: the superseded operations of "tool" are history only.
        assert [v.id for v in j.state] == [ops[2], ops[3], live]
    state = load(tmp_path)
    assert [v.id for v in state] == [ops[2], ops[3], live]
    assert all(state.ops[op].compacted for op in ops[2:])
    assert _history(tmp_path) == [(op, "done") for op in ops] + [(live, "step_open")]


def test_compaction_appends_to_history_and_never_rewrites_it(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        first = [_full_op(j, f"s{i}") for i in range(5)]
        j.compact()
        history = (tmp_path / HISTORY_NAME).read_bytes()
        inode = (tmp_path / HISTORY_NAME).stat().st_ino
        snapshot = (tmp_path / SNAPSHOT_NAME).stat().st_size
        second = [_full_op(j, f"s{i}") for i in range(5)]
        assert j.compact() == 5
    grown = (tmp_path / HISTORY_NAME).read_bytes()
    assert grown.startswith(history) and len(grown) > len(history)
    assert (tmp_path / HISTORY_NAME).stat().st_ino == inode  # appended in place
    # Five subjects, five current operations: the snapshot does not grow with history.
    assert abs((tmp_path / SNAPSHOT_NAME).stat().st_size - snapshot) < 200
    assert [op for op, _ in _history(tmp_path)] == first + second


def test_retain_hook_decides_what_stays_current(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def keep_all(views: list[OperationView]) -> list[OperationView]:
        calls.append([v.subject for v in views])
        return list(views)

    with Journal.open(tmp_path, retain=keep_all) as j:
        ops = [_full_op(j, "a"), _full_op(j, "b"), _full_op(j, "a")]
        j.compact()
    assert calls == [["a", "a"], ["b"]]  # one call per subject, oldest first
    assert [v.id for v in load(tmp_path)] == ops
    with Journal.open(tmp_path) as j:  # the default again: the latest committed of a subject
        assert j.retain is latest_committed
        newer = _full_op(j, "b")
        j.compact(retain=lambda views: [])  # per call, over the journal's rule
    assert list(load(tmp_path)) == []
    assert [op for op, _ in _history(tmp_path)] == [*ops, newer]


def test_a_reverted_operation_is_history_only(tmp_path: Path) -> None:
    from txengine._events import (
        Reverted,
        RevertStarted,
        StepFailed,
        StepReverted,
        StepRevertStarted,
    )

    with Journal.open(tmp_path) as j:
        kept = _full_op(j, "t")
        op = j.new_op_id()
        j.append_sync(OpStarted, op, kind="upgrade", subject="t", plan=PLAN)
        j.append_sync(StepStarted, op, index=0)
        j.append_sync(StepFailed, op, index=0, error="boom")
        j.append_sync(RevertStarted, op, reason="boom")
        j.append_sync(StepRevertStarted, op, index=0)
        j.append_sync(StepReverted, op, index=0)
        j.append_sync(Reverted, op)
        j.compact()
    assert [v.id for v in load(tmp_path)] == [kept]
    assert _history(tmp_path) == [(kept, "done"), (op, "reverted")]


def test_crash_after_history_append_before_snapshot(tmp_path: Path) -> None:
    """The batch is in the history segment, the snapshot and log are the old ones: the next
    compaction must not append the batch again."""
    with Journal.open(tmp_path) as j:
        ops = [_full_op(j, "t") for _ in range(3)]
        log = (tmp_path / LOG_NAME).read_bytes()
        j.compact()
    (tmp_path / SNAPSHOT_NAME).unlink()
    (tmp_path / LOG_NAME).write_bytes(log)
    assert _history(tmp_path) == [(op, "done") for op in ops]  # not twice
    with Journal.open(tmp_path) as j:
        assert [v.id for v in j.state] == ops
        more = _full_op(j, "t")
        assert j.compact() == 4
    assert _history(tmp_path) == [(op, "done") for op in [*ops, more]]
    assert [v.id for v in load(tmp_path)] == [more]


def test_torn_history_tail_is_ignored_then_cut_off(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        ops = [_full_op(j, "t") for _ in range(2)]
        j.compact()
    path = tmp_path / HISTORY_NAME
    whole = path.read_bytes()
    torn = frame(Header(kind="log", created=0.0))[:20]  # a crash in the middle of an append
    path.write_bytes(whole + torn)
    warnings: list[str] = []
    assert [v.id for v in iter_history(tmp_path, warn=warnings.append)] == ops
    assert warnings and "torn" in warnings[0]
    with Journal.open(tmp_path) as j:
        more = _full_op(j, "t")
        j.compact()
    assert path.read_bytes().startswith(whole) and torn not in path.read_bytes()
    assert [op for op, _ in _history(tmp_path)] == [*ops, more]


def test_corrupt_history_line_is_named(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        for _ in range(3):
            _full_op(j, "t")
        j.compact()
    path = tmp_path / HISTORY_NAME
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    data[second + 20] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as info:
        list(iter_history(tmp_path))
    assert info.value.offset == second and info.value.path == path
    assert len(load(tmp_path).ops) == 1  # current state does not read history


def test_iter_history_streams(tmp_path: Path) -> None:
    """The first operation comes before the segment is read to its end."""
    with Journal.open(tmp_path) as j:
        first = _full_op(j, "t")
        for _ in range(50):
            _full_op(j, "t")
        j.compact()
    it = iter_history(tmp_path)
    assert next(it).id == first
    (tmp_path / SNAPSHOT_NAME).unlink()  # not read yet: only the segment was opened
    assert len(list(it)) == 50


@pytest.mark.anyio
async def test_group_commit_shares_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    calls: list[int] = []
    real = journal_mod._fsync_data

    def counting(fd: int) -> None:  # a measurement wrapper: it still syncs
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(journal_mod, "_fsync_data", counting)
    with Journal.open(tmp_path) as j:
        calls.clear()

        async def one(i: int) -> None:
            op = j.new_op_id()
            await j.append(OpStarted, op, kind="k", subject=str(i), plan=[])  # not synced alone
            await j.append(Committed, op)  # synced: the group shares the fdatasync

        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(one, i)
        assert j.state.last_seq == 128
    assert 1 <= len(calls) <= 4, f"{len(calls)} fsyncs for 64 concurrent appends"
    assert len(load(tmp_path).ops) == 64


def test_second_process_gets_lock_busy_with_holder_pid(tmp_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import sys, time
        from txengine import Journal, LockBusy
        waits = []
        start = time.monotonic()
        try:
            Journal.open({str(tmp_path)!r}, timeout=0.5, on_wait=waits.append)
        except LockBusy as e:
            print(f"{{time.monotonic() - start:.2f}}|{{waits}}|{{e}}")
            sys.exit(3)
        sys.exit(0)
        """
    )
    with Journal.open(tmp_path):
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", child], capture_output=True, text=True, timeout=30
        )
        assert time.monotonic() - t0 < 10
    assert proc.returncode == 3, proc.stderr
    waited, waits, message = proc.stdout.strip().split("|", 2)
    assert float(waited) >= 0.5
    assert waits == f"[{os.getpid()}]"
    assert f"process {os.getpid()}" in message and "waited 0.5s" in message
    # Once released, another process gets it.
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


# -- a shared journal: operations on different subjects from different processes at once -------

_SHARED_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import anyio

    from txengine import Engine, Journal, Result, Step, StepContext

    journal_dir, subject, meet, count, ops = sys.argv[1:6]


    class Meet(Step, frozen=True):
        '''Waits until `count` processes are inside this step at once: only concurrency ends it.'''

        kind = "meet"
        at: str
        count: int

        async def apply(self, ctx: StepContext) -> Result:
            Path(self.at, str(os.getpid())).touch()
            deadline = time.monotonic() + 60
            while len(os.listdir(self.at)) < self.count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the others never came: operations were serialized")
                await anyio.sleep(0.005)
            return {"pid": os.getpid()}

        async def revert(self, ctx: StepContext, result: Result | None) -> None:
            return None


    class Alone(Step, frozen=True):
        '''Fails if another operation on the same subject is inside this step too.'''

        kind = "alone"
        marker: str

        async def apply(self, ctx: StepContext) -> Result:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # raises if shared
            await anyio.sleep(0.05)
            os.close(fd)
            os.unlink(self.marker)
            return {}

        async def revert(self, ctx: StepContext, result: Result | None) -> None:
            return None


    async def main() -> None:
        with Journal.open(journal_dir, shared=True) as journal:
            engine = Engine(journal, [Meet, Alone])
            for n in range(int(ops)):
                plan = [Alone(marker=f"{journal_dir}/inside-{subject}")]
                if n == 0 and meet != "-":
                    plan.insert(0, Meet(at=meet, count=int(count)))
                async with journal.subject(subject):
                    await engine.run("install", subject, plan)


    anyio.run(main)
    """
)


def _run_shared(tmp_path: Path, subjects: list[str], ops: int, meet: bool) -> Path:
    journal_dir = tmp_path / "journal"
    Journal.open(journal_dir).close()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    args = [str(journal_dir), "", str(barrier) if meet else "-", str(len(subjects)), str(ops)]
    procs = []
    for subject in subjects:
        args[1] = subject
        procs.append(
            subprocess.Popen([sys.executable, "-c", _SHARED_CHILD, *args], stderr=subprocess.PIPE)
        )
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    return journal_dir


def test_shared_journal_runs_different_subjects_at_once(tmp_path: Path) -> None:
    """Four processes, four subjects: the first step of each waits for all four to be inside
    it, which only concurrent operations can reach; the journal stays one ordered truth."""
    subjects = [f"tool-{i}" for i in range(4)]
    journal_dir = _run_shared(tmp_path, subjects, ops=3, meet=True)
    state = load(journal_dir)  # replays: every seq increasing, every record legal
    assert sorted(v.subject for v in state if v.state == "done") == sorted(subjects * 3)
    assert len({v.results[0]["pid"] for v in state if v.kind and len(v.plan) == 2}) == 4
    assert project(load(journal_dir)) == project(state)
    with Journal.open(journal_dir) as j:  # and the exclusive mode takes it over unchanged
        assert project(j.state) == project(state)
        assert j.compact() == 12
    assert sorted(v.subject for v in iter_history(journal_dir)) == sorted(subjects * 3)


def test_shared_journal_serializes_one_subject(tmp_path: Path) -> None:
    """Three processes on one subject: never two of its operations inside a step at once."""
    journal_dir = _run_shared(tmp_path, ["same"] * 3, ops=4, meet=False)
    state = load(journal_dir)
    assert [v.state for v in state] == ["done"] * 12


def test_shared_journal_follows_a_compaction_by_another_process(tmp_path: Path) -> None:
    with Journal.open(tmp_path, shared=True) as a, Journal.open(tmp_path, shared=True) as b:
        first = _full_op(a, "x")
        op = b.new_op_id()
        b.append_sync(OpStarted, op, kind="install", subject="y", plan=PLAN)
        view = b.state.ops[op]
        assert a.compact() == 1  # replaces the log under b
        b.append_sync(StepStarted, op, index=0)
        b.append_sync(StepDone, op, index=0)
        assert b.state.ops[op] is view and view.steps == ["done"]
        second = _full_op(a, "x")
        b.append_sync(Committed, op)
        assert b.state.ops[second].state == "done"
    assert [v.id for v in iter_history(tmp_path)] == [first, second, op]


def test_an_operation_with_a_leftover_stash_stays_current(tmp_path: Path) -> None:
    """Its stash could not be deleted: it stays in the snapshot until a later run sweeps it
    (the sweep knows stashes by the operations in current state)."""
    with Journal.open(tmp_path) as j:
        old, new = _full_op(j, "t"), _full_op(j, "t")
        (tmp_path / "stash" / old).mkdir(parents=True)
        j.compact()
    assert [v.id for v in load(tmp_path)] == [old, new]
    (tmp_path / "stash" / old).rmdir()
    with Journal.open(tmp_path) as j:
        _full_op(j, "other")
        j.compact()
    assert old not in load(tmp_path).ops


def test_the_table_records_are_checked_against_is_the_machines() -> None:
    """The table replay and append use is compiled from the lifecycle's definition without
    building the ``transitions`` machine (whose import every command would pay): it must
    be exactly the table of the machine itself."""
    from txengine import _lifecycle as lc

    machine = lc.build_machine()
    assert lc.machine_table(machine) == lc.TABLE
    assert set(machine.states) == set(lc.STATES)


def test_reading_a_journal_imports_neither_anyio_nor_transitions(tmp_path: Path) -> None:
    """``load`` (what read-only commands call) pays for the reader only: no event loop
    library, no state machine library, no file lock library."""
    with Journal.open(tmp_path) as j:
        _full_op(j, "x")
    code = (
        "import sys, txengine; txengine.load(sys.argv[1]); txengine.live_holder(sys.argv[1], 'x');"
        "print(sorted(m for m in ('anyio', 'transitions', 'filelock') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
