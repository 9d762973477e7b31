"""txtool beside `uv tool` and pipx (pip backend), every figure measured in this run.

    python bench/compare.py [--runs 15] [--quick] [--no-bench-venv] [--no-cold] [--cpu]
                            [--before TREE]

Installs uv and pipx into a bench venv under a temporary directory (``pip install uv
pipx``; ``--no-bench-venv`` takes them from this environment instead), builds the offline
wheelhouse (txdemo 1.0/2.0 and its helper), then runs round after round: in each round every
command runs once for each tool, the order of the tools rotating from round to round, in
fresh homes. Prints the median of each command per tool and txtool's ratio to each peer:
first with a warm cache (the first round warms it and is dropped), then cold (a fresh cache
each round). ``--quick`` is one warm round and no cold table (a smoke test).
``--before TREE`` adds txtool from another source tree (e.g. ``git archive`` of the
base commit) as the column ``before``, in the same rounds: before/after from one run.
``--cpu`` prints CPU time (user + system, the children waited for included) instead of
wall time: on a loaded machine it moves far less from run to run.

Commands: install (txdemo, 1.0 on offer, into the round's fresh home), upgrade (2.0 added
to the wheelhouse), no-op upgrade, list (one tool installed), uninstall, install again (the
same install into the home that has built before: a user's every install after the first;
txtool's first build in a home pays uv's interpreter query, cli/txtool/builds.py), ``--version``
(beside ``python -c pass`` in txtool's interpreter, the start-up floor).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import (
    Homes,
    Peers,
    base_python,
    make_peers,
    median,
    peer_options,
    run,
    table,
    wheelhouse,
)

COMMANDS = (
    "install",
    "upgrade",
    "no-op upgrade",
    "list",
    "uninstall",
    "install again",
    "--version",
)
#: Commands run as another one is: "install again" is an install into the home the round
#: has used (as a user's every install after the first), where "install" is a home's first.
SAME_AS = {"install again": "install"}


def argv(peers: Peers, tool: str, command: str, wh: Path) -> list[str]:
    command = SAME_AS.get(command, command)
    index = ["--no-index", "--find-links", str(wh)]
    if tool in ("txtool", "before"):
        prefix = peers.txtool if tool == "txtool" else peers.before
        assert prefix is not None
        return (
            prefix
            + {
                "install": ["install", "txdemo", *index],
                "upgrade": ["upgrade", "txdemo"],
                "no-op upgrade": ["upgrade", "txdemo"],
                "list": ["list"],
                "uninstall": ["uninstall", "txdemo"],
                "--version": ["--version"],
            }[command]
        )
    if tool == "uv":
        assert peers.uv is not None
        return (
            peers.uv
            + {
                "install": ["tool", "install", "txdemo", "--python", base_python(), *index],
                "upgrade": ["tool", "upgrade", "txdemo", *index],
                "no-op upgrade": ["tool", "upgrade", "txdemo", *index],
                "list": ["tool", "list"],
                "uninstall": ["tool", "uninstall", "txdemo"],
                "--version": ["--version"],
            }[command]
        )
    if tool == "python -c pass":
        return [peers.python, "-c", "pass"]
    assert peers.pipx is not None
    pip_args = f"--pip-args=--no-index --find-links {wh}"  # pipx's own pip still reaches PyPI
    return (
        peers.pipx
        + {
            "install": ["install", "txdemo", "--python", base_python(), pip_args],
            "upgrade": ["upgrade", "txdemo", pip_args],
            "no-op upgrade": ["upgrade", "txdemo", pip_args],
            "list": ["list"],
            "uninstall": ["uninstall", "txdemo"],
            "--version": ["--version"],
        }[command]
    )


def rounds(
    peers: Peers, root: Path, wheels: tuple[Path, Path], runs: int, *, cold: bool, cpu: bool
) -> dict[str, dict[str, list[float]]]:
    tools = ["txtool"] + (["before"] if peers.before else [])
    tools += (["uv"] if peers.uv else []) + (["pipx"] if peers.pipx else [])
    old, new = wheels
    wh = root / "wheels"  # 1.0 only until the upgrade of each round, then 2.0 too
    times: dict[str, dict[str, list[float]]] = {c: {} for c in COMMANDS}
    warmup = 0 if cold else 1
    for i in range(runs + warmup):
        shutil.rmtree(wh, ignore_errors=True)
        shutil.copytree(old, wh)
        if peers.pip_wheels is not None:
            shutil.copytree(peers.pip_wheels, wh, dirs_exist_ok=True)
        cache = root / (f"cache-cold-{i}" if cold else "cache-warm")
        homes = Homes(root / f"round-{'c' if cold else 'w'}{i}", cache)
        env = homes.env | {"PIPX_SHARED_LIBS": str(root / "pipx-shared")}  # pip, not a cache
        # The other tree's txtool gets a home of its own, as each peer has.
        envs = {t: env for t in tools} | {
            "before": env
            | {
                "TXTOOL_HOME": f"{homes.root}/before-home",
                "TXTOOL_BIN_DIR": f"{homes.root}/before-bin",
            }
        }
        order = tools[i % len(tools) :] + tools[: i % len(tools)]
        for command in COMMANDS:
            if command == "upgrade":
                shutil.copytree(new, wh, dirs_exist_ok=True)
            for tool in order + (["python -c pass"] if command == "--version" else []):
                ms = run(envs.get(tool, env), argv(peers, tool, command, wh), cpu=cpu)
                if i >= warmup:
                    times[command].setdefault(tool, []).append(ms)
        if cold:
            shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(homes.root, ignore_errors=True)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="measured rounds per table")
    p.add_argument("--quick", action="store_true", help="one warm round, no cold table")
    p.add_argument("--no-cold", action="store_true", help="skip the cold-cache table")
    p.add_argument("--cpu", action="store_true", help="CPU time (user + system), not wall time")
    peer_options(p, "uv and pipx")
    args = p.parse_args()
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="txtool-compare-") as tmp:
        root = Path(tmp)
        peers = make_peers(
            root, bench_venv=not (args.no_bench_venv or args.quick), before=args.before
        )
        tools = ["txtool"] + (["before"] if peers.before else [])
        tools += (["uv"] if peers.uv else []) + (["pipx"] if peers.pipx else [])
        wheels = wheelhouse(root)
        warm = rounds(peers, root, wheels, runs, cold=False, cpu=args.cpu)
        what = "CPU ms (user + system)" if args.cpu else "wall ms"
        print(table(f"warm cache, {what}, medians of {runs} rounds", warm, tools))
        version = warm["--version"]
        floor = median(version["python -c pass"])
        for tool in ("txtool", "before")[: 2 if peers.before else 1]:
            print(
                f"python -c pass: {floor:.0f} ms; {tool} --version / python -c pass:"
                f" {median(version[tool]) / floor:.2f}x"
            )
        if not (args.quick or args.no_cold):
            cold = rounds(peers, root, wheels, runs, cold=True, cpu=args.cpu)
            print()
            print(table(f"cold cache, {what}, medians of {runs} rounds", cold, tools))
    return 0


if __name__ == "__main__":
    sys.exit(main())
