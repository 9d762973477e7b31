"""The promise, checked after a child stopped: old world or new, never a mix; resume and
revert reach their ends, even when killed themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import _lifecycle as lc
from .._journal import load
from ._cases import KILLED, _Broken, _Case, _Result
from ._scenario import Scenario


def _ops(scenario: Scenario, workdir: Path) -> dict[str, str]:
    """Every operation in the journal and its lifecycle state."""
    directory = scenario.journal_dir(workdir)
    if not directory.exists():
        return {}
    try:
        state = load(directory)
    except Exception as e:
        raise _Broken(f"the journal does not load: {e}") from None
    return {view.id: view.state for view in state}


def _incomplete(scenario: Scenario, workdir: Path) -> list[str]:
    if scenario.incomplete is not None:
        return list(scenario.incomplete(workdir))
    return [op for op, st in _ops(scenario, workdir).items() if st in lc.INCOMPLETE]


@dataclass
class _Status:
    """The world and the journal after a child stopped."""

    picture: object
    incomplete: list[str]
    committed: bool  # an operation started by the child has committed
    reverted: bool  # an operation started by the child was reverted
    started: bool  # the child started an operation (or changed one)

    def describe(self, scenario: Scenario) -> str:
        world = (
            "old"
            if self.picture == scenario.old
            else "new"
            if self.picture == scenario.new
            else "neither old nor new"
        )
        journal = (
            f"{len(self.incomplete)} incomplete"
            if self.incomplete
            else "committed and reverted"
            if self.committed and self.reverted
            else "committed"
            if self.committed
            else "reverted"
            if self.reverted
            else "started, not committed"
            if self.started
            else "no new operation"
        )
        return f"world {world}; journal: {journal}"


def _status(scenario: Scenario, workdir: Path, before: Mapping[str, str]) -> _Status:
    ops = _ops(scenario, workdir)
    changed = {op: st for op, st in ops.items() if before.get(op) != st}
    committed = any(st in (lc.COMMITTED, lc.DONE) for st in changed.values())
    reverted = any(st == lc.REVERTED for st in changed.values())
    picture = scenario.observe(workdir)
    return _Status(picture, _incomplete(scenario, workdir), committed, reverted, bool(changed))


def _check_stopped(scenario: Scenario, st: _Status, rc: int, *, killed: bool) -> None:
    """The promise right after a child stopped (killed, faulted or finished)."""
    old, new = scenario.old, scenario.new
    if rc == 0 and not (st.picture == new and st.committed and not st.incomplete):
        raise _Broken(f"child exited 0 (success) but {st.describe(scenario)}")
    if st.incomplete:
        return  # any world is allowed while the journal says what to finish
    if st.picture == new and new != old:
        if not st.committed:
            raise _Broken(
                f"world is new but the journal has no committed operation ({st.describe(scenario)})"
            )
        if rc != 0 and not killed and not st.reverted:
            # (A child that runs several operations may rightly fail when one of them was
            # reverted and another committed; with nothing reverted, failure is a lie.)
            raise _Broken(f"child reported failure (exit {rc}) but the operation committed")
    elif st.picture == old:
        if st.committed and new != old:
            raise _Broken(f"the journal says committed but {st.describe(scenario)}")
    else:
        raise _Broken(f"half-done: {st.describe(scenario)} and no incomplete operation reported")


def _ends(scenario: Scenario, st: _Status) -> tuple[object, object]:
    """(world after resume, world after revert) for a stopped child."""
    if st.committed and not st.incomplete:
        return scenario.new, scenario.new
    if st.incomplete:
        return scenario.new, scenario.old
    return scenario.old, scenario.old


def _name(picture: object, scenario: Scenario) -> str:
    if picture == scenario.old:
        return "old"
    if picture == scenario.new:
        return "new"
    return "neither old nor new"


def _check_end(case: _Case, what: str, res: _Result, expected: object) -> None:
    sc = case.scenario
    if res.rc != 0:
        raise _Broken(f"{what} exited {res.rc}:\n{res.output}")
    left = _incomplete(sc, case.world)
    if left:
        raise _Broken(f"{what} exited 0 but operations {left} are still incomplete")
    got = sc.observe(case.world)
    if got != expected:
        raise _Broken(
            f"{what} gave the {_name(got, sc)} world, expected {_name(expected, sc)}"
            f"{_diff(got, expected)}"
        )


def _diff(got: object, expected: object) -> str:
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return ""
    keys = sorted(set(got) | set(expected))
    lines = [
        f"    {k}: {expected.get(k, '<absent>')!r:.60} -> {got.get(k, '<absent>')!r:.60}"
        for k in keys
        if got.get(k) != expected.get(k)
    ]
    return ("\n" + "\n".join(lines[:10])) if lines else ""


def _pick(nested: Sequence[str], count: int, k: int) -> list[int]:
    """Which hits (1-based) of a resume child to kill it at."""
    if count == 0:
        return []
    where = {"first": 1, "middle": (count + 1) // 2, "last": count}
    chosen: list[int] = []
    for name in nested:
        if name == "rotate":  # one of first/middle/last, by the outer point
            j = where[("first", "middle", "last")[k % 3]]
        else:
            j = where[name]
        if j not in chosen:
            chosen.append(j)
    return chosen


def _converge(case: _Case, st: _Status, nested: Sequence[str], k: int) -> None:
    """From the crashed world: resume and revert reach their ends, even when killed."""
    sc = case.scenario
    forward_end, revert_end = _ends(sc, st)
    case.save()
    runs: dict[bool, _Result] = {}
    for revert, end in ((False, forward_end), (True, revert_end)):
        what = "revert" if revert else "resume"
        res = case.call(sc.resume(case.world, revert))
        runs[revert] = res
        _check_end(case, what, res, end)
        case.restore()
        case.chain.pop()
    for revert, end in ((False, forward_end), (True, revert_end)):
        what = "revert" if revert else "resume"
        for j in _pick(nested, len(runs[revert].hits), k):
            res = case.call(sc.resume(case.world, revert), f"*#{j}=kill")
            if res.rc not in (KILLED, 0):
                raise _Broken(f"{what} killed at hit {j} exited {res.rc}:\n{res.output}")
            mid = _status(sc, case.world, {})
            if not mid.incomplete and mid.picture not in (sc.old, sc.new):
                raise _Broken(f"{what} killed at hit {j}: half-done world, nothing incomplete")
            again = case.call(sc.resume(case.world, revert))
            _check_end(case, f"{what} after a kill at its hit {j}", again, end)
            case.restore()
            case.chain.pop()
            case.chain.pop()
