"""The default-run subset of the crash campaign (the full one: ``run_full.py``).

Every failpoint of ``upgrade txdemo`` (1.0 -> 2.0, the helper 1.0 -> 2.0) and of
``rollback multitool`` (2.0 -> 1.0, offline): killed there, the world is old, new, or
reported incomplete, and resume gives the new world, revert the old one. Plus a few random
kills, and one point where resume and revert are killed too.
"""

from __future__ import annotations

from pathlib import Path

import txcampaign as tc

from txengine.testing import crash_campaign, enumerate_points, format_table, random_kills


def _assert_ok(report: object) -> None:
    print(format_table([report]))  # type: ignore[list-item]
    assert report.ok, str(report)  # type: ignore[attr-defined]


def test_upgrade_killed_at_every_failpoint(wheels: Path, tmp_path: Path) -> None:
    sc = tc.scenario("upgrade", wheels)
    hits = enumerate_points(sc, tmp_path)
    assert len(hits) > 30
    _assert_ok(crash_campaign(sc, workroot=tmp_path, nested=(), jobs=4))


def test_rollback_killed_at_every_failpoint(wheels: Path, tmp_path: Path) -> None:
    sc = tc.scenario("rollback", wheels)
    hits = enumerate_points(sc, tmp_path)
    names = {h.name for h in hits}
    assert {"step.switch-current.switched", "step.remove-shims.removed"} <= names
    _assert_ok(crash_campaign(sc, workroot=tmp_path, nested=(), jobs=4))


def test_upgrade_resume_and_revert_killed_too(wheels: Path, tmp_path: Path) -> None:
    sc = tc.scenario("upgrade", wheels)
    hits = enumerate_points(sc, tmp_path)
    # Inside the switch: the stable path names the new environment, the shims not checked yet.
    k = next(i for i, h in enumerate(hits, 1) if h.name == "step.switch-current.switched")
    report = crash_campaign(sc, [k], workroot=tmp_path, nested=("first", "middle", "last"), jobs=2)
    _assert_ok(report)


def test_upgrade_random_kills(wheels: Path, tmp_path: Path) -> None:
    sc = tc.scenario("upgrade", wheels)
    _assert_ok(random_kills(sc, trials=4, seed=1, workroot=tmp_path, jobs=4))
