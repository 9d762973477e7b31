"""The example installer ``examples/bundles`` under txengine's testing kit.

Its CLI is run for real; each of its step types passes ``check_step``; and its install is
put through the crash, random-kill, fault and power-loss campaigns: after every break the
prefix is the old one or the new one, never a mix, or the journal says what to finish.
By default the campaigns take a sample of points (the suite stays fast);
``BUNDLES_CAMPAIGN=full`` tries every point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import bundles
import pytest
from bundles import Stage, SwitchCurrent, Verify, tree_digest

from txengine import PlaceFile, load
from txengine.testing import (
    Report,
    Scenario,
    check_step,
    crash_campaign,
    enumerate_points,
    fault_campaign,
    power_loss,
    random_kills,
    tree_picture,
)

FULL = os.environ.get("BUNDLES_CAMPAIGN") == "full"
BUNDLES = Path(__file__).resolve().parents[2] / "examples" / "bundles"
CHILD_ENV = {"PYTHONPATH": str(BUNDLES)}


def make_bundle(d: Path, version: str) -> None:
    (d / "bin").mkdir(parents=True)
    (d / "share" / "doc").mkdir(parents=True)
    (d / "README").write_text(f"bundle {version}\n")
    (d / "share" / "doc" / "notes.txt").write_text(f"notes of {version}\n")
    run = d / "bin" / "run"
    run.write_text(f"#!/bin/sh\necho {version}\n")
    run.chmod(0o755)


def setup(world: Path) -> None:
    """The old world: bundles 1 and 2 as sources, and 1 installed and current."""
    make_bundle(world / "src-1", "1")
    make_bundle(world / "src-2", "2")
    anyio.run(bundles.install, world / "prefix", world / "src-1", "1")


def installed(world: Path) -> None:
    """The same old world built by hand, without a journal: fast, for check_step."""
    make_bundle(world / "src-1", "1")
    make_bundle(world / "src-2", "2")
    shutil.copytree(world / "src-1", world / "prefix" / "versions" / "1")
    (world / "prefix" / "current").symlink_to("versions/1")
    (world / "prefix" / "manifest.json").write_text('{"version": "1"}\n')


def prefix_picture(world: Path) -> object:
    return tree_picture(world / "prefix")


def cli(world: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bundles", "--prefix", str(world / "prefix"), *args]


def scenario() -> Scenario:
    return Scenario(
        name="bundles",
        setup=setup,
        run=lambda w: cli(w, "install", str(w / "src-2"), "2"),
        resume=lambda w, revert: cli(w, "resume", *(["--revert"] if revert else [])),
        observe=prefix_picture,
        env=CHILD_ENV,
        journal_dir=lambda w: w / "prefix" / ".journal",
        timeout=30.0,
    )


@pytest.fixture(scope="module")
def sc() -> Scenario:
    s = scenario()
    enumerate_points(s)
    return s


def sample(n: int, every: int) -> Sequence[int] | None:
    """Every point with BUNDLES_CAMPAIGN=full, else every ``every``-th and the last."""
    return None if FULL else sorted({*range(1, n + 1, every), n})


def assert_ok(report: Report) -> None:
    assert report.ok, str(report)


# -- the CLI, run for real ---------------------------------------------------------------------


def run(world: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CHILD_ENV}
    env.pop("TXENGINE_FAILPOINTS", None)
    return subprocess.run(cli(world, *args), env=env, capture_output=True, text=True)


def test_install_switch_and_status(tmp_path: Path) -> None:
    make_bundle(tmp_path / "src-1", "1")
    make_bundle(tmp_path / "src-2", "2")
    prefix = tmp_path / "prefix"
    assert run(tmp_path, "install", str(tmp_path / "src-1"), "1").returncode == 0
    done = run(tmp_path, "install", str(tmp_path / "src-2"), "2")
    assert done.returncode == 0 and "installed 2" in done.stdout
    assert os.readlink(prefix / "current") == "versions/2"
    assert (
        subprocess.run([prefix / "current" / "bin" / "run"], capture_output=True).stdout == b"2\n"
    )
    manifest = json.loads((prefix / "manifest.json").read_text())
    assert manifest == {"version": "2", "sha256": tree_digest(tmp_path / "src-2")}
    assert sorted(os.listdir(prefix / "versions")) == ["1", "2"]
    status = run(tmp_path, "status")
    assert (status.returncode, status.stdout) == (0, "current: 2\n")


def test_bad_input_changes_nothing_and_a_bad_checksum_is_undone(tmp_path: Path) -> None:
    make_bundle(tmp_path / "src-1", "1")
    assert run(tmp_path, "install", str(tmp_path / "src-1"), "1").returncode == 0
    before = tree_picture(tmp_path / "prefix")
    bad = run(tmp_path, "install", str(tmp_path / "src-1"), "../up")
    assert bad.returncode == 2 and bad.stderr.startswith("bundles: error: bad version '../up'")
    missing = run(tmp_path, "install", str(tmp_path / "nowhere"), "3")
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    wrong = run(tmp_path, "install", str(tmp_path / "src-1"), "3", "--sha256", "0" * 64)
    assert wrong.returncode == 1 and "checksum" in wrong.stderr and "undone" in wrong.stderr
    assert tree_picture(tmp_path / "prefix") == before
    assert [v.state for v in load(tmp_path / "prefix" / ".journal")] == ["done", "reverted"]


def test_a_killed_install_is_finished_by_running_it_again(tmp_path: Path) -> None:
    make_bundle(tmp_path / "src-1", "1")
    env = {**os.environ, **CHILD_ENV, "TXENGINE_FAILPOINTS": "fs.replace@*/current=kill"}
    argv = cli(tmp_path, "install", str(tmp_path / "src-1"), "1")
    assert subprocess.run(argv, env=env, capture_output=True).returncode == -9
    status = run(tmp_path, "status")
    assert status.returncode == 3 and "incomplete: install 1" in status.stdout
    assert run(tmp_path, "install", str(tmp_path / "src-1"), "1").returncode == 0
    assert os.readlink(tmp_path / "prefix" / "current") == "versions/1"
    assert run(tmp_path, "status").returncode == 0
    assert [v.state for v in load(tmp_path / "prefix" / ".journal")] == ["done", "done"]


# -- each step type against the step contract --------------------------------------------------


def test_stage_conforms(workroot: Path) -> None:
    args = lambda w: {"source": str(w / "src-2"), "dest": str(w / "prefix/versions/2")}  # noqa: E731
    assert_ok(check_step(Stage, args, installed, observe=prefix_picture, workdir=workroot))


def test_stage_of_a_version_already_there_conforms(workroot: Path) -> None:
    args = lambda w: {"source": str(w / "src-1"), "dest": str(w / "prefix/versions/1")}  # noqa: E731
    assert_ok(check_step(Stage, args, installed, observe=prefix_picture, workdir=workroot))


def test_verify_conforms(workroot: Path) -> None:
    def args(w: Path) -> dict[str, str]:
        return {"path": str(w / "prefix/versions/1"), "sha256": tree_digest(w / "src-1")}

    assert_ok(check_step(Verify, args, installed, observe=prefix_picture, workdir=workroot))


def test_switch_current_conforms(workroot: Path) -> None:
    def two_versions(w: Path) -> None:
        installed(w)
        make_bundle(w / "prefix" / "versions" / "2", "2")

    args = lambda w: {"link": str(w / "prefix/current"), "target": "versions/2"}  # noqa: E731
    assert_ok(
        check_step(SwitchCurrent, args, two_versions, observe=prefix_picture, workdir=workroot)
    )
    no_link = lambda w: (w / "prefix").mkdir()  # noqa: E731
    assert_ok(check_step(SwitchCurrent, args, no_link, observe=prefix_picture, workdir=workroot))


def test_manifest_conforms(workroot: Path) -> None:
    args = lambda w: {"path": str(w / "prefix/manifest.json"), "data": "{}\n"}  # noqa: E731
    assert_ok(check_step(PlaceFile, args, installed, observe=prefix_picture, workdir=workroot))


# -- the campaigns -----------------------------------------------------------------------------


def test_crash_at_points_of_the_install(sc: Scenario, workroot: Path) -> None:
    assert sc.clean is not None
    n = len(sc.clean.hits)
    nested = ("first", "middle", "last") if FULL else ()
    # The sample always has the kills between a placement's temp and its rename.
    renames = [i for i, h in enumerate(sc.clean.hits, 1) if h.name == "fs.replace"]
    points = None if FULL else sorted({*(sample(n, 6) or ()), *renames})
    report = crash_campaign(sc, points, workroot=workroot, nested=nested, jobs=2)
    assert_ok(report)
    seen = " ".join(report.outcomes)
    assert "incomplete" in seen and "committed" in seen


def test_random_kills(sc: Scenario, workroot: Path) -> None:
    assert_ok(random_kills(sc, trials=40 if FULL else 4, seed=11, workroot=workroot, jobs=2))


def test_faults_at_file_calls(sc: Scenario, workroot: Path) -> None:
    assert sc.clean is not None
    fs_calls = sum(1 for h in sc.clean.hits if h.name.startswith("fs."))
    errnos = ("EIO", "ENOSPC", "EACCES", "in-use") if FULL else ("ENOSPC",)
    report = fault_campaign(sc, errnos, sample(fs_calls, 4), workroot=workroot, jobs=2)
    assert_ok(report)
    assert "world old; journal: reverted" in report.outcomes


def test_power_loss(sc: Scenario, workroot: Path) -> None:
    assert sc.clean is not None
    points = (
        None
        if FULL
        else [
            i
            for i, h in enumerate(sc.clean.hits, 1)
            if h.name in ("journal.written.step-done", "journal.written.committed")
        ][::2]
    )
    report = power_loss(sc, points, seed=5, workroot=workroot, jobs=2)
    assert_ok(report)
