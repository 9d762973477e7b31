"""Settings txtool cannot use are refused in one line, exit 2, before anything is created
(issue 7.12): a path that would break the `#!` line of every launcher under it, and a lock
timeout that is not a number."""

from __future__ import annotations

import pytest
from txcli import Tx

from txtool.cli import USAGE


@pytest.mark.parametrize("var", ["TXTOOL_HOME", "TXTOOL_BIN_DIR"])
@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x7f"])
def test_a_path_that_breaks_a_shebang_line_is_refused_up_front(tx: Tx, var: str, char: str) -> None:
    bad = str(tx.root / f"odd{char}dir")
    for args in (["install", "txdemo==1.0", *tx.index], ["list"]):
        line = tx.one_error(tx(*args, expect=USAGE, **{var: bad}))
        assert "control character" in line and "\n" not in line
    assert sorted(p.name for p in tx.root.iterdir()) == []  # nothing created anywhere


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1e999"])
def test_a_lock_timeout_that_is_not_seconds_is_a_usage_error(tx: Tx, value: str) -> None:
    line = tx.one_error(
        tx("install", "txdemo==1.0", *tx.index, expect=USAGE, TXTOOL_LOCK_TIMEOUT=value)
    )
    assert f"TXTOOL_LOCK_TIMEOUT={value!r}" in line
    assert not tx.home.exists() and not tx.bin.exists()


def test_a_lock_timeout_of_seconds_is_accepted(tx: Tx) -> None:
    tx.install("txdemo==1.0", TXTOOL_LOCK_TIMEOUT=" 2.5 ")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"
