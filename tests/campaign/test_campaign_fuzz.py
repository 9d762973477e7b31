"""Journal fuzz, sampled (``run_full.py`` does every byte offset and 1000 bit flips)."""

from __future__ import annotations

from pathlib import Path

import txfuzz

from txengine.testing import format_table


def test_damaged_journal_never_gives_a_traceback(wheels: Path, tmp_path: Path) -> None:
    report = txfuzz.campaign(
        wheels, tmp_path / "fuzz", sample=5, flips=4, seed=3, jobs=2, exhaustive=False
    )
    print(format_table([report]))
    assert report.ok, str(report)
    assert report.tried >= 8 * 14
