"""Where one ``txtool upgrade`` (1.0 -> 2.0) spends its time, every part measured in this run.

    python bench/breakdown.py [--runs 9] [--quick] [--before TREE]

Each run installs txdemo 1.0 into a fresh home, offers 2.0 and times ``txtool upgrade
txdemo``, once plainly (the total) and once under ``strace -f`` with only the calls below
traced (seccomp-filtered, so untraced system calls pay nothing), from which it reads:

* each uv child, from its ``execve`` to its exit, named by its subcommand; the interpreter
  query that ``uv pip install`` runs in the new environment (its ``python -I -B`` child);
* the journal's and the file primitives' ``fsync``/``fdatasync`` calls (their own time);
* the parent's time before its first child (interpreter start, imports, planning).

Beside them, measured apart: ``python -c pass`` (the interpreter's start) and the CPU time of
importing what an upgrade imports. Medians over the runs. Without strace only the totals
are printed. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Homes, median, run, tree_command, txtool_command, wheelhouse

TRACED = "execve,exit_group,fsync,fdatasync"
_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+) (.*?)(?: <(\d+\.\d+)>)?$")
IMPORTS = "import txtool.cli, txtool.service, txtool.installer, anyio._backends._asyncio"


def child_name(argv: str) -> str | None:
    """What an ``execve`` line runs, as a breakdown row (None: not a row of its own)."""
    if '"-I", "-B"' in argv:
        return "uv's interpreter query (new env)"
    for sub in ("pip compile", "venv", "pip install"):
        words = sub.split()
        if all(f'"{w}"' in argv for w in words) and "/uv" in argv.split(",")[0]:
            return f"uv {sub}"
    return None


def traced(strace: str, env: dict[str, str], argv: list[str]) -> dict[str, float]:
    """The parts of one run of ``argv`` under strace, in ms."""
    with tempfile.NamedTemporaryFile("r", suffix=".trace") as out:
        cmd = [strace, "-f", "-ttt", "-T", "--seccomp-bpf", "-e", f"trace={TRACED}"]
        subprocess.run([*cmd, "-o", out.name, *argv], env=env, capture_output=True, check=True)
        lines = out.read().splitlines()
    parts: dict[str, float] = {}
    started: dict[str, tuple[str, float]] = {}
    first = last = first_child = None
    main = None
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        pid, ts, call, took = m.group(1), float(m.group(2)), m.group(3), m.group(4)
        main = main or pid
        first = ts if first is None else first
        last = ts
        if call.startswith("execve(") and pid != main:
            name = child_name(call)
            if name is not None:
                started[pid] = (name, ts)
                first_child = ts if first_child is None else first_child
        elif call.startswith("exit_group(") and pid in started:
            name, t0 = started.pop(pid)
            parts[name] = parts.get(name, 0.0) + (ts - t0) * 1000
        elif call.startswith(("fsync(", "fdatasync(")) and pid == main and took:
            parts["fsync + fdatasync (txtool)"] = (
                parts.get("fsync + fdatasync (txtool)", 0.0) + float(took) * 1000
            )
    assert first is not None and last is not None
    if first_child is not None:
        parts["before the first child (start, imports, plan)"] = (first_child - first) * 1000
    parts["total under strace"] = (last - first) * 1000
    return parts


def cpu_ms(argv: list[str]) -> float:
    """User + system CPU time of one run of ``argv`` (its waited-for children included)."""
    proc = subprocess.Popen(argv)
    _, _, usage = os.wait4(proc.pid, 0)
    return (usage.ru_utime + usage.ru_stime) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="one run (a smoke test)")
    p.add_argument("--before", type=Path, metavar="TREE", help="measure txtool from this tree")
    args = p.parse_args()
    runs = 1 if args.quick else args.runs
    txtool = tree_command(args.before) if args.before else txtool_command()
    strace = shutil.which("strace")
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="txtool-breakdown-") as tmp:
        root = Path(tmp)
        old, new = wheelhouse(root)
        for i in range(runs):
            for mode in ("plain", "traced") if strace else ("plain",):
                homes = Homes(root / f"round-{i}-{mode}", root / "cache")
                wh = root / "wheels"
                shutil.rmtree(wh, ignore_errors=True)
                shutil.copytree(old, wh)
                install = [*txtool, "install", "txdemo", "--no-index", "--find-links", str(wh)]
                run(homes.env, install)
                shutil.copytree(new, wh, dirs_exist_ok=True)
                upgrade = [*txtool, "upgrade", "txdemo"]
                if mode == "plain":
                    rows.setdefault("txtool upgrade (total)", []).append(run(homes.env, upgrade))
                else:
                    assert strace is not None
                    for name, ms in traced(strace, homes.env, upgrade).items():
                        rows.setdefault(name, []).append(ms)
                shutil.rmtree(homes.root, ignore_errors=True)
        rows["python -c pass"] = [
            run(dict(os.environ), [sys.executable, "-c", "pass"]) for _ in range(runs)
        ]
        prelude = ""
        if args.before:
            paths = [str(args.before.resolve() / part) for part in ("engine", "cli")]
            prelude = f"import sys; sys.path[:0] = {paths!r}; "
        code = f"{prelude}{IMPORTS}; import os; os._exit(0)"
        base = [cpu_ms([sys.executable, "-c", "import os; os._exit(0)"]) for _ in range(runs)]
        full = [cpu_ms([sys.executable, "-c", code]) for _ in range(runs)]
        rows["imports of an upgrade (CPU, over a bare interpreter)"] = [
            f - b for f, b in zip(full, base, strict=True)
        ]
    print(f"one txtool upgrade, medians of {runs} runs" + ("" if strace else " (no strace)"))
    for name, values in rows.items():
        print(f"{name:<52} {median(values):8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
