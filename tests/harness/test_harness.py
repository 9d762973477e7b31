"""The crash-test harness (txengine.testing) over a small file-steps scenario.

Every test here starts Python children that really get SIGKILLed, faulted or power-cut; the
module's scenario is enumerated once and shared.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from harness_scenario import scenario as make_scenario

from txengine.testing import (
    HarnessError,
    Hit,
    Report,
    Scenario,
    crash_campaign,
    enumerate_points,
    fault_campaign,
    format_table,
    power_loss,
    random_kills,
    tree_picture,
)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    sc = make_scenario(tmp_path_factory.mktemp("scripts"))
    enumerate_points(sc)
    return sc


def hits(sc: Scenario) -> list[Hit]:
    assert sc.clean is not None
    return sc.clean.hits


def first(sc: Scenario, name: str, path_end: str = "") -> int:
    """1-based index of the first hit called ``name`` whose path ends with ``path_end``."""
    for i, h in enumerate(hits(sc), 1):
        if h.name == name and h.path.endswith(path_end):
            return i
    raise AssertionError(f"no hit {name} {path_end}")


def fs_points(sc: Scenario, *, after_commit: bool) -> list[int]:
    """Indices among the fs.* hits, before or after the commit record is durable."""
    commit = first(sc, "journal.after.committed")
    out, m = [], 0
    for i, h in enumerate(hits(sc), 1):
        if h.name.startswith("fs."):
            m += 1
            if (i > commit) == after_commit:
                out.append(m)
    return out


def assert_ok(report: Report) -> None:
    assert report.ok, str(report)


def test_clean_run_is_enumerated(scenario: Scenario) -> None:
    names = [h.name for h in hits(scenario)]
    assert len(names) > 10
    assert names.count("journal.after.step-done") == 3
    assert "journal.after.committed" in names
    assert any(n.startswith("fs.") for n in names)
    assert scenario.old != scenario.new
    assert isinstance(scenario.new, dict) and "tree/bin/tool" in scenario.new


def test_crash_at_every_point(scenario: Scenario, workroot: Path) -> None:
    report = crash_campaign(scenario, workroot=workroot, nested=())
    assert_ok(report)
    assert report.tried == len(hits(scenario)) > 10
    assert report.passed == report.tried
    # The kills really landed on every side of the operation.
    seen = " ".join(report.outcomes)
    assert "incomplete" in seen and "committed" in seen and "no new operation" in seen


def test_crash_during_resume_and_revert(scenario: Scenario, workroot: Path) -> None:
    points = [
        first(scenario, "fs.replace", "tree/a.txt"),  # inside step 1: a.txt is new, op open
        first(scenario, "fs.rename", "tree/old") + 1,  # inside step 3: old/ is stashed
        first(scenario, "journal.written.committed"),  # every step done, not committed
    ]
    report = crash_campaign(scenario, points, workroot=workroot, nested=("first", "middle", "last"))
    assert_ok(report)
    assert report.tried == 3


def test_random_kills(scenario: Scenario, workroot: Path) -> None:
    report = random_kills(scenario, trials=5, seed=7, workroot=workroot)
    assert_ok(report)
    assert report.tried == 5


def test_faults_revert_or_commit(scenario: Scenario, workroot: Path) -> None:
    before, after = fs_points(scenario, after_commit=False), fs_points(scenario, after_commit=True)
    report = fault_campaign(scenario, ("EIO", "in-use"), workroot=workroot)
    assert_ok(report)
    assert report.tried == 2 * (len(before) + len(after)) > 20
    # Before the commit a fault reverts (or stops the run before the operation starts);
    # after it, in the clean-up, the operation stays committed and the child exits 0.
    outcomes = report.outcomes
    old = (
        outcomes["world old; journal: reverted"] + outcomes["world old; journal: no new operation"]
    )
    assert old == 2 * len(before)
    assert report.outcomes["world new; journal: committed"] == 2 * len(after)


def test_power_loss(scenario: Scenario, workroot: Path) -> None:
    points = [
        first(scenario, "journal.written.op-started"),
        first(scenario, "journal.written.step-done"),
        first(scenario, "journal.written.committed"),
    ]
    report = power_loss(scenario, points, seed=3, workroot=workroot)
    assert_ok(report)
    assert report.tried == 6  # each point cut clean and torn
    # Losing the commit record leaves every step done but the operation open.
    assert "world new; journal: 1 incomplete" in report.outcomes
    assert "world old; journal: no new operation" in report.outcomes


def test_format_table(scenario: Scenario) -> None:
    good = Report(scenario.name, "crash", tried=3, passed=3)
    table = format_table([good])
    assert scenario.name in table
    assert table.splitlines()[0].split(" | ")[:3] == ["scenario  ", "campaign", "tried"]
    assert "first failure repro" in table


# -- the harness can fail ------------------------------------------------------------------


def test_catches_a_revert_that_does_nothing(tmp_path: Path) -> None:
    broken = make_scenario(tmp_path / "scripts", "broken-revert", broken="revert")
    enumerate_points(broken)
    k = first(broken, "fs.rename", "tree/old")
    report = crash_campaign(broken, [k + 1], workroot=tmp_path / "work", nested=())
    assert report.failed == 1 and report.passed == 0
    failure = report.first_failure
    assert failure is not None
    assert "revert gave the neither old nor new world, expected old" in failure.message
    assert f"TXENGINE_FAILPOINTS='*#{k + 1}=kill'" in failure.repro
    assert "DEMO_BROKEN=revert" in failure.repro and "--revert" in failure.repro
    assert failure.workdir is not None and (failure.workdir / "world").is_dir()
    table = format_table([report])
    assert "broken-revert" in table and "*#" in table


def test_catches_a_false_success(tmp_path: Path) -> None:
    lying = make_scenario(tmp_path / "scripts", "lying", broken="lie")
    enumerate_points(lying)
    # A file call inside the first step: the fault makes the operation revert.
    started = first(lying, "journal.after.step-started")
    point = sum(1 for h in hits(lying)[:started] if h.name.startswith("fs.")) + 1
    report = fault_campaign(lying, ("EIO",), [point], workroot=tmp_path / "work")
    assert report.failed == 1
    failure = report.first_failure
    assert failure is not None and "child exited 0 (success)" in failure.message
    assert "=error:EIO'" in failure.repro


def test_a_scenario_that_cannot_run_is_refused(tmp_path: Path) -> None:
    sc = Scenario(
        name="nothing",
        setup=lambda w: None,
        run=[sys.executable, "-c", "raise SystemExit(3)"],
        resume=lambda w, revert: [sys.executable, "-c", "pass"],
        observe=tree_picture,
    )
    with pytest.raises(HarnessError, match="exited 3"):
        enumerate_points(sc, tmp_path)


def test_failure_exit_with_a_commit_needs_a_revert_beside_it() -> None:
    """A child that reports failure although its operation committed is caught; one that
    ran two operations, one committed and one reverted, may rightly fail."""
    from txengine.testing._cases import _Broken
    from txengine.testing._checks import _check_stopped, _Status

    sc = Scenario("two-ops", lambda w: None, [], lambda w, r: [], tree_picture, old=1, new=2)
    only_commit = _Status(2, [], committed=True, reverted=False, started=True)
    with pytest.raises(_Broken, match="reported failure"):
        _check_stopped(sc, only_commit, 1, killed=False)
    _check_stopped(sc, only_commit, 0, killed=False)
    _check_stopped(sc, only_commit, -9, killed=True)
    both = _Status(2, [], committed=True, reverted=True, started=True)
    _check_stopped(sc, both, 1, killed=False)
    with pytest.raises(_Broken, match="half-done"):
        _check_stopped(sc, _Status(3, [], False, False, True), 1, killed=False)
