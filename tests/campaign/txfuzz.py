"""Journal fuzz: every ``txtool`` command on a damaged real journal ends cleanly.

A real journal is made by running txtool (two installs, an upgrade, an upgrade that fails
and is undone, an uninstall killed half way). Then ``journal.log`` is truncated, has bits
flipped, or has garbage appended, and each command runs on it. Allowed endings: exit 5 with
exactly one ``txtool: error: ...`` line (the journal is unreadable), or any documented exit
0-4 (the torn tail is cut with a warning and the command does its job). Never a traceback,
a signal, or another exit code.

Cost: a command is a ~0.3 s process. So in the exhaustive run the read-only commands run
in process (:func:`txtool.cli.main`, an escaping exception counts as a traceback) at every
byte offset and every flip, and the mutating ones (which may really install) run as real
processes once per distinct way the journal loads: a mutating command's behaviour depends
only on what ``txengine.load`` makes of the bytes (the same records, the same torn offset,
or the same corruption error), so one damaged journal per outcome covers the rest. The
default (pytest) run uses real processes for everything, at sampled offsets and flips.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import txcampaign as tc  # noqa: E402

from txengine.testing import Failure, Report  # noqa: E402

JOURNAL_EXIT = 5
ALLOWED = {0, 1, 2, 3, 4, 5}
READ_ONLY = (["list"], ["status"], ["verify"], ["history"], ["journal", "verify"])


def mutating(wheels: Path) -> list[list[str]]:
    return [
        ["upgrade", "--all"],
        ["install", "txdemo==1.0", *tc.source(wheels)],
        ["resume"],
    ]


def commands(wheels: Path) -> list[list[str]]:
    return [list(c) for c in READ_ONLY] + mutating(wheels)


# -- the base journal ---------------------------------------------------------------------------


def build_world(world: Path, wheels: Path) -> bytes:
    """A world whose journal has installs, an upgrade, a failure and an incomplete op."""
    world.mkdir(parents=True, exist_ok=True)
    tc.txtool(world, "install", "txdemo==1.0", "multitool==1.0", *tc.source(wheels), check=True)
    tc.txtool(world, "upgrade", "txdemo@latest", check=True)
    failed = tc.txtool(
        world,
        "upgrade",
        "multitool@latest",
        # mt-gui is new in 2.0 (mt-a stays a link through the stable path): placing it fails.
        env={"TXENGINE_FAILPOINTS": f"fs.link@{world / 'bin' / 'mt-gui'}=in-use"},
    )
    assert failed.returncode == 1, failed.stderr
    killed = tc.txtool(
        world,
        "uninstall",
        "multitool",
        env={"TXENGINE_FAILPOINTS": "step.remove-shims.removed=kill"},
    )
    assert killed.returncode == -9, killed.stderr
    return (world / "home" / "journal" / "journal.log").read_bytes()


# -- damage -------------------------------------------------------------------------------------


def truncations(data: bytes, offsets: str | Sequence[int], rng: random.Random) -> list[int]:
    if offsets == "all":
        return list(range(len(data)))
    if isinstance(offsets, str):
        raise ValueError(offsets)
    return list(offsets)


def sample_offsets(data: bytes, n: int, rng: random.Random) -> list[int]:
    """Line starts, a cut in a checksum, one in a payload, one before a newline; then random."""
    starts = [0, *[i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]]
    picks = {0, len(data) - 1, starts[len(starts) // 2], starts[-1] + 4, starts[-1] + 20}
    nl = [i for i, b in enumerate(data) if b == 0x0A]
    picks.add(nl[len(nl) // 2])
    while len(picks) < n:
        picks.add(rng.randrange(len(data)))
    return sorted(p for p in picks if 0 <= p < len(data))


def flips(data: bytes, n: int, rng: random.Random) -> list[tuple[int, int]]:
    return [(rng.randrange(len(data)), rng.randrange(8)) for _ in range(n)]


def flipped(data: bytes, pos: int, bit: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 1 << bit
    return bytes(b)


GARBAGE = {
    "garbage: text line": b"hello world\n",
    "garbage: no newline": b"\x00\x01\x02garbage",
    "garbage: valid-looking frame": b"00000000 {}\n",
    "garbage: 4 kB random": bytes(random.Random(7).randrange(256) for _ in range(4096)),
    "garbage: NULs": b"\x00" * 512,
}


Case = tuple[str, int, int]  # ("truncate", offset, 0) | ("flip", offset, bit) | ("garbage", i, 0)


def damaged(
    data: bytes, offsets: str | Sequence[int], nflips: int, seed: int, sample: int | None = None
) -> list[Case]:
    """The damage to apply, as specs: each lane applies them to its own base journal (the
    journal holds absolute paths into its own world)."""
    rng = random.Random(seed)
    offs = sample_offsets(data, sample, rng) if sample else truncations(data, offsets, rng)
    cases: list[Case] = [("truncate", o, 0) for o in offs]
    cases += [("flip", p, b) for p, b in flips(data, nflips, rng)]
    cases += [("garbage", i, 0) for i in range(len(GARBAGE))]
    return cases


def apply(data: bytes, case: Case) -> tuple[str, bytes]:
    kind, a, b = case
    if kind == "truncate":
        a = min(a, len(data) - 1)
        return f"truncate@{a}", data[:a]
    if kind == "flip":
        a = min(a, len(data) - 1)
        return f"flip@{a}.{b}", flipped(data, a, b)
    name, junk = list(GARBAGE.items())[a]
    return name, data + junk


def load_key(journal_dir: Path) -> str:
    """What ``txengine.load`` makes of a journal: the class of its behaviour."""
    from txengine import load

    try:
        state = load(journal_dir, warn=lambda _m: None)
    except Exception as e:
        return f"{type(e).__name__}:{getattr(e, 'offset', '')}"
    return "ok:" + ",".join(f"{v.id}={v.state}" for v in state) + f":{state.last_seq}"


# -- running a command --------------------------------------------------------------------------


def check(cmd: Sequence[str], rc: int, stderr: str) -> str | None:
    """None when the ending is allowed, else what is wrong."""
    if "Traceback" in stderr:
        return f"traceback (exit {rc}):\n{stderr[-2000:]}"
    if rc not in ALLOWED:
        return f"exit {rc} is not a documented code:\n{stderr[-1000:]}"
    errors = [ln for ln in stderr.splitlines() if ln.startswith("txtool: error:")]
    if rc == JOURNAL_EXIT and len(errors) != 1:
        return f"exit 5 with {len(errors)} error lines:\n{stderr[-1000:]}"
    if rc == JOURNAL_EXIT and "journal" not in errors[0]:
        return f"exit 5 without naming the journal: {errors[0]}"
    return None


def run_process(world: Path, cmd: Sequence[str]) -> tuple[int, str]:
    proc = tc.txtool(world, *cmd, timeout=120)
    return proc.returncode, proc.stderr


def run_inprocess(world: Path, cmd: Sequence[str]) -> tuple[int, str]:
    """``txtool.cli.main`` in this process; an escaping exception is a traceback."""
    import traceback

    from txtool.cli import main

    err, out = io.StringIO(), io.StringIO()
    old = {k: os.environ.get(k) for k in tc.txtool_env(world)}
    os.environ.update(tc.txtool_env(world))
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = main(list(cmd))
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 2
            except BaseException:
                traceback.print_exc()
                rc = 1
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rc, err.getvalue()


class Lane:
    """One world at a fixed path, restored before every mutating command."""

    def __init__(self, root: Path, wheels: Path) -> None:
        self.world = root / "world"
        self.saved = root / "saved"
        if root.exists():
            shutil.rmtree(root)
        self.base = build_world(self.world, wheels)
        shutil.copytree(self.world, self.saved, symlinks=True)
        self.log = self.world / "home" / "journal" / "journal.log"
        self.dirty = False

    def restore(self, data: bytes) -> None:
        """The saved world back at the same path (a command may change it), with ``data``."""
        shutil.rmtree(self.world)
        shutil.copytree(self.saved, self.world, symlinks=True)
        self.log.write_bytes(data)
        self.dirty = False

    def put(self, data: bytes) -> None:
        """Just the journal (read-only commands change nothing else)."""
        if self.dirty:
            self.restore(data)
        self.log.write_bytes(data)


def _run_cases(
    lane: Lane,
    cases: Iterable[Case],
    cmds: Sequence[Sequence[str]],
    inprocess_read_only: bool,
    mutating_keys: set[str] | None,
    report: Report,
    lock: object,
) -> None:
    for case in cases:
        name, data = apply(lane.base, case)
        lane.put(data)
        todo = list(cmds)
        if mutating_keys is not None:
            key = load_key(lane.log.parent)
            with lock:  # type: ignore[attr-defined]
                fresh = key not in mutating_keys
                mutating_keys.add(key)
            if not fresh:
                todo = [c for c in todo if list(c) in [list(r) for r in READ_ONLY]]
        for cmd in todo:
            read_only = list(cmd) in [list(r) for r in READ_ONLY]
            if read_only:
                lane.put(data)
                runner = run_inprocess if inprocess_read_only else run_process
            else:
                lane.restore(data)
                lane.dirty = True
                runner = run_process
            rc, stderr = runner(lane.world, cmd)
            problem = check(cmd, rc, stderr)
            with lock:  # type: ignore[attr-defined]
                report.tried += 1
                if problem is None:
                    report.passed += 1
                else:
                    how = "in process" if read_only and inprocess_read_only else "process"
                    report.failures.append(
                        Failure(
                            f"{name}: txtool {' '.join(cmd)}",
                            problem,
                            f"journal.log = {name} of the base journal; "
                            f"(cd {lane.world} && TXTOOL_HOME=home TXTOOL_BIN_DIR=bin "
                            f"txtool {' '.join(cmd)})  [{how}]",
                        )
                    )


def campaign(
    wheels: Path,
    root: Path,
    *,
    offsets: str | Sequence[int] = "all",
    flips: int = 1000,
    seed: int = 0,
    sample: int | None = None,
    jobs: int = 4,
    exhaustive: bool = True,
) -> Report:
    """Run the fuzz; ``exhaustive`` runs read-only commands in process and mutating ones once
    per load outcome; otherwise every command is a real process on every case."""
    import threading

    t0 = time.monotonic()
    wheels = Path(wheels).resolve()
    root.mkdir(parents=True, exist_ok=True)
    lanes_n = max(1, jobs if exhaustive else min(jobs, 2))
    with ThreadPoolExecutor(lanes_n) as pool:
        lanes = list(pool.map(lambda i: Lane(root / f"lane{i}", wheels), range(lanes_n)))
    cases = damaged(lanes[0].base, offsets, flips, seed, sample)
    report = Report("journal", "fuzz" if exhaustive else "fuzz (sampled)")
    lock = threading.Lock()
    keys: set[str] | None = set() if exhaustive else None
    cmds = commands(wheels)
    if exhaustive:
        # In-process read-only commands share os.environ: one lane per worker process.
        _exhaustive(lanes, cases, cmds, report, root, wheels)
    else:
        chunks = [cases[i::lanes_n] for i in range(lanes_n)]
        with ThreadPoolExecutor(lanes_n) as pool:
            list(
                pool.map(
                    lambda lc: _run_cases(lc[0], lc[1], cmds, False, keys, report, lock),
                    zip(lanes, chunks, strict=True),
                )
            )
    report.seconds = time.monotonic() - t0
    report.notes.append(
        f"{len(cases)} damaged journals from a {len(lanes[0].base)}-byte base; "
        + (
            "read-only commands in process at every case, mutating ones once per load outcome"
            if exhaustive
            else "every command a real process"
        )
    )
    if report.ok:
        shutil.rmtree(root, ignore_errors=True)
    return report


def _exhaustive(
    lanes: list[Lane],
    cases: list[Case],
    cmds: Sequence[Sequence[str]],
    report: Report,
    root: Path,
    wheels: Path,
) -> None:
    """Split the cases over worker processes (``python txfuzz.py worker``), one lane each."""
    procs = []
    for i, lane in enumerate(lanes):
        spec = root / f"spec{i}.json"
        chunk = cases[i :: len(lanes)]
        spec.write_text(
            json.dumps(
                {
                    "lane": str(lane.world.parent),
                    "base": lane.base.hex(),
                    "cases": chunk,
                    "cmds": [list(c) for c in cmds],
                    "keys": str(root / "keys"),
                }
            )
        )
        procs.append(
            (
                subprocess.Popen([sys.executable, str(Path(__file__)), "worker", str(spec)]),
                spec.with_suffix(".out.json"),
            )
        )
    for proc, out in procs:
        proc.wait()
        if proc.returncode != 0 or not out.exists():
            report.tried += 1
            report.failures.append(Failure("worker", f"fuzz worker exited {proc.returncode}", ""))
            continue
        res = json.loads(out.read_text())
        report.tried += res["tried"]
        report.passed += res["passed"]
        report.failures += [Failure(f["case"], f["message"], f["repro"]) for f in res["failures"]]


def _worker(spec_path: Path) -> int:
    import fcntl
    import threading

    spec = json.loads(spec_path.read_text())
    lane = Lane.__new__(Lane)
    lane.world = Path(spec["lane"]) / "world"
    lane.saved = Path(spec["lane"]) / "saved"
    lane.log = lane.world / "home" / "journal" / "journal.log"
    lane.dirty = True
    report = Report("journal", "fuzz")
    keys_file = Path(spec["keys"])

    class SharedKeys(set[str]):
        """Load outcomes already covered by a mutating run, shared between workers."""

        def __contains__(self, key: object) -> bool:
            with open(keys_file, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                seen = set(f.read().splitlines())
                if key in seen:
                    return True
                f.write(f"{key}\n")
                return False

        def add(self, key: str) -> None:
            pass

    lane.base = bytes.fromhex(spec["base"])
    cases = [tuple(c) for c in spec["cases"]]
    _run_cases(lane, cases, spec["cmds"], True, SharedKeys(), report, threading.Lock())  # type: ignore[arg-type]
    out = {
        "tried": report.tried,
        "passed": report.passed,
        "failures": [
            {"case": f.case, "message": f.message, "repro": f.repro} for f in report.failures
        ],
    }
    spec_path.with_suffix(".out.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    sys.exit(_worker(Path(sys.argv[2])))
