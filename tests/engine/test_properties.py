"""Property tests: random histories (also as a state machine), truncation, bit flips, and
the region-at-a-time reader against the line-by-line scan."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
import hypothesis.strategies as st
import pytest
from hypothesis import event, given, settings
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from txhelpers import STEP_TYPES, Boom, Tree, make_tree, project, tree

from txengine import (
    Engine,
    Journal,
    JournalCorrupt,
    JournalTooNew,
    OperationFailed,
    OperationIncomplete,
    PlaceFile,
    RemovePath,
    Step,
    load,
)
from txengine import _failpoints as failpoints
from txengine._events import (
    CleanedUp,
    Committed,
    Header,
    OpStarted,
    PlannedStep,
    Record,
    StepDone,
    StepStarted,
)
from txengine._framing import REGION, Chunks, _scan_lines
from txengine._journal import LOG_NAME, frame, scan
from txengine._replay import JournalState

SETTINGS = settings(max_examples=50, deadline=None)

OLD: Tree = {"f0": b"old0", "f2": b"old2", "d0": "dir", "d0/y": b"y", "l0": ("link", "f0")}
FILES = ["f0", "f1", "f2"]

StepSpec = tuple[str, ...]

step_specs = st.one_of(
    st.tuples(st.just("place"), st.sampled_from(FILES), st.sampled_from(["A", "B", "old0", ""])),
    st.tuples(st.just("remove"), st.sampled_from([*FILES, "d0", "d0/y", "l0"])),
    st.just(("boom",)),
)
plans = st.lists(step_specs, min_size=1, max_size=4)
POINTS = [
    "fs.replace",
    "fs.rename",
    "fs.unlink",
    "fs.write",
    "fs.rmtree",
    "fs.fsync_dir",
    "journal.before.*",
    "journal.written.*",
    "journal.after.*",
    "journal.*.step-revert*",
    "journal.before.c*",
]
faults = st.none() | st.builds(
    "{}#{}={}".format,
    st.sampled_from(POINTS),
    st.integers(1, 4),
    st.sampled_from(["error:EIO", "in-use"]),
)


def build(spec: list[StepSpec], root: Path) -> list[Step]:
    steps: list[Step] = []
    for s in spec:
        if s[0] == "place":
            steps.append(PlaceFile(str(root / s[1]), s[2]))
        elif s[0] == "remove":
            steps.append(RemovePath(str(root / s[1])))
        else:
            steps.append(Boom())
    return steps


def expected(old: Tree, spec: list[StepSpec]) -> Tree:
    """The tree a plan leaves when it commits (a plan with a Boom never does)."""
    new = dict(old)
    for s in spec:
        if s[0] == "place":
            new[s[1]] = s[2].encode()
        elif s[0] == "remove":
            new = {k: v for k, v in new.items() if k != s[1] and not k.startswith(s[1] + "/")}
    return new


def _note(what: str) -> None:
    """Count an outcome for --hypothesis-show-statistics (World also runs outside tests)."""
    with contextlib.suppress(InvalidArgument):
        event(what)


class World:
    """A tree, a journal, and what each operation must leave: the harness of both tests."""

    def __init__(self, base: Path, backend: str) -> None:
        self.root, self.jdir, self.backend = base / "tree", base / "j", backend
        make_tree(self.root, OLD)
        self.journal = Journal.open(self.jdir)
        self.pending: dict[str, tuple[Tree, Tree]] = {}  # incomplete op -> (old, new)

    def _go(self, fn: Any, fault: str | None) -> Any:
        failpoints.configure(fault)
        try:
            return anyio.run(fn, backend=self.backend)
        finally:
            failpoints.configure(None)

    def reopen(self) -> None:
        self.journal.close()
        self.journal = Journal.open(self.jdir)

    def check(self) -> None:
        assert project(load(self.jdir)) == project(self.journal.state)
        assert {v.id for v in self.journal.state.incomplete()} == set(self.pending)

    def _settle(self, op: str, old: Tree, new: Tree) -> None:
        """After an op stopped somehow: the tree is old, new, or the op is pending."""
        view = self.journal.state.ops[op]
        _note(f"stopped: {view.state}")
        self.pending.pop(op, None)
        if view.incomplete:
            self.pending[op] = (old, new)
        else:
            assert tree(self.root) == (new if view.committed else old), view.where()

    def run(self, spec: list[StepSpec], fault: str | None) -> None:
        if self.pending:
            return self.resume(False, fault)
        old, new = tree(self.root), expected(tree(self.root), spec)
        known = set(self.journal.state.ops)
        engine = Engine(self.journal, STEP_TYPES)
        try:
            view = self._go(
                functools.partial(engine.run, "install", "x", build(spec, self.root)), fault
            )
        except (OperationFailed, OperationIncomplete) as e:
            assert isinstance(e, OperationIncomplete) or e.view.state == "reverted"
            self._settle(e.view.id, old, new)
        except OSError:  # a failpoint in a journal write: stands in for a crash
            self.reopen()
            (op,) = set(self.journal.state.ops) - known or {None}
            if op is None:
                assert tree(self.root) == old
            else:
                self._settle(op, old, new)
        else:
            assert not any(s[0] == "boom" for s in spec)
            assert load(self.jdir).ops[view.id].committed  # run returns only once committed
            assert tree(self.root) == new
            _note("run committed")
        self.check()

    def resume(self, revert: bool, fault: str | None) -> None:
        if not self.pending:
            return
        op, (old, new) = next(iter(self.pending.items()))
        engine = Engine(self.journal, STEP_TYPES)
        try:
            self._go(functools.partial(engine.resume, op, revert=revert), fault)
        except (OperationFailed, OperationIncomplete):
            pass
        except OSError:
            self.reopen()
        self._settle(op, old, new)
        self.check()

    def compact(self) -> None:
        self.journal.compact()
        self.check()

    def finish(self) -> None:
        """Resume every incomplete op (no faults): every op ends terminal, trees exact."""
        for i, op in enumerate(list(self.pending)):  # at most one: run() resumes first
            old, new = self.pending.pop(op)
            engine = Engine(self.journal, STEP_TYPES)
            try:
                view = anyio.run(
                    functools.partial(engine.resume, op, revert=i % 2 == 1), backend=self.backend
                )
            except OperationFailed as e:
                view = e.view
            assert tree(self.root) == (new if view.committed else old)
        anyio.run(Engine(self.journal, STEP_TYPES).finish_cleanups, backend=self.backend)
        state = load(self.jdir)
        assert all(v.closed for v in state), [v.audit() for v in state if not v.closed]
        # A reverted op whose stash directory could not be removed leaves it behind,
        # empty: everything stashed went back where it came from.
        stash = self.jdir / "stash"
        for op in os.listdir(stash) if stash.exists() else []:
            assert state.ops[op].state == "reverted"
            assert [f for _, _, files in os.walk(stash / op) for f in files] == []
        self.journal.close()


actions = st.lists(
    st.one_of(
        st.tuples(st.just("run"), plans, faults),
        st.tuples(st.just("resume"), st.booleans(), faults),
        st.tuples(st.just("compact")),
        st.tuples(st.just("reopen")),
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(history=actions, backend=st.sampled_from(["asyncio", "trio"]))
def test_random_histories_reload_to_the_in_memory_fold(
    history: list[tuple[Any, ...]], backend: str
) -> None:
    with tempfile.TemporaryDirectory() as base:
        world = World(Path(base), backend)
        try:
            for action, *args in history:
                getattr(world, action)(*args)
        finally:
            failpoints.configure(None)
        world.finish()


class EngineMachine(RuleBasedStateMachine):
    """Random plans with random faults; checks trees and the journal after every rule."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.world = World(Path(self._dir.name), "asyncio")

    @rule(spec=plans, fault=faults)
    def run_plan(self, spec: list[StepSpec], fault: str | None) -> None:
        self.world.run(spec, fault)

    @precondition(lambda self: bool(self.world.pending))
    @rule(revert=st.booleans(), fault=faults)
    def resume(self, revert: bool, fault: str | None) -> None:
        self.world.resume(revert, fault)

    @rule()
    def compact(self) -> None:
        self.world.compact()

    @rule()
    def reopen(self) -> None:
        self.world.reopen()

    @invariant()
    def journal_agrees(self) -> None:
        self.world.check()

    def teardown(self) -> None:
        try:
            self.world.finish()
        finally:
            self._dir.cleanup()


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(max_examples=25, stateful_step_count=10, deadline=None)


# -- damaged journal files -------------------------------------------------------------------


@functools.cache
def _sample_journal() -> tuple[bytes, tuple[Record, ...]]:
    """A real log: a committed op, a reverted one, and one left incomplete."""
    with tempfile.TemporaryDirectory() as base:
        world = World(Path(base), "asyncio")
        world.run([("place", "f1", "A"), ("remove", "d0")], None)
        world.run([("place", "f0", "B"), ("boom",)], None)
        world.run([("place", "f2", "B"), ("remove", "f0")], "journal.before.step-done#2=error:EIO")
        world.journal.close()
        data = (Path(base) / "j" / LOG_NAME).read_bytes()
    entries, _ = scan(Path(LOG_NAME), data, allow_torn_tail=False)
    return data, tuple(e for e in entries if isinstance(e, Record))


def _fold(records: tuple[Record, ...]) -> dict[str, Any]:
    state = JournalState()
    state.apply_all(records)
    return project(state)


def _write(base: str, data: bytes) -> Path:
    path = Path(base) / LOG_NAME
    path.write_bytes(data)
    return Path(base)


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=10**6))
def test_truncation_keeps_the_longest_valid_prefix(cut: int) -> None:
    data, records = _sample_journal()
    cut %= len(data) + 1
    warnings: list[str] = []
    with tempfile.TemporaryDirectory() as base:
        state = load(_write(base, data[:cut]), warnings.append)
    complete = data[:cut].count(b"\n")  # whole lines survive; line 0 is the header
    assert project(state) == _fold(records[: max(0, complete - 1)])
    torn = cut > 0 and data[cut - 1] != ord("\n")
    assert len(warnings) == torn


@SETTINGS
@given(where=st.integers(min_value=0, max_value=10**6), bit=st.integers(0, 7))
def test_bit_flips_lose_records_or_raise_a_named_error(where: int, bit: int) -> None:
    data, records = _sample_journal()
    where %= len(data)
    damaged = bytearray(data)
    damaged[where] ^= 1 << bit
    with tempfile.TemporaryDirectory() as base:
        try:
            state = load(_write(base, bytes(damaged)))
        except JournalCorrupt as e:
            assert e.offset <= where
            return
        except JournalTooNew:
            return
    prefixes = [_fold(records[:k]) for k in range(len(records) + 1)]
    assert project(state) in prefixes


@pytest.mark.parametrize("cut", [0, 1, 9, 10])
def test_truncation_inside_the_header(cut: int) -> None:
    data, _ = _sample_journal()
    with tempfile.TemporaryDirectory() as base:
        assert project(load(_write(base, data[:cut]))) == {}


@functools.cache
def _long_log() -> bytes:
    """A log of several replay regions: one-step operations, framed directly."""
    lines = [frame(Header(kind="log", created=0.0))]
    seq = 0
    for n in range(3 * REGION // 420):
        op = f"{n:012x}"
        for cls, fields in (
            (OpStarted, {"kind": "k", "subject": "s", "plan": [PlannedStep("x", {"n": n})]}),
            (StepStarted, {"index": 0, "intent": {"n": n}}),
            (StepDone, {"index": 0, "result": {"text": "a b\nc"}}),
            (Committed, {}),
            (CleanedUp, {}),
        ):
            seq += 1
            lines.append(frame(cls(seq=seq, op=op, ts=float(seq), **fields)))  # type: ignore[arg-type]
    data = b"".join(lines)
    assert len(data) > 2 * REGION
    return data


def _outcome(read: Any) -> tuple[Any, ...]:
    try:
        return ("read", *read())
    except (JournalCorrupt, JournalTooNew) as e:
        return (type(e).__name__, getattr(e, "offset", None))


@SETTINGS
@given(
    where=st.integers(min_value=0, max_value=10**7),
    bit=st.integers(0, 7),
    cut=st.none() | st.integers(min_value=0, max_value=10**7),
    allow_torn_tail=st.booleans(),
)
def test_regions_read_as_the_line_by_line_scan_does(
    where: int, bit: int, cut: int | None, allow_torn_tail: bool
) -> None:
    # The fast path (a region's frames checked at once, its payloads decoded by one map)
    # against the line-by-line scan it falls back on: the same entries and valid length,
    # or the same error at the same offset, whatever the damage.
    damaged = bytearray(_long_log())
    damaged[where % len(damaged)] ^= 1 << bit
    data = bytes(damaged if cut is None else damaged[: cut % (len(damaged) + 1)])
    path = Path(LOG_NAME)

    def regions() -> tuple[list[Any], int]:
        chunks = Chunks(path, data, allow_torn_tail=allow_torn_tail)
        return [e for chunk in chunks for e in chunk], chunks.end

    assert _outcome(regions) == _outcome(lambda: _scan_lines(path, data, 0, allow_torn_tail))
