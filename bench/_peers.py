"""What the CLI benchmarks share: the peer tools, the offline wheelhouse and timed commands.

Every figure a bench script prints is measured in the same run: the peers (``uv tool`` and
pipx, pip backend) are installed into a bench environment under the run's temporary
directory, and every tool reads the same offline wheelhouse.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from txtool.wheelhouse import build_demo_wheelhouse, build_wheel

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Peers:
    """Commands for each tool, as argv prefixes."""

    txtool: list[str]
    uv: list[str] | None
    pipx: list[str] | None
    python: str  # the interpreter running txtool: `python -c pass` is the start-up floor
    # pip's own wheel: pipx's shared libraries need it, offline like the tools' wheels
    pip_wheels: Path | None = None
    #: txtool from another source tree (``--before TREE``), measured in the same rounds
    before: list[str] | None = None


def precompile(tree: Path) -> None:
    """Write the bytecode of the source tree ``tree``'s ``engine`` and ``cli``, as installing
    a wheel does. Imported from a source tree (an editable install, ``--before``) under
    ``PYTHONDONTWRITEBYTECODE=1``, every module would be compiled again by every command:
    40-odd modules, 35-90 ms of each run measured here, which a user never pays."""
    for part in ("engine", "cli"):
        compileall.compile_dir(str(tree / part), quiet=1)


def txtool_command() -> list[str]:
    """txtool as a user runs it: its console script when installed, else ``python -m``
    (its sources compiled first, see :func:`precompile`)."""
    precompile(REPO)
    script = Path(sys.executable).parent / "txtool"
    return [str(script)] if script.exists() else [sys.executable, "-m", "txtool"]


def tree_command(tree: Path) -> list[str]:
    """txtool from the source tree ``tree`` (its ``engine`` and ``cli``), run as the console
    script runs it, in this interpreter: to compare two versions of the code in one run."""
    precompile(tree)
    paths = [str(tree.resolve() / "engine"), str(tree.resolve() / "cli")]
    code = f"import sys; sys.path[:0] = {paths!r}; from txtool.__main__ import run; run()"
    return [sys.executable, "-c", code]


def peer_options(p: argparse.ArgumentParser, peers: str) -> None:
    """The options every side-by-side bench takes: where the peers come from, and an older
    txtool tree to measure in the same run."""
    p.add_argument("--no-bench-venv", action="store_true", help=f"{peers} from this environment")
    p.add_argument(
        "--before",
        type=Path,
        metavar="TREE",
        help="also txtool from this source tree (column 'before')",
    )


def make_peers(root: Path, *, bench_venv: bool, before: Path | None = None) -> Peers:
    """uv and pipx from a fresh bench venv (``pip install uv pipx``), or from this one."""
    if bench_venv:
        env_dir = root / "bench-venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        pip = [str(env_dir / "bin" / "python"), "-m", "pip"]
        subprocess.run([*pip, "install", "-q", "uv", "pipx"], check=True)
        bindir = env_dir / "bin"
        pip_wheels = root / "pip-wheel"
        subprocess.run(
            [*pip, "download", "-q", "--no-deps", "-d", str(pip_wheels), "pip"], check=True
        )
    else:
        bindir, pip_wheels = Path(sys.executable).parent, None
    uv = shutil.which("uv", path=str(bindir)) or shutil.which("uv")
    pipx = shutil.which("pipx", path=str(bindir)) or shutil.which("pipx")
    return Peers(
        txtool_command(),
        [uv] if uv else None,
        [pipx] if pipx else None,
        sys.executable,
        pip_wheels,
        tree_command(before) if before else None,
    )


def wheelhouse(root: Path) -> tuple[Path, Path]:
    """Two find-links dirs: ``old`` holds txdemo 1.0 only, ``new`` adds 2.0 (upgrades there)."""
    everything = build_demo_wheelhouse(root / "wheels-all")
    old, new = root / "wheels-old", root / "wheels-new"
    for d in (old, new):
        d.mkdir()
    for wheel in everything.iterdir():
        shutil.copy2(wheel, new / wheel.name)
        if "-1.0-" in wheel.name:
            shutil.copy2(wheel, old / wheel.name)
    return old, new


def many_tools(outdir: Path, count: int, versions: Sequence[str] = ("1.0",)) -> list[str]:
    """``count`` tiny tools (``benchtool-N``), one console script each, in ``outdir``."""
    names = [f"benchtool-{i}" for i in range(count)]
    for name in names:
        mod = name.replace("-", "_")
        for version in versions:
            build_wheel(
                outdir,
                name,
                version,
                console_scripts={name: f"{mod}:main"},
                files={f"{mod}/__init__.py": f"def main() -> None:\n    print({version!r})\n"},
            )
    return names


@dataclass
class Homes:
    """Private locations of every tool for one round (fresh homes, a cache that may be shared)."""

    root: Path
    cache: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.root
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TXENGINE_", "UV_"))}
        base.pop("VIRTUAL_ENV", None)
        self.env = base | {
            "TXTOOL_HOME": f"{r}/txtool-home",
            "TXTOOL_BIN_DIR": f"{r}/txtool-bin",
            "UV_TOOL_DIR": f"{r}/uv-tools",
            "UV_TOOL_BIN_DIR": f"{r}/uv-bin",
            "UV_CACHE_DIR": f"{self.cache}/uv",
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "PIPX_HOME": f"{r}/pipx-home",
            "PIPX_BIN_DIR": f"{r}/pipx-bin",
            "PIPX_MAN_DIR": f"{r}/pipx-man",
            "PIPX_DEFAULT_BACKEND": "pip",  # the peer to beat: pipx as most people run it
            "PIP_CACHE_DIR": f"{self.cache}/pip",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "NO_COLOR": "1",
        }


def run(env: dict[str, str], argv: Sequence[str], *, check: bool = True) -> float:
    """Wall time of one command in ms; a failure stops the benchmark with its output."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(argv), env=env, capture_output=True)
    elapsed = (time.perf_counter() - t0) * 1000
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{out}")
    return elapsed


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def base_python() -> str:
    """The interpreter tool environments are built from (the one txtool picks by default)."""
    return os.path.abspath(getattr(sys, "_base_executable", None) or sys.executable)


def table(title: str, rows: dict[str, dict[str, list[float]]], tools: Sequence[str]) -> str:
    """Medians per command and tool, and txtool's ratio to each peer."""
    peers = [t for t in tools if t != "txtool"]
    head = f"{'command':<18}" + "".join(f"{t + ' ms':>12}" for t in tools)
    head += "".join(f"{'/' + p:>10}" for p in peers)
    lines = [title, head]
    for command, per_tool in rows.items():
        meds = {t: median(per_tool.get(t, [])) for t in tools}
        line = f"{command:<18}" + "".join(f"{meds[t]:>12.0f}" for t in tools)
        line += "".join(f"{meds['txtool'] / meds[p]:>9.2f}x" for p in peers)
        lines.append(line)
    return "\n".join(lines)
