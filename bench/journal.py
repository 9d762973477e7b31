"""Journal benchmark: group commit, replay speed, and the journal cost of one operation.

    python bench/journal.py [--dir DIR] [--records 100000] [--steps 5] [--backend asyncio|trio]
                            [--rounds 5] [--quick]

Prints each figure and a table of goals with PASS/FAIL:

* appends/s with 1 writer (sequential awaits) and with 64 concurrent writers (an anyio task
  group; each task runs its own operations, since every operation starts with op-started),
  in ``--rounds`` alternating rounds after the event loop's backend is imported; goal: the
  median ratio, 64 writers >= 20x the appends/s of one (group commit: one fdatasync covers
  every record written while the previous one ran);
* replay: ``txengine.load`` of a journal of ~100k records (best of 5); goal >= 1M records/s;
* one operation of S no-op steps run by the Engine, against a budget of (S+1) raw
  write+fdatasync of a small append (measured in the same run, same filesystem) + 2 ms;
  goal: ratio <= 1;
* what importing the engine costs, for a reader (``from txengine import load``) and for a
  writer (``from txengine import Engine, open_journal``): the totals of
  ``python -X importtime`` (modules imported, their cumulative time, the slowest top-level
  ones), with the engine's bytecode written first as an installed wheel has it.

The journals live in a temporary directory on a real disk (never tmpfs: fsync is free there):
the system temp dir if it is on a disk, else one beside the repository. Not a test: the
figures depend on the machine.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec

from txengine import Engine, Journal, Result, Step, StepContext, load
from txengine import _journal as journal_mod
from txengine._events import (
    CleanedUp,
    Committed,
    Line,
    OpStarted,
    PlannedStep,
    StepDone,
    StepStarted,
)

REPO = Path(__file__).resolve().parents[1]
MEMORY_FS = {"tmpfs", "ramfs", "devtmpfs", "overlay-tmpfs"}

WRITERS = 64
STEPS_PER_OP = 4  # records per op: op-started + 2 per step + committed + cleaned-up = 11
RECORDS_PER_OP = 2 * STEPS_PER_OP + 3


class Noop(Step, frozen=True):
    kind = "noop"
    n: int = 0

    async def apply(self, ctx: StepContext) -> Result:
        return {}

    async def revert(self, ctx: StepContext, result: Result | None) -> None:
        return None


# -- where to write --------------------------------------------------------------------------


def fs_type(path: Path) -> str:
    """The filesystem type of the mount holding ``path`` (Linux; "?" elsewhere)."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                mount, fstype = parts[1], parts[2]
                inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, kind = mount, fstype
    except OSError:
        pass
    return kind


def pick_dir(requested: str | None) -> Path:
    if requested:
        return Path(requested).resolve()
    tmp = Path(tempfile.gettempdir()).resolve()
    if fs_type(tmp) not in MEMORY_FS and os.stat(tmp).st_dev == os.stat(REPO).st_dev:
        return tmp
    return REPO.parent


# -- workloads -------------------------------------------------------------------------------


def plan(steps: int) -> list[PlannedStep]:
    return [PlannedStep(type="noop", args={"n": i}) for i in range(steps)]


async def one_op(journal: Journal, steps: int = STEPS_PER_OP) -> None:
    """The records of one successful operation, appended as the engine would, one by one."""
    op = journal.new_op_id()
    await journal.append(OpStarted, op, kind="bench", subject=op, plan=plan(steps))
    for i in range(steps):
        await journal.append(StepStarted, op, index=i)
        await journal.append(StepDone, op, index=i)
    await journal.append(Committed, op)
    await journal.append(CleanedUp, op)


def appends_per_second(directory: Path, writers: int, ops_per_writer: int) -> float:
    with Journal.open(directory / f"appends-{writers}") as journal:

        async def writer() -> None:
            for _ in range(ops_per_writer):
                await one_op(journal)

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(writers):
                    tg.start_soon(writer)

        t0 = time.perf_counter()
        anyio.run(main, backend=BACKEND)
        elapsed = time.perf_counter() - t0
    return writers * ops_per_writer * RECORDS_PER_OP / elapsed


def build_replay_journal(directory: Path, records: int) -> int:
    """Write ~``records`` records through the real append path, with fsync switched off."""
    real = journal_mod._fsync_data
    journal_mod._fsync_data = lambda fd: None
    try:
        with Journal.open(directory) as journal:
            steps = plan(STEPS_PER_OP)
            for _ in range(records // RECORDS_PER_OP):
                op = journal.new_op_id()
                journal.append_sync(OpStarted, op, kind="bench", subject=op, plan=steps)
                for i in range(STEPS_PER_OP):
                    journal.append_sync(StepStarted, op, index=i, intent={"path": f"bin/{i}"})
                    journal.append_sync(StepDone, op, index=i, result={"ok": True})
                journal.append_sync(Committed, op)
                journal.append_sync(CleanedUp, op)
            return journal.state.last_seq
    finally:
        journal_mod._fsync_data = real


def replay_per_second(directory: Path, records: int) -> tuple[float, float, int]:
    """Records/s of ``load``, and of decoding the same lines alone (the floor under it)."""
    d = directory / "replay"
    n = build_replay_journal(d, records)
    best = min(_timed(lambda: load(d)) for _ in range(5))
    payloads = [line[9:] for line in (d / journal_mod.LOG_NAME).read_bytes().splitlines()]
    decode = msgspec.json.Decoder(Line).decode
    gc.disable()  # as load does
    try:
        floor = min(_timed(lambda: [decode(p) for p in payloads]) for _ in range(5))
    finally:
        gc.enable()
    return n / best, n / floor, n


def raw_fsync_seconds(directory: Path, n: int = 200) -> float:
    """Median cost of appending one small line to a file and fdatasync-ing it."""
    fsync = getattr(os, "fdatasync", os.fsync)
    line = b"0" * 120 + b"\n"
    fd = os.open(directory / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, line)
            fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return statistics.median(times)


def op_seconds(directory: Path, steps: int, runs: int = 30) -> tuple[float, float]:
    """Median wall time of Engine.run for ``steps`` no-op steps, and fdatasyncs per run."""
    real = journal_mod._fsync_data
    calls = [0]

    def counting(fd: int) -> None:
        calls[0] += 1
        real(fd)

    with Journal.open(directory / "ops") as journal:
        engine = Engine(journal, [Noop])
        the_plan = [Noop(n=i) for i in range(steps)]

        async def main() -> list[float]:
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                await engine.run("bench", "noop", the_plan)
                times.append(time.perf_counter() - t0)
            return times

        journal_mod._fsync_data = counting
        try:
            times = anyio.run(main, backend=BACKEND)
        finally:
            journal_mod._fsync_data = real
        return statistics.median(times), calls[0] / runs


IMPORTS = {
    "reader": "from txengine import load",
    "writer": "from txengine import Engine, open_journal",
}


def import_times(code: str, runs: int = 5) -> tuple[int, float, list[tuple[float, str]]]:
    """Modules ``code`` loads, its total in ms (best of ``runs``), slowest packages."""
    best: tuple[int, float, list[tuple[float, str]]] | None = None
    for _ in range(runs):
        cmd = [sys.executable, "-X", "importtime", "-c", code]
        err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
        # lines: "import time: self [us] | cumulative | imported package", nesting by indent
        rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")]
        rows = [r for r in rows if r[0].split(":")[1].strip().isdigit()]
        top = [(int(r[1]) / 1000, r[2].strip()) for r in rows if not r[2].startswith("  ")]
        total = sum(ms for ms, _ in top)
        if best is None or total < best[1]:
            best = (len(rows), total, sorted(top, reverse=True)[:5])
    assert best is not None
    return best


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- report ----------------------------------------------------------------------------------

BACKEND = "asyncio"


def main() -> int:
    global BACKEND
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="parent of the temporary directory (default: see above)")
    parser.add_argument("--records", type=int, default=100_000, help="replay journal size")
    parser.add_argument("--steps", type=int, default=5, help="S: steps of the measured operation")
    parser.add_argument("--ops-per-writer", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 1 then 64 writers")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.records, args.ops_per_writer, args.rounds = 2_000, 1, 1
    BACKEND = args.backend

    parent = pick_dir(args.dir)
    with tempfile.TemporaryDirectory(prefix="txengine-bench-", dir=parent) as tmp:
        d = Path(tmp)
        print(f"directory   {d} ({fs_type(d)}), backend {BACKEND}")

        fsync = raw_fsync_seconds(d)
        print(f"raw write+fdatasync of a small append: {fsync * 1e3:.3f} ms")

        # The first anyio.run imports the event loop's backend (~35 ms): paid before any
        # timing, or the first figure (the lone writer's, the ratio's divisor) holds it.
        anyio.run(anyio.lowlevel.checkpoint, backend=BACKEND)
        rounds = []
        for i in range(args.rounds):  # alternating, so that both see the same disk
            seq = appends_per_second(d / f"round-{i}", 1, args.ops_per_writer * 4)
            conc = appends_per_second(d / f"round-{i}", WRITERS, args.ops_per_writer)
            rounds.append((seq, conc, conc / seq))
            print(
                f"appends/s   1 writer: {seq:,.0f}   {WRITERS} writers: {conc:,.0f}   x{conc / seq:.1f}"
            )
        ratios = sorted(r for *_, r in rounds)
        ratio = statistics.median(ratios)
        print(
            f"            median of {len(ratios)} rounds: x{ratio:.1f}"
            f" (spread x{ratios[0]:.1f}-x{ratios[-1]:.1f})"
        )

        rate, floor, n = replay_per_second(d, args.records)
        print(
            f"replay      {n:,} records: {rate:,.0f} records/s (msgspec decode alone: {floor:,.0f}/s)"
        )

        s = args.steps
        op, syncs = op_seconds(d, s)
        budget = (s + 1) * fsync + 0.002
        print(
            f"operation   {s} no-op steps ({2 * s + 3} records, {syncs:g} fdatasyncs):"
            f" {op * 1e3:.3f} ms; budget (S+1) x fsync + 2 ms = {budget * 1e3:.3f} ms"
        )

    compileall.compile_dir(str(REPO / "engine"), quiet=1)  # as an installed wheel has it
    for who, code in IMPORTS.items():
        modules, total, slowest = import_times(code)
        print(
            f"import      {who} ({code}): {modules} modules, {total:.1f} ms (best of 5); slowest:"
        )
        for ms, name in slowest:
            print(f"            {ms:7.1f} ms  {name}")

    rows = [
        (f"{WRITERS} writers / 1 writer appends/s", f"x{ratio:.1f}", ">= x20", ratio >= 20),
        ("replay records/s", f"{rate:,.0f}", ">= 1,000,000", rate >= 1_000_000),
        (f"op cost / budget (S={s})", f"{op / budget:.2f}", "<= 1", op / budget <= 1),
    ]
    print()
    print(f"{'goal':<36} {'measured':>12} {'target':>12}  result")
    for name, value, target, ok in rows:
        print(f"{name:<36} {value:>12} {target:>12}  {'PASS' if ok else 'FAIL'}")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
