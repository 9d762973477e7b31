"""The golden journal of ``examples/bundles`` (``journal-schema/golden/bundles/``).

Written once by the example as released (0.1.0): install 1 and 2 (done), install 3 with a
wrong checksum (reverted), install 4 killed between the new ``current`` link and its rename
(incomplete). Every later engine and example must read it to the same states, and decode
its plans, intents and results into today's step types: a change of a step's fields that
breaks this needs a step version and an upcast, not a new golden file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
from bundles import STEPS, Stage, SwitchCurrent

from txengine import Journal, StepTypes, load

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "journal-schema" / "golden" / "bundles"
SCHEMA = ROOT / "journal-schema" / "v1" / "journal-line.schema.json"
# Where ``current`` pointed before each install's switch (its undo).
OLD_LINK = {"1": None, "2": "versions/1", "4": "versions/2"}


def test_golden_lines_are_format_1() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    lines = (GOLDEN / "journal.log").read_bytes().splitlines()
    assert json.loads(lines[0][9:])["type"] == "header"
    for i, line in enumerate(lines):
        errors = [e.message for e in validator.iter_errors(json.loads(line[9:]))]
        assert not errors, f"line {i + 1}: {errors}"


def test_golden_replays_to_its_states() -> None:
    state = load(GOLDEN)
    assert {v.subject: v.state for v in state} == {
        "1": "done",
        "2": "done",
        "3": "reverted",
        "4": "step_open",
    }
    (audit,) = state.audit()
    assert audit.subject == "4" and set(audit.actions) == {"resume", "revert"}
    assert "step 3/4 (bundle-switch)" in audit.where


def test_golden_plans_intents_and_results_decode_into_todays_steps() -> None:
    types = StepTypes(STEPS)
    for view in load(GOLDEN):
        steps = [types.decode(p, view.id, i) for i, p in enumerate(view.plan)]
        assert [s.kind for s in steps] == [t.kind for t in STEPS]
        assert isinstance(steps[0], Stage) and steps[0].dest.endswith(f"versions/{view.subject}")
        assert isinstance(steps[2], SwitchCurrent) and steps[2].target == f"versions/{view.subject}"
        # What today's steps read back from their recorded intents.
        if view.intents[0] is not None:
            assert isinstance(view.intents[0]["existed"], bool)
        if view.intents[2] is not None:  # 3 stopped at its checksum, before the switch
            assert view.intents[2]["old"] == OLD_LINK[view.subject]


def test_golden_opens_for_writing(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    shutil.copytree(GOLDEN, journal_dir)
    with Journal.open(journal_dir) as journal:
        assert [v.subject for v in journal.state.incomplete()] == ["4"]
        assert journal.compact() == 3
    assert {v.subject: v.state for v in load(journal_dir)}["4"] == "step_open"
