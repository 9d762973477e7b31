"""How txtool's commands scale with history: 0, 1k, 10k, 100k closed operations behind them.

    python bench/history.py [--sizes 0,1000,10000,100000] [--runs 5] [--quick]

For each size, a fresh home gets that many closed operations of history first, built fast
through the engine's API (``Journal.append_sync`` with fdatasync switched off) from the
records of real txtool operations (install, upgrade, no-op upgrade, uninstall of txdemo,
recorded once in a scratch home): txtool-sized records on 25 retired tools, then compacted
once. Then real txtool commands run on it with tools installed: ``list``, ``status``, a
no-op upgrade, an upgrade (1.0 -> 2.0, one tool per run), the no-op upgrade that compacts
(99 closed operations put in the log first), and the latency of ``history``'s first line.
Prints wall time (median) and peak RSS (max) per command, and each one's ratio to the
fresh home. ``--quick``: sizes 0 and 200, one run (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Homes, many_tools, median, run, txtool_command, wheelhouse

from txengine import Journal, dump
from txengine import _journal as journal_mod
from txengine._events import EVENT_TYPES

RETIRED = 25  # subjects the synthetic history is spread over (all uninstalled at the end)
_TAGS = {str(cls.__struct_config__.tag): cls for cls in EVENT_TYPES}
_BASE = ("type", "v", "seq", "op", "ts")


#: Stands for a home's root in the recorded templates.
ROOT = "@HOME-ROOT@"


def record_templates(root: Path, wh_old: Path, wh_new: Path, txtool: list[str]) -> list[Any]:
    """Records of a real install, upgrade, no-op upgrade and uninstall, one list per op."""
    homes = Homes(root / "templates", root / "cache")
    env = homes.env
    wh = root / "wh-templates"
    shutil.copytree(wh_old, wh)
    run(env, [*txtool, "install", "txdemo", "--no-index", "--find-links", str(wh)])
    shutil.copytree(wh_new, wh, dirs_exist_ok=True)
    run(env, [*txtool, "upgrade", "txdemo"])
    run(env, [*txtool, "upgrade", "txdemo"])
    run(env, [*txtool, "uninstall", "txdemo"])
    ops: dict[str, list[dict[str, Any]]] = {}
    for name, payload in dump(Path(env["TXTOOL_HOME"]) / "journal"):
        # The paths are the template home's: each home gets its own (txtool refuses a
        # journal that names environments outside its home).
        rec = json.loads(payload.decode().replace(str(homes.root), ROOT))
        if rec.get("type") in _TAGS and name == "journal.log":
            ops.setdefault(rec["op"], []).append(rec)
    return list(ops.values())


def add_history(journal: Journal, templates: list[Any], count: int, subject_base: int) -> None:
    """Append ``count`` closed operations, cycling through the templates per subject."""
    here = str(journal.directory.parents[1])  # the home's root, where ROOT stood
    for n in range(count):
        subject = f"retired-{(subject_base + n // len(templates)) % RETIRED}"
        op = journal.new_op_id()
        text = json.dumps(templates[n % len(templates)])
        # Its own home and op id wherever a path names them (stash paths name the op).
        template = json.loads(
            text.replace(ROOT, here).replace(templates[n % len(templates)][0]["op"], op)
        )
        for rec in template:
            fields = {k: v for k, v in rec.items() if k not in _BASE}
            if rec["type"] == "op-started":
                fields["subject"] = subject
            cls = _TAGS[rec["type"]]
            journal.append_sync(cls, op, **msgspec.convert(fields, dict[str, Any]))


def build_home(root: Path, size: int, templates: list[Any]) -> Homes:
    """A home with ``size`` operations of history, built in a child process: a process
    forked from one that held them all would start with its memory (and peak RSS)."""
    homes = Homes(root / f"home-{size}", root / "cache")
    spec = root / "templates.json"
    spec.write_text(json.dumps(templates))
    journal = Path(homes.env["TXTOOL_HOME"]) / "journal"
    cmd = [sys.executable, __file__, "--build", str(journal), str(size), str(spec)]
    subprocess.run(cmd, check=True)
    return homes


def build_journal(journal_dir: Path, size: int, templates: list[Any]) -> None:
    real = journal_mod._fsync_data
    journal_mod._fsync_data = lambda fd: None
    try:
        with Journal.open(journal_dir) as journal:
            # whole templates only, ending in an uninstall: the retired tools are not listed
            add_history(journal, templates, size - size % len(templates), 0)
            journal.compact()
    finally:
        journal_mod._fsync_data = real


def fill_log(homes: Homes, templates: list[Any], closed: int) -> None:
    """Put closed operations into the log until at least ``closed`` sit there (the next
    one compacts). Whole templates only, each ending in an uninstall: a retired tool left
    installed would own txdemo's executable name, and txtool refuses to take it over."""
    real = journal_mod._fsync_data
    journal_mod._fsync_data = lambda fd: None
    try:
        with Journal.open(Path(homes.env["TXTOOL_HOME"]) / "journal") as journal:
            missing = max(0, closed - journal.closed_in_log())
            add_history(journal, templates, -(-missing // len(templates)) * len(templates), 1)
    finally:
        journal_mod._fsync_data = real


def run_rss(env: dict[str, str], argv: list[str]) -> tuple[float, float]:
    """Wall time (ms) and peak RSS (MiB) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()}")
    return elapsed, usage.ru_maxrss / 1024


def first_line_ms(env: dict[str, str], argv: list[str]) -> tuple[float, float]:
    """Time until the first line of output, and peak RSS of the whole run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.readline()
    first = (time.perf_counter() - t0) * 1000
    proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    return first, usage.ru_maxrss / 1024


def measure(
    homes: Homes, templates: list[Any], runs: int, tools: list[str], wh: Path, new: Path
) -> dict[str, list[tuple[float, float]]]:
    txtool = txtool_command()
    env = homes.env
    out: dict[str, list[tuple[float, float]]] = {}
    for tool in ["txdemo", *tools]:
        run(env, [*txtool, "install", tool, "--no-index", "--find-links", str(wh)])
    shutil.copytree(new, wh, dirs_exist_ok=True)
    for i in range(runs):
        out.setdefault("list", []).append(run_rss(env, [*txtool, "list"]))
        out.setdefault("status", []).append(run_rss(env, [*txtool, "status"]))
        fill_log(homes, templates, 50)  # far from the next compaction
        out.setdefault("no-op upgrade", []).append(run_rss(env, [*txtool, "upgrade", "txdemo"]))
        out.setdefault("upgrade", []).append(run_rss(env, [*txtool, "upgrade", tools[i]]))
        fill_log(homes, templates, 99)
        noop = [*txtool, "upgrade", "txdemo"]
        out.setdefault("compacting no-op upgrade", []).append(run_rss(env, noop))
        out.setdefault("history (first line)", []).append(first_line_ms(env, [*txtool, "history"]))
    return out


def main() -> int:
    if sys.argv[1:2] == ["--build"]:  # the child of build_home
        journal_dir, size, spec = sys.argv[2:5]
        build_journal(Path(journal_dir), int(size), json.loads(Path(spec).read_text()))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="0,1000,10000,100000")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="sizes 0 and 200, one run")
    args = p.parse_args()
    sizes = [0, 200] if args.quick else [int(s) for s in args.sizes.split(",")]
    runs = 1 if args.quick else args.runs
    results: dict[int, dict[str, list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="txtool-history-") as tmp:
        root = Path(tmp)
        old, new = wheelhouse(root)
        tools_wh = root / "wheels-tools"
        tools = many_tools(tools_wh, runs, ("1.0",))
        many_tools(root / "wheels-tools-2", runs, ("2.0",))
        templates = record_templates(root, old, new, txtool_command())
        for size in sizes:
            t0 = time.perf_counter()
            homes = build_home(root, size, templates)
            built = time.perf_counter() - t0
            wh = root / f"wh-{size}"
            shutil.copytree(old, wh)
            shutil.copytree(tools_wh, wh, dirs_exist_ok=True)
            new_all = root / f"wh-new-{size}"
            shutil.copytree(new, new_all)
            shutil.copytree(root / "wheels-tools-2", new_all, dirs_exist_ok=True)
            results[size] = measure(homes, templates, runs, tools, wh, new_all)
            journal = Path(homes.env["TXTOOL_HOME"]) / "journal"
            disk = sum(f.stat().st_size for f in journal.rglob("*") if f.is_file())
            # A child's peak RSS starts from its parent's: this is the floor under the table's.
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"built {size:,} operations in {built:.1f} s; journal {disk / 1e6:.1f} MB;"
                f" this bench process's peak RSS {own:.0f} MiB"
            )
            shutil.rmtree(homes.root, ignore_errors=True)
    commands = list(results[sizes[0]])
    head = f"{'command':<26}" + "".join(f"{f'{s:,} ops':>22}" for s in sizes)
    print(f"\nmedian ms (peak RSS MiB) [ratio to {sizes[0]:,} ops], {runs} runs")
    print(head)
    for command in commands:
        base = median([t for t, _ in results[sizes[0]][command]])
        cells = []
        for s in sizes:
            t = median([t for t, _ in results[s][command]])
            rss = max(r for _, r in results[s][command])
            cells.append(f"{t:.0f} ({rss:.0f}) [{t / base:.2f}x]")
        print(f"{command:<26}" + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
