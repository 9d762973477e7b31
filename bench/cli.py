"""Wall time of txtool's commands on an offline wheelhouse, warm cache (medians).

    python bench/cli.py [--runs N]

Prints install, upgrade (1.0 -> 2.0), no-op upgrade, uninstall and `--version`, each as a
median over N runs in a fresh throwaway home, beside the figures measured for `uv tool` on
this machine (shared/PEERS.md) and the ratio. txtool runs as `python -m txtool`, as a user's
console script would: Python start-up and imports are included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from txtool.wheelhouse import build_demo_wheelhouse

# uv tool 0.13, measured on this kind of machine (shared/PEERS.md), in ms.
UV_TOOL = {"install": 22.0, "upgrade": 65.0, "no-op upgrade": 60.0}


def run(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "txtool", *args], env=env, capture_output=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"txtool {' '.join(args)} failed:\n{proc.stderr.decode()}")
    return elapsed * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=9)
    runs = p.parse_args().runs
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wheels = build_demo_wheelhouse(root / "wheels")
        index = ["--no-index", "--find-links", str(wheels)]
        for i in range(runs + 1):  # the first round warms uv's cache and is dropped
            env = {k: v for k, v in os.environ.items() if not k.startswith("TXENGINE_")}
            env |= {"TXTOOL_HOME": f"{root}/h{i}", "TXTOOL_BIN_DIR": f"{root}/b{i}"}
            round_ = {
                "install": run(env, "install", "txdemo==1.0", *index),
                "upgrade": run(env, "upgrade", "txdemo"),
                "no-op upgrade": run(env, "upgrade", "txdemo"),
                "uninstall": run(env, "uninstall", "txdemo"),
                "--version": run(env, "--version"),
            }
            if i:
                for k, v in round_.items():
                    times.setdefault(k, []).append(v)
    print(f"{'command':<16}{'txtool ms':>11}{'uv tool ms':>12}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        peer = UV_TOOL.get(name)
        extra = f"{peer:>12.0f}{median / peer:>8.1f}" if peer else ""
        print(f"{name:<16}{median:>11.0f}{extra}")


if __name__ == "__main__":
    main()
