"""Many tools at once: 8 processes installing 8 different tools, and `upgrade --all` of 20.

    python bench/parallel.py [--runs 5] [--quick] [--no-bench-venv] [--before TREE]

Against ``uv tool`` measured in the same run (uv from a bench venv, as in compare.py), warm
cache, offline wheelhouse of tiny tools. Figures:

* 8 installs of 8 different tools started at once (8 processes, one home) against the same
  8 installs one after another; the ratio parallel/sequential (< 1 is overlap); then the
  same 8 at once again in that home once they are uninstalled ("again": a home's later
  builds; txtool's first 8 at once in a fresh home each pay uv's interpreter query for a
  new build place, cli/txtool/builds.py, where one after another reuse one place);
* ``upgrade --all`` with 20 tools installed at 1.0 and 2.0 of each on offer.

``--quick``: 2 tools per figure, one run (a smoke test).
``--before TREE`` adds txtool from another source tree (e.g. ``git archive`` of the
base commit) as the column ``before``, in the same rounds: before/after from one run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Homes, base_python, make_peers, many_tools, median, peer_options, run


def install_argv(tool: str, prefix: list[str], name: str, wh: Path) -> list[str]:
    index = ["--no-index", "--find-links", str(wh)]
    if tool == "uv":
        return [*prefix, "tool", "install", name, "--python", base_python(), *index]
    return [*prefix, "install", name, *index]


def at_once(env: dict[str, str], argvs: list[list[str]]) -> float:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for a in argvs
    ]
    for proc, a in zip(procs, argvs, strict=True):
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(a)} failed ({proc.returncode}): {err.decode()}")
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    peer_options(p, "uv")
    args = p.parse_args()
    runs, n_par, n_all = (1, 2, 2) if args.quick else (args.runs, 8, 20)
    with tempfile.TemporaryDirectory(prefix="txtool-parallel-") as tmp:
        root = Path(tmp)
        peers = make_peers(
            root, bench_venv=not (args.no_bench_venv or args.quick), before=args.before
        )
        prefixes = {"txtool": peers.txtool} | ({"before": peers.before} if peers.before else {})
        prefixes |= {"uv": peers.uv} if peers.uv else {}
        old, new = root / "wheels-1", root / "wheels-2"
        names = many_tools(old, max(n_par, n_all), ("1.0",))
        many_tools(new, max(n_par, n_all), ("2.0",))
        cache = root / "cache"
        times: dict[str, dict[str, list[float]]] = {}
        for i in range(runs + 1):  # round 0 warms the cache and is dropped
            for tool, prefix in prefixes.items():
                wh = root / "wh"
                shutil.rmtree(wh, ignore_errors=True)
                shutil.copytree(old, wh)
                rows: dict[str, float] = {}
                argvs = [install_argv(tool, prefix, n, wh) for n in names[:n_par]]
                seq_env = Homes(root / f"{tool}-seq-{i}", cache).env
                rows[f"{n_par} installs, one by one"] = sum(run(seq_env, a) for a in argvs)
                par_env = Homes(root / f"{tool}-par-{i}", cache).env
                rows[f"{n_par} installs, at once"] = at_once(par_env, argvs)
                # The same again in that home, once uninstalled: a home's later builds.
                gone = [*prefix, "tool", "uninstall", *names[:n_par]] if tool == "uv" else None
                run(par_env, gone or [*prefix, "uninstall", "--all"])
                rows[f"{n_par} at once, again"] = at_once(par_env, argvs)
                all_env = Homes(root / f"{tool}-all-{i}", cache).env
                for n in names[:n_all]:
                    run(all_env, install_argv(tool, prefix, n, wh))
                shutil.copytree(new, wh, dirs_exist_ok=True)
                up = ["tool", "upgrade", "--all", "--no-index", "--find-links", str(wh)]
                up_argv = [*prefix, *up] if tool == "uv" else [*prefix, "upgrade", "--all"]
                rows[f"upgrade --all ({n_all})"] = run(all_env, up_argv)
                if i:
                    for k, v in rows.items():
                        times.setdefault(k, {}).setdefault(tool, []).append(v)
                for d in ("seq", "par", "all"):
                    shutil.rmtree(root / f"{tool}-{d}-{i}", ignore_errors=True)
    tools = list(prefixes)
    print(f"warm cache, medians of {runs} rounds")
    print(f"{'figure':<24}" + "".join(f"{t + ' ms':>12}" for t in tools) + f"{'/uv':>8}")
    for figure, per in times.items():
        meds = {t: median(per[t]) for t in tools}
        ratio = f"{meds['txtool'] / meds['uv']:>7.2f}x" if "uv" in meds else ""
        print(f"{figure:<24}" + "".join(f"{meds[t]:>12.0f}" for t in tools) + ratio)
    for tool in tools:
        seq = median(times[f"{n_par} installs, one by one"][tool])
        par = median(times[f"{n_par} installs, at once"][tool])
        again = median(times[f"{n_par} at once, again"][tool])
        print(f"{tool}: at once / one by one = {par / seq:.2f} (again: {again / seq:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
