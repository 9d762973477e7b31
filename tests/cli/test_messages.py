"""What a failing command says: the cause once, each step in the same words in its progress
line and in its failure, and a file in the way in the bin dir found before anything is built."""

from __future__ import annotations

import os
import re

from txengine import load
from txtool.cli import FAILED


def test_a_resolver_failure_is_said_once(tx) -> None:
    proc = tx.install("nosuchtool", expect=FAILED)
    cause = "nosuchtool was not found"
    assert proc.stderr.count(cause) == 1, proc.stderr
    assert cause in tx.one_error(proc)


def test_the_failing_step_has_the_same_words_in_progress_and_error(tx) -> None:
    foreign = tx.bin / "mt-b"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("mine\n")
    proc = tx.install("multitool==1.0", expect=FAILED)  # mt-b is known only once built
    (failed,) = [ln for ln in proc.stderr.splitlines() if ln.endswith(" failed")]
    label = re.fullmatch(r"install multitool: step \d+/\d+: (.*) failed", failed)
    assert label is not None, failed
    assert f"multitool: {label.group(1)} failed: {foreign} exists" in tx.one_error(proc)
    started = {
        m.group(1)
        for m in re.finditer(r"^install multitool: step \d+/\d+: (.*)$", proc.stderr, re.M)
    }
    assert label.group(1) in started
    assert foreign.read_text() == "mine\n"


def test_a_file_in_the_way_is_found_before_the_environment_is_built(tx) -> None:
    foreign = tx.bin / "txdemo"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("mine\n")
    proc = tx.install("txdemo==1.0", expect=FAILED)  # as when the step finds it
    assert tx.one_error(proc) == (
        f"txtool: error: cannot install txdemo: {foreign} exists and was not installed by"
        " txtool (use --force to replace it); nothing was changed"
    )
    assert "step" not in proc.stderr  # no operation began
    assert not (tx.home / "tools" / "txdemo").exists()
    assert not tx.journal.exists() or list(load(tx.journal)) == []
    tx.install("txdemo==1.0", "--force")
    assert tx.shim() == "txdemo 1.0 (helper 1.0)"


def test_names_known_from_an_earlier_build_are_checked_before_building(tx) -> None:
    tx.install("multitool==1.0")
    shim = tx.bin / "mt-b"
    os.unlink(shim)
    shim.write_text("my own mt-b\n")
    assert f"kept {shim}" in tx("uninstall", "multitool").stdout
    proc = tx.install("multitool==1.0", expect=FAILED)
    assert f"cannot install multitool: {shim} exists and was not installed by txtool" in (
        tx.one_error(proc)
    )
    assert tx.envs("multitool") == []
    tx("journal", "compact")  # only the uninstall is kept: it names the shims it removed
    proc = tx.install("multitool==1.0", expect=FAILED)
    assert str(shim) in tx.one_error(proc) and tx.envs("multitool") == []
    assert shim.read_text() == "my own mt-b\n"
