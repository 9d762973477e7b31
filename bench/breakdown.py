"""Where one ``txtool upgrade`` (1.0 -> 2.0) spends its time, every part measured in this run.

    python bench/breakdown.py [--runs 9] [--quick] [--before TREE]

Each run installs txdemo 1.0 into a fresh home, offers 2.0 and times ``txtool upgrade
txdemo``, once plainly (the total) and once under ``strace -f`` with only the calls below
traced (seccomp-filtered, so untraced system calls pay nothing), from which it reads:

* each uv child, from its ``execve`` to its exit, named by its subcommand; the interpreter
  query that ``uv pip install`` runs in the new environment (its ``python -I -B`` child);
* the journal's and the file primitives' ``fsync``/``fdatasync`` calls (their own time);
* the parent's time before its first child (interpreter start, imports, planning).

strace slows uv's many threads down by several times, so each uv child is also run again
alone, with the argv the trace shows txtool gave it (rows "(alone)": what the child costs
inside a plain run). Beside them, measured apart: ``python -c pass`` (the interpreter's
start) and the CPU time of importing what an upgrade imports. Medians over the runs. Without strace only the totals
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
import time
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


def traced(
    strace: str, env: dict[str, str], argv: list[str]
) -> tuple[dict[str, float], list[list[str]]]:
    """The parts of one run of ``argv`` under strace, in ms, and the uv children's argv."""
    with tempfile.NamedTemporaryFile("r", suffix=".trace") as out:
        cmd = [strace, "-f", "-ttt", "-T", "-s", "4096", "--seccomp-bpf", "-e", f"trace={TRACED}"]
        subprocess.run([*cmd, "-o", out.name, *argv], env=env, capture_output=True, check=True)
        lines = out.read().splitlines()
    parts: dict[str, float] = {}
    children: list[list[str]] = []
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
            if name is not None and name.startswith("uv "):  # not uv's own python child
                children.append(re.findall(r'"([^"]*)"', call.split("[", 1)[1].split("]", 1)[0]))
                first_child = ts if first_child is None else first_child
        elif call.startswith("exit_group(") and pid in started:
            name, t0 = started.pop(pid)
            name += " (under strace)"
            parts[name] = parts.get(name, 0.0) + (ts - t0) * 1000
        elif call.startswith(("fsync(", "fdatasync(")) and pid == main and took:
            parts["fsync + fdatasync (txtool)"] = (
                parts.get("fsync + fdatasync (txtool)", 0.0) + float(took) * 1000
            )
    assert first is not None and last is not None
    if first_child is not None:
        parts["before the first child (start, imports, plan)"] = (first_child - first) * 1000
    parts["total under strace"] = (last - first) * 1000
    return parts, children


def alone(env: dict[str, str], children: list[list[str]], stdin: str) -> dict[str, float]:
    """Each uv child of a traced run run again by itself, in the same order and with the
    argv txtool gave it (a fresh empty ``--project``; compile's stdin is the tool's
    requirement): strace slows uv's many threads down by several times, this does not.
    The environment the children built has moved on (to the tool's own path, from a build
    place), so venv and install rebuild one at the same path, or beside it where it is still
    there (a path as new as it was then); it is removed after."""
    times: dict[str, float] = {}
    built: list[str] = []
    moved: dict[str, str] = {}  # an environment still at its path is built again beside it
    with tempfile.TemporaryDirectory(prefix="txtool-uv-bench-") as project:
        Path(project, "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
        Path(project, "uv.toml").write_text("")
        for argv in children:
            argv = list(argv)
            if "--project" in argv:
                argv[argv.index("--project") + 1] = project
            sub = " ".join(a for a in argv[1:3] if not a.startswith("-"))
            if sub == "venv" or sub.startswith("venv "):
                if os.path.lexists(argv[2]):
                    moved[argv[2]] = f"{argv[2]}-again"
                built.append(moved.get(argv[2], argv[2]))
                sub = "venv"
            for old, new in moved.items():
                argv = [a.replace(old, new) for a in argv]
            t0 = time.perf_counter()
            subprocess.run(
                argv,
                env=env,
                input=stdin if sub == "pip compile" else "",
                text=True,
                capture_output=True,
                check=True,
            )
            name = f"uv {sub} (alone)"
            times[name] = times.get(name, 0.0) + (time.perf_counter() - t0) * 1000
    for env_dir in built:
        shutil.rmtree(env_dir, ignore_errors=True)
    return times


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
                    parts, children = traced(strace, homes.env, upgrade)
                    parts |= alone(homes.env, children, "txdemo\n")
                    for name, ms in parts.items():
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
