"""The real-ENOSPC sweep: a disk that really fills up at each journal record write and each
shim write of ``install``, ``upgrade`` (1.0 -> 2.0) and ``uninstall``.

Each case mounts its own small tmpfs (root only: :func:`unavailable` says why not), puts the
txtool world on it (``TXTOOL_HOME`` and ``TXTOOL_BIN_DIR``), builds the old world with the real
CLI, then runs the command with the failpoint action ``fill`` at one point of a clean run's
trace (``TXENGINE_FAILPOINT_TRACE``): at that instant the child fills the tmpfs and goes on,
so the write that follows meets a real ENOSPC from the kernel. The points are every
``journal.before.*`` hit (each record) and every file the run creates in the bin dir or the
journal dir (shims, their temporaries, the journal's own atomic writes).

tmpfs allocates whole pages: a record that still fits in the log's last page is written
even on a full disk. So the symlink sweeps are *aligned*: per point, the wheelhouse's path
(recorded by the install) is lengthened so that the record written there straddles a page
end, and that very record is refused (the outcome says "this record refused"). The copy
sweeps fill only the blocks (``fill:blocks``), the usual full disk: a shim's temporary file
is created and its write fails. ``upgrade-compact`` is an upgrade that is the 100th closed
operation, so txtool compacts the journal after it on the full disk.

After each case (the promise of docs/cli.md, checked on the real files):

* no traceback; ``--json`` printed exactly one document, and an error document names the
  exit code the process returned;
* exit 0 only if the world is exactly the new one, and once ``committed`` is durable the exit
  is 0 (a failure after it is a warning);
* exit != 0: the old world, or exit 3 with the operation incomplete in the journal and
  ``txtool status`` (run on the still full disk) naming it;
* a failure reported as undone (exit 1) leaves no ``.*tmp*`` file in the bin dir or the
  journal dir;
* after freeing the space, re-running the same command (when it failed) ends in the new
  world, with nothing incomplete and no temporary file left.

``python tests/campaign/txenospc.py SWEEP [K ...]`` runs one sweep (or only its points K) and
keeps the case directories: that is the reproduction command of a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import txcampaign as tc  # noqa: E402

from txengine import load  # noqa: E402
from txengine.testing import Failure, Hit, Report  # noqa: E402

#: Room for two environments of txdemo (about 150 kB and 60 inodes each) and the journal.
SIZE = "8m"
INODES = 2000
FILL_PREFIX = ".txengine-fill-"
#: What a file created in the bin dir or the journal dir is made with.
_FILE_WRITES = ("fs.write", "fs.copy", "fs.symlink")


def unavailable() -> str | None:
    """Why the sweep cannot run on this machine, or None when it can."""
    if sys.platform != "linux":
        return "the real-ENOSPC sweep mounts a tmpfs: Linux only"
    if os.geteuid() != 0:
        return "the real-ENOSPC sweep mounts a tmpfs: run as root"
    with tempfile.TemporaryDirectory(prefix="txenospc-probe-") as tmp:
        try:
            with tmpfs(Path(tmp) / "mnt"):
                pass
        except (OSError, subprocess.CalledProcessError) as e:
            return f"cannot mount a tmpfs here: {e}"
    return None


@contextlib.contextmanager
def tmpfs(path: Path) -> Iterator[Path]:
    """A fresh small tmpfs at ``path`` (a small ``nr_inodes``, so that ``fill`` is quick),
    always unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={SIZE},nr_inodes={INODES},mode=0755"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "txenospc", str(path)],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def free_space(mount: Path) -> None:
    """Delete what ``fill`` wrote at the mount point."""
    for p in mount.glob(FILL_PREFIX + "*"):
        p.unlink()


def temporaries(world: Path) -> list[str]:
    """Temporary files (``.*tmp*``) in the bin dir and the journal dir."""
    found = []
    for d in (world / "bin", world / "home" / "journal"):
        if d.is_dir():
            found += [f"{d.relative_to(world)}/{p.name}" for p in sorted(d.glob(".*tmp*"))]
    return found


def json_documents(text: str) -> list[Any]:
    """Every JSON document printed one after another in ``text``."""
    decoder = json.JSONDecoder()
    docs, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return docs
        doc, i = decoder.raw_decode(text, i)
        docs.append(doc)


# -- the commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """One command of txdemo: its shims, how full the disk gets, whether records are aligned.

    ``fill`` leaves no block and no inode; ``fill:blocks`` is the usual full disk, where a
    file can still be created and its first block is refused. ``aligned`` lengthens the
    wheelhouse's path (see :func:`padded`), which the install records, per point, so that
    the record written at that point does not fit in the log's last page: then that very
    record meets the ENOSPC.
    """

    command: str  # "install", "upgrade", "uninstall"
    shims: str  # "symlink" or "copy"
    fill: str  # "fill" or "fill:blocks"
    aligned: bool
    #: Failed installs (closed operations) added to the old world, so that the command's
    #: operation is the 100th closed one in the log and txtool compacts the journal after it.
    history: int = 0

    @property
    def name(self) -> str:
        return (
            self.command
            + ("-copy" if self.shims == "copy" else "")
            + ("-compact" if self.history else "")
        )

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"TXTOOL_SHIMS": self.shims, **(extra or {})}

    def setup(self, world: Path, wheels: Path) -> None:
        (world / "home").mkdir(parents=True)
        if self.command != "install":
            tc.txtool(
                world, "install", "txdemo==1.0", *tc.source(wheels), env=self.env(), check=True
            )
        if self.history:  # in one process: an interpreter start-up per failure is too slow
            argv = ["install", "no-such-tool", *tc.source(wheels)]
            code = f"from txtool.cli import main\nfor _ in range({self.history}): main({argv!r})"
            subprocess.run(
                [tc.PY, "-c", code],
                cwd=world,
                env=tc.base_env(world, self.env()),
                check=True,
                capture_output=True,
            )

    def argv(self, wheels: Path) -> list[str]:
        if self.command == "install":
            return ["install", "txdemo==1.0", *tc.source(wheels)]
        return [self.command, "txdemo@latest" if self.command == "upgrade" else "txdemo"]


#: Symlink shims on a disk without a block or an inode left, each record made to need a new
#: page; copy shims on a disk without a block (their temporary file is made, its write fails);
#: and an upgrade that is the 100th closed operation, so that the journal is compacted after
#: it (the snapshot and the new log are new files).
SWEEPS = (
    *(
        sweep
        for c in ("install", "upgrade", "uninstall")
        for sweep in (Sweep(c, "symlink", "fill", True), Sweep(c, "copy", "fill:blocks", False))
    ),
    Sweep("upgrade", "symlink", "fill:blocks", False, history=98),
)
PAGE = os.sysconf("SC_PAGE_SIZE")
MAX_PAD = 3000  # the longest padding of the wheelhouse's path tried to align a record
MIN_PAD = 2  # "/x": the shortest padding
PROBE_PAD = 1000  # the padding of the second clean run, which measures each record's slope
MARGIN = 24  # bytes a record must reach over its page's end and back (timestamps vary)


def sweep(name: str) -> Sweep:
    for s in SWEEPS:
        if s.name == name:
            return s
    raise ValueError(f"unknown sweep {name!r}; expected one of {[s.name for s in SWEEPS]}")


@dataclass
class Calibration:
    """A clean run of a sweep on a tmpfs: its trace, the points to fill at, both worlds."""

    hits: list[Hit]
    points: list[int]
    old: dict[str, Any]
    new: dict[str, Any]
    #: Point -> how many characters pad the wheelhouse's path so that its record needs a page.
    pads: dict[int, int]

    def record(self, k: int) -> int | None:
        """Which record of the run (1-based) point ``k`` writes, if it writes one."""
        if not self.hits[k - 1].name.startswith("journal.before."):
            return None
        return sum(1 for h in self.hits[:k] if h.name.startswith("journal.before."))

    def label(self, k: int) -> str:
        """``record step-started #2``, ``fs.copy bin/.txdemo.txengine-*.tmp``: what point ``k`` is."""
        h = self.hits[k - 1]
        if h.name.startswith("journal.before."):
            kind = h.name.removeprefix("journal.before.")
            n = sum(1 for x in self.hits[:k] if x.name == h.name)
            return f"record {kind}" + (f" #{n}" if n > 1 else "")
        path = Path(h.path)
        return f"{h.name} {path.parent.name}/{_TEMP_ID.sub('.txengine-*.tmp', path.name)}"


#: The run-specific part of an atomic primitive's temp name (``.NAME.txengine-PID-TOKEN.tmp``).
_TEMP_ID = re.compile(r"\.txengine-[0-9]+-[0-9a-f]+\.tmp$")


def _read_hits(path: Path) -> list[Hit]:
    hits = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, where = line.partition("\t")
        hits.append(Hit(name, where))
    return hits


def padded(wheels: Path, pad: int) -> Path:
    """The wheelhouse under a path exactly ``pad`` characters longer than that of
    ``padded(wheels, MIN_PAD)``'s base: directories of ``x``s and a symlink (the path is
    recorded as given, not resolved). ``pad`` 0 is the wheelhouse itself."""
    if pad == 0:
        return wheels
    if pad < MIN_PAD:
        raise ValueError(f"pad {pad} < {MIN_PAD}")
    chunks, last = divmod(pad - MIN_PAD, 200)
    here = wheels.parent / "padded"
    for _ in range(chunks):
        here /= "x" * 199
    link = here / ("w" * (last + 1))  # never the name of one of the directories
    here.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        link.symlink_to(wheels)
    return link


def _log_lines(world: Path) -> list[bytes]:
    try:
        return (world / "home" / "journal" / "journal.log").read_bytes().splitlines(True)
    except FileNotFoundError:
        return []


def _is_record(line: bytes) -> bool:
    """Not the log's header (written with the log, not by a ``journal.before`` point)."""
    return b'"type":"header"' not in line


@dataclass
class _CleanRun:
    hits: list[Hit]
    old: dict[str, Any]
    new: dict[str, Any]
    records: list[tuple[int, int]]  # (offset, length) of each record the run appended
    targets: set[Path]


def case_dir(root: Path, s: Sweep, k: int | None) -> Path:
    """Where case ``k`` (None: a clean run) mounts its tmpfs. Every one has a name of the
    same length: the world's path is in the records, and alignment counts their bytes. A
    sweep with a history has one place for all, where its old world is copied in."""
    if s.history:
        return root / f"{s.name}-run"
    return root / f"{s.name}-{'cal' if k is None else f'{k:03d}'}"


_templates: dict[Path, Path] = {}


def _setup(s: Sweep, world: Path, wheels: Path) -> None:
    """Build the old world (a long history is built once, then copied in)."""
    if not s.history:
        s.setup(world, wheels)
        return
    template = _templates.get(world)
    if template is None:
        s.setup(world, wheels)
        template = world.parent.parent.with_name(world.parent.parent.name + "-template")
        shutil.rmtree(template, ignore_errors=True)
        shutil.copytree(world, template, symlinks=True)
        _templates[world] = template
    else:
        shutil.copytree(template, world, symlinks=True)


def _clean_run(s: Sweep, wheels: Path, case: Path) -> _CleanRun:
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir(parents=True)
    trace = case / "trace.txt"
    with tmpfs(case / "mnt") as mnt:
        world = mnt / "w"
        _setup(s, world, wheels)
        old = tc.picture(world)
        before = _log_lines(world)
        env = s.env({"TXENGINE_FAILPOINT_TRACE": str(trace)})
        tc.txtool(world, *s.argv(wheels), env=env, check=True)
        new = tc.picture(world)
        after = _log_lines(world)
        hits = _read_hits(trace)
    shutil.rmtree(case, ignore_errors=True)
    if old["strays"] or new["strays"]:
        raise AssertionError(f"the clean run of {s.name} left strays: {old} {new}")
    offset, records = sum(map(len, before)), []
    if after[: len(before)] != before:  # compacted: the records' offsets are not measured
        if s.aligned:
            raise AssertionError(f"the clean run of {s.name} rewrote the log (compaction?)")
        after = before
    for line in after[len(before) :]:
        if _is_record(line):
            records.append((offset, len(line)))
        offset += len(line)
    return _CleanRun(hits, old, new, records, {world / "bin", world / "home" / "journal"})


def _slack(offset: int, length: int) -> int:
    """How far a record written at ``offset`` reaches over its page's end and back: > 0 when
    it needs a new page (the smaller of the two overlaps)."""
    start = offset % PAGE
    return min(start + length - PAGE, PAGE - start)


def calibrate(s: Sweep, wheels: Path, root: Path, want: Sequence[str] = ()) -> Calibration:
    """Run the sweep's command cleanly on a tmpfs; find its points and, for an aligned
    sweep, the padding that makes each record need a new page (only for the points labelled
    ``want``, when given).

    Each record's offset and length grow linearly with the padding (the path is in a fixed
    set of records), so two clean runs give every record's line, and the padding chosen is
    the one that puts the record's page end nearest its middle."""
    # An aligned sweep's first run is already padded: it is also the base of the line.
    base = _clean_run(s, padded(wheels, MIN_PAD) if s.aligned else wheels, case_dir(root, s, None))
    points = [
        k
        for k, h in enumerate(base.hits, 1)
        if h.name.startswith("journal.before.")
        or (h.name in _FILE_WRITES and Path(h.path).parent in base.targets)
    ]
    cal = Calibration(base.hits, points, base.old, base.new, {})
    records = {k: n for k in points if (n := cal.record(k)) is not None}
    if want:
        records = {k: n for k, n in records.items() if cal.label(k) in want}
    if not s.aligned or not records:
        return cal
    probe = _clean_run(s, padded(wheels, MIN_PAD + PROBE_PAD), case_dir(root, s, None))

    def at(n: int, q: int) -> tuple[int, int]:  # the record's (offset, length) at pad q
        (o0, n0), (o1, n1) = base.records[n - 1], probe.records[n - 1]
        d = q - MIN_PAD
        return o0 + (o1 - o0) * d // PROBE_PAD, n0 + (n1 - n0) * d // PROBE_PAD

    for k, n in records.items():
        best = max(range(MIN_PAD, MAX_PAD + 1), key=lambda q: _slack(*at(n, q)))
        if _slack(*at(n, best)) >= MARGIN:
            cal.pads[k] = best
    return cal


# -- one case ---------------------------------------------------------------------------------


def _ops(world: Path) -> dict[str, Any]:
    journal = world / "home" / "journal"
    if not journal.exists():
        return {}
    return {v.id: v for v in load(journal, warn=lambda _m: None)}


@dataclass
class Outcome:
    """What one case did, and every broken promise (empty: it passed)."""

    summary: str
    problems: list[str]


def run_case(s: Sweep, cal: Calibration, k: int, wheels: Path, root: Path) -> Outcome:
    """Fill the disk at point ``k`` of ``s``; check the promise, then the re-run."""
    case = case_dir(root, s, k)
    shutil.rmtree(case, ignore_errors=True)
    case.mkdir(parents=True)
    problems: list[str] = []
    with tmpfs(case / "mnt") as mnt:
        world = mnt / "w"
        wheels = padded(wheels, cal.pads.get(k, 0))
        _setup(s, world, wheels)
        try:
            summary = _check(s, cal, k, wheels, mnt, world, problems)
        finally:
            if problems:  # the tmpfs goes away: keep its world for inspection
                shutil.copytree(world, case / "world", symlinks=True, dirs_exist_ok=True)
    if not problems:
        shutil.rmtree(case, ignore_errors=True)
    return Outcome(summary, problems)


def _check(
    s: Sweep, cal: Calibration, k: int, wheels: Path, mnt: Path, world: Path, problems: list[str]
) -> str:
    before = set(_ops(world))
    lines = sum(map(_is_record, _log_lines(world)))
    env = s.env({"TXENGINE_FAILPOINTS": f"*#{k}={s.fill}"})
    proc = tc.txtool(world, *s.argv(wheels), "--json", env=env)
    rc = proc.returncode
    if "Traceback" in proc.stderr:
        problems.append(f"traceback on stderr:\n{proc.stderr}")
    try:
        docs = json_documents(proc.stdout)
    except json.JSONDecodeError as e:
        docs = []
        problems.append(f"--json output is not JSON ({e}): {proc.stdout!r}")
    if len(docs) != 1:
        problems.append(f"--json printed {len(docs)} documents: {proc.stdout!r}")
    elif isinstance(docs[0], dict) and docs[0].get("exit_code", rc) != rc:
        problems.append(f"--json says exit {docs[0]['exit_code']}, the process exited {rc}")
    try:
        mine = [v for op, v in _ops(world).items() if op not in before]
    except Exception as e:  # an unreadable journal is a finding, not a crash of the sweep
        problems.append(f"the journal does not load after the failure: {e}")
        mine = []
    state = ",".join(sorted({v.state for v in mine})) or "no operation"
    summary = f"exit {rc}, {state}"
    n = cal.record(k)
    if n is not None and k in cal.pads:
        refused = sum(map(_is_record, _log_lines(world))) - lines == n - 1
        summary = f"{'this record refused' if refused else 'record written'}; {summary}"
    committed = any(v.committed for v in mine)
    incomplete = [v for v in mine if v.incomplete]
    pic = tc.picture(world)
    error = _first_error(proc.stderr)
    if rc == 0 and pic != cal.new:
        problems.append(f"exit 0 but the world is not the new one: {pic}")
    if committed and rc != 0:
        problems.append(f"committed, yet exit {rc}: {error}")
    if rc != 0 and not committed:
        if rc == 3:
            if not incomplete:
                problems.append(f"exit 3 but no operation of this run is incomplete: {state}")
            st = tc.txtool(world, "status")
            for v in incomplete:
                if v.id not in st.stdout:
                    problems.append(f"exit 3 but `txtool status` does not name {v.id}: {st.stdout}")
        elif pic != cal.old:
            problems.append(f"exit {rc} ({error}) but the world is not the old one: {pic}")
        if incomplete and rc != 3:
            problems.append(f"exit {rc} while {[v.id for v in incomplete]} is incomplete")
        if rc == 1 and temporaries(world):
            problems.append(f"reported as undone, yet temporaries are left: {temporaries(world)}")
    free_space(mnt)
    if rc != 0:
        again = tc.txtool(world, *s.argv(wheels), env=s.env())
        if again.returncode != 0:
            problems.append(
                f"re-running `txtool {s.command}` after freeing space exited"
                f" {again.returncode}: {_first_error(again.stderr)}"
            )
    st = tc.txtool(world, "status")
    pic = tc.picture(world)
    if pic != cal.new:
        problems.append(f"after freeing space (and re-running) the world is not the new one: {pic}")
    if st.returncode != 0:
        problems.append(f"after freeing space, `txtool status` exits {st.returncode}: {st.stdout}")
    if temporaries(world):
        problems.append(f"temporaries left at the end: {temporaries(world)}")
    return summary


def _first_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("txtool: error:")]
    return lines[0] if lines else stderr.strip().splitlines()[-1] if stderr.strip() else ""


# -- a whole sweep ----------------------------------------------------------------------------


def repro(s: Sweep, k: int) -> str:
    return f"python tests/campaign/txenospc.py {s.name} {k}"


def run_sweep(
    s: Sweep,
    wheels: Path,
    root: Path,
    points: Sequence[int] | None = None,
    jobs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fill the disk at every point of ``s`` (or ``points``); one Report, as the harness's."""
    t0 = time.monotonic()
    cal = calibrate(s, wheels, root)
    ks = list(points) if points is not None else cal.points
    report = Report(s.name, "enospc")
    report.notes.append(f"  {len(cal.points)} points (records and file writes) in a clean run")
    with ThreadPoolExecutor(max_workers=1 if s.history else jobs) as pool:
        results = list(pool.map(lambda k: (k, run_case(s, cal, k, wheels, root)), ks))
    for k, out in results:
        report.tried += 1
        report.outcomes[out.summary] = report.outcomes.get(out.summary, 0) + 1
        name = f"fill@{k}:{cal.label(k)}"
        if out.problems:
            message = "; ".join(out.problems)
            report.failures.append(Failure(name, message, repro(s, k), case_dir(root, s, k)))
        else:
            report.passed += 1
        if progress:
            progress(f"{s.name} {name}: {out.summary}{' FAILED' if out.problems else ''}")
    report.seconds = time.monotonic() - t0
    return report


def point(cal: Calibration, label: str) -> int:
    """The point of ``cal`` whose label is ``label`` (the sample tests name points so)."""
    for k in cal.points:
        if cal.label(k) == label:
            return k
    raise LookupError(f"no point {label!r}; the points are {[cal.label(k) for k in cal.points]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run one real-ENOSPC sweep (root: mounts tmpfs).")
    p.add_argument("sweep", choices=[s.name for s in SWEEPS])
    p.add_argument("points", nargs="*", type=int, help="only these points (default: all)")
    p.add_argument("--workroot", type=Path, default=None)
    args = p.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    from txtool.wheelhouse import build_test_wheelhouse

    root = args.workroot or Path(tempfile.mkdtemp(prefix="txenospc-"))
    wheels = build_test_wheelhouse(root / "wheels")
    report = run_sweep(sweep(args.sweep), wheels, root, args.points or None, progress=print)
    print(report)
    print(f"case directories under {root}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
