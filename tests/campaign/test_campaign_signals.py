"""A sample of the real-signal spread (``txsignals``; every moment x SIGINT and SIGTERM runs
in ``run_full.py``): a real ``txtool upgrade`` signalled at chosen moments."""

from __future__ import annotations

from pathlib import Path

import pytest
import txsignals as ts


@pytest.fixture(scope="module")
def worlds(wheels: Path) -> ts.Worlds:
    return ts.worlds(wheels)


@pytest.mark.parametrize(
    ("sig", "moment"),
    [
        ("SIGINT", "resolving"),
        ("SIGTERM", "env-created"),
        ("SIGINT", "env-installed"),
        ("SIGTERM", "switched"),
        ("SIGINT", "commit-fsync"),
        ("SIGTERM", "commit-durable"),
    ],
)
def test_signal_keeps_the_promise(
    sig: str, moment: str, wheels: Path, worlds: ts.Worlds, tmp_path: Path
) -> None:
    outcome, problems = ts.run_case(ts.moment(moment), sig, wheels, worlds, tmp_path)
    assert not problems, f"{outcome}:\n" + "\n".join(problems)
