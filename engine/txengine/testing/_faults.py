"""Faults: every filesystem call of a run fails in turn, with every errno."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ._campaign import _campaign, _clean
from ._cases import _Broken, _Case
from ._checks import _check_stopped, _converge, _ops, _status
from ._report import Report
from ._scenario import Scenario

#: The errors fault_campaign injects by default ("in-use": Windows' os error 32).
DEFAULT_ERRNOS = ("EIO", "ENOSPC", "EACCES", "EBUSY", "in-use")


def fault_campaign(
    scenario: Scenario,
    errnos: Sequence[str] = DEFAULT_ERRNOS,
    points: Iterable[int] | None = None,
    *,
    workroot: Path | None = None,
    nested: Sequence[str] = (),
    jobs: int | None = None,
) -> Report:
    """Make the m-th filesystem call fail, for every m (or ``points``) and every error.

    ``errnos`` are errno names (``EIO``...) or ``"in-use"``. Expected: the child exits
    non-zero with the old world back, or exits 0 with the new world committed, or leaves an
    incomplete operation that resume and revert finish.
    """
    clean = _clean(scenario, workroot)
    fs_hits = [h for h in clean.hits if h.name.startswith("fs.")]
    ms = list(points) if points is not None else list(range(1, len(fs_hits) + 1))

    def case_for(m: int, err: str) -> Callable[[_Case], None]:
        action = "in-use" if err == "in-use" else f"error:{err}"

        def body(case: _Case) -> None:
            sc = case.scenario
            before = _ops(sc, case.world)
            res = case.call(sc.argv(case.world), f"fs.*#{m}={action}")
            if res.rc < 0:
                raise _Broken(f"child died of signal {-res.rc}:\n{res.output}")
            st = _status(sc, case.world, before)
            case.outcome = st.describe(sc)
            _check_stopped(sc, st, res.rc, killed=False)
            if st.incomplete:
                _converge(case, st, nested, m)

        return body

    cases = [
        (f"{err}@fs#{m}:{fs_hits[m - 1].name if m <= len(fs_hits) else '?'}", case_for(m, err))
        for m in ms
        for err in errnos
    ]
    return _campaign(scenario, "fault", cases, workroot, jobs)
