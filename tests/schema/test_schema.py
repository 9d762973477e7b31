"""The committed journal schema, the golden journals and the generated lifecycle diagram.

Golden journals (``journal-schema/golden/v<N>/``) were written once by the release that
introduced format N; every later release must still read them to the same states.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import txengine
from txengine import schema
from txengine._errors import JournalCorrupt, JournalTooNew
from txengine._journal import LOG_NAME, SNAPSHOT_NAME

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / schema.DEFAULT_OUTDIR / schema.SCHEMA_NAME
GOLDEN = ROOT / "journal-schema" / "golden"
GOLDEN_DIRS = sorted(p for p in GOLDEN.glob("v*/*") if p.is_dir())
JOURNAL_FILES = [f for d in GOLDEN_DIRS for f in (d / LOG_NAME, d / SNAPSHOT_NAME) if f.exists()]

# What each golden journal of format 1 holds, by subject: the state replay must reach.
# (expected.json beside each journal holds the full picture; this table pins the essentials
# independently, so that a regenerated expected.json cannot quietly change them.)
STATES = {
    "v1/success": {"alpha": "done", "beta": "done"},
    "v1/reverted": {"alpha": "reverted"},
    "v1/revert-failed": {"ruff": "revert_failed"},
    "v1/interrupted": {"alpha": "step_open", "beta": "step_reverting"},
    "v1/cleanup-pending": {"alpha": "committed"},
    "v1/resumed": {"alpha": "done", "beta": "reverted"},
    "v1/compacted": {"alpha": "done", "beta": "reverted", "gamma": "step_open", "delta": "done"},
    "v1/torn-tail": {"alpha": "done"},
}


def _name(d: Path) -> str:
    return f"{d.parent.name}/{d.name}"


def _copy(d: Path, tmp_path: Path) -> Path:
    dest = tmp_path / d.name
    shutil.copytree(d, dest)
    return dest


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_bytes().splitlines(keepends=True):
        if line.endswith(b"\n"):  # a torn last line is not a record
            out.append(json.loads(line[9:]))
    return out


def _frame(obj: dict[str, Any]) -> bytes:
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


# -- the schema ------------------------------------------------------------------------------


def test_committed_schema_matches_code() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert committed == schema.schema_text(), (
        f"{SCHEMA_FILE.relative_to(ROOT)} differs from the journal records in txengine._events."
        f" If the change is intended, regenerate it: {schema.REGENERATE}"
        " (and think about FORMAT_VERSION: see docs/journal-format.md)"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    doc = schema.json_schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(doc) == sorted(doc)
    jsonschema.Draft202012Validator.check_schema(doc)


def test_lifecycle_doc_is_current() -> None:
    path = ROOT / schema.DEFAULT_LIFECYCLE
    assert path.read_text(encoding="utf-8") == schema.lifecycle_text(), (
        f"{schema.DEFAULT_LIFECYCLE} is out of date with txengine._lifecycle;"
        f" regenerate it: {schema.REGENERATE}"
    )


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    args = [str(tmp_path / "s"), "--lifecycle", str(tmp_path / "l.md")]
    assert schema.main([*args, "--check"]) == 1
    assert schema.main(args) == 0
    assert schema.main([*args, "--check"]) == 0
    assert (tmp_path / "s" / schema.SCHEMA_NAME).read_text() == schema.schema_text()


# -- the golden journals ---------------------------------------------------------------------


def test_every_golden_journal_is_pinned() -> None:
    assert sorted(_name(d) for d in GOLDEN_DIRS) == sorted(STATES)


@pytest.mark.parametrize("path", JOURNAL_FILES, ids=lambda p: f"{_name(p.parent)}/{p.name}")
def test_golden_lines_validate_against_committed_schema(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    records = _records(path)
    assert records[0]["type"] == "header"
    for i, record in enumerate(records):
        errors = [e.message for e in validator.iter_errors(record)]
        assert not errors, f"{path.name} line {i + 1}: {errors}"


@pytest.mark.parametrize("d", GOLDEN_DIRS, ids=_name)
def test_golden_journal_replays_to_expected_states(d: Path) -> None:
    warnings: list[str] = []
    state = txengine.load(d, warn=warnings.append)
    expected = json.loads((d / "expected.json").read_text())

    assert {v.subject: v.state for v in state} == STATES[_name(d)]
    assert bool(warnings) == expected["torn_tail"]
    assert state.last_seq == expected["last_seq"]
    assert len(list(state)) == len(expected["ops"])
    for want in expected["ops"]:
        view = state.get(want["op"])
        assert view is not None, want["op"]
        got = {
            "op": view.id,
            "kind": view.kind,
            "subject": view.subject,
            "state": view.state,
            "steps": view.steps,
            "where": view.where(),
            "results": view.results,
            "error": view.error,
            "compacted": view.compacted,
            "audit": list(view.audit().actions),
        }
        assert got == want


def test_golden_audits() -> None:
    """The incomplete golden operations offer the ways out recovery.md promises."""

    def audit(name: str) -> dict[str, tuple[str, ...]]:
        return {a.subject: a.actions for a in txengine.load(GOLDEN / name).audit()}

    assert audit("v1/success") == {}
    assert audit("v1/revert-failed") == {"ruff": ("revert", "resume")}
    assert audit("v1/interrupted") == {"alpha": ("resume", "revert"), "beta": ("revert", "resume")}
    assert audit("v1/cleanup-pending") == {"alpha": ("cleanup",)}


def test_golden_journal_opens_for_writing(tmp_path: Path) -> None:
    """Opening cuts the torn tail off; the journal then takes new records."""
    d = _copy(GOLDEN / "v1" / "torn-tail", tmp_path)
    size = (d / LOG_NAME).stat().st_size
    warnings: list[str] = []
    with txengine.Journal.open(d, warn=warnings.append) as journal:
        assert len(warnings) == 1 and "cut off" in warnings[0]
        assert journal.state.last_seq == 9
    assert (d / LOG_NAME).stat().st_size < size
    assert txengine.load(d, warn=warnings.append).last_seq == 9
    assert len(warnings) == 1  # nothing torn any more


def test_compacted_golden_compacts_again(tmp_path: Path) -> None:
    d = _copy(GOLDEN / "v1" / "compacted", tmp_path)
    with txengine.Journal.open(d) as journal:
        assert journal.compact() == 1  # delta, closed in the log
    state = txengine.load(d)
    # The old snapshot held every closed operation; now it holds current state only (a
    # reverted operation defines none) and the history segment holds every closed one.
    assert {v.subject: (v.state, v.compacted) for v in state} == {
        "alpha": ("done", True),
        "gamma": ("step_open", False),
        "delta": ("done", True),
    }
    assert [(v.subject, v.state) for v in txengine.iter_history(d)] == [
        ("alpha", "done"),
        ("beta", "reverted"),
        ("delta", "done"),
        ("gamma", "step_open"),
    ]


# -- newer formats are refused ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["header", "record", "every line"])
def test_a_newer_format_is_refused(tmp_path: Path, which: str) -> None:
    d = _copy(GOLDEN / "v1" / "success", tmp_path)
    records = _records(d / LOG_NAME)
    for i, record in enumerate(records):
        if which == "every line" or (which == "header") == (i == 0):
            record["v"] = 2
            if which == "record":
                break
    (d / LOG_NAME).write_bytes(b"".join(_frame(r) for r in records))
    with pytest.raises(JournalTooNew) as info:
        txengine.load(d)
    assert (info.value.found, info.value.supported) == (2, 1)
    with pytest.raises(JournalTooNew):
        txengine.Journal.open(d, timeout=0)


def test_a_newer_record_type_is_refused_not_skipped(tmp_path: Path) -> None:
    d = _copy(GOLDEN / "v1" / "success", tmp_path)
    records = _records(d / LOG_NAME)
    records.insert(3, {"type": "step-paused", "v": 2, "seq": 3, "op": records[1]["op"], "ts": 0})
    (d / LOG_NAME).write_bytes(b"".join(_frame(r) for r in records))
    with pytest.raises(JournalTooNew):
        txengine.load(d)


def test_an_unknown_record_of_this_format_is_corruption(tmp_path: Path) -> None:
    d = _copy(GOLDEN / "v1" / "success", tmp_path)
    records = _records(d / LOG_NAME)
    records.insert(3, {"type": "step-paused", "v": 1, "seq": 3, "op": records[1]["op"], "ts": 0})
    (d / LOG_NAME).write_bytes(b"".join(_frame(r) for r in records))
    with pytest.raises(JournalCorrupt) as info:
        txengine.load(d)
    assert info.value.offset == sum(len(_frame(r)) for r in records[:3])
