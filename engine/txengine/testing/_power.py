"""Power loss: a kill, and the journal bytes that were not yet fsynced are gone too."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .._journal import LOG_NAME
from ._campaign import _campaign, _clean, _killed_at, _label
from ._cases import _Case, _Note
from ._checks import _check_stopped, _converge, _status
from ._report import Report
from ._scenario import Hit, Scenario


def power_loss(
    scenario: Scenario,
    points: Iterable[int] | None = None,
    seed: int = 0,
    *,
    torn: bool = True,
    workroot: Path | None = None,
    nested: Sequence[str] = (),
    jobs: int | None = None,
) -> Report:
    """Power loss: kill the child at hit k, then drop the journal bytes not yet fsynced.

    The model: a record is durable once a ``journal.synced`` point (an ``fdatasync``) has
    passed after its ``journal.written.<tag>`` point, so after the kill ``journal.log`` is
    cut back to the end of the last durable record; with ``torn`` a second case also keeps
    a random part of the first record that was in flight (a torn write). Then the usual checks: a
    committed record in the surviving journal must come with the new world, anything else
    must be old, or reported incomplete, and resume and revert must finish.

    Limits: only the journal's tail is dropped. The steps' file data and directory entries
    are fsynced by the filesystem primitives before the journal records their completion,
    and the parent cannot see what a real power cut would lose from the page cache, so
    files are taken as they are. By default ``points`` are the hits at which some written
    record is not yet synced: at every other hit a power loss is the same as a kill (see
    :func:`crash_campaign`).
    """
    clean = _clean(scenario, workroot)
    if points is None:
        ks = [i for i in range(1, len(clean.hits) + 1) if _in_flight(clean.hits[:i]) > 0]
    else:
        ks = list(points)
    rng = random.Random(seed)
    variants: list[tuple[int, float | None]] = []
    for k in ks:
        variants.append((k, None))
        if torn:
            variants.append((k, rng.random()))

    def case_for(k: int, fraction: float | None) -> Callable[[_Case], None]:
        def body(case: _Case) -> None:
            sc = case.scenario
            before, res = _killed_at(case, k)
            cut = _drop_undurable(sc.journal_dir(case.world) / LOG_NAME, res.hits, fraction)
            case.chain.append(_Note(f"power loss: journal.log cut to {cut} bytes"))
            st = _status(sc, case.world, before)
            case.outcome = st.describe(sc)
            _check_stopped(sc, st, res.rc, killed=True)
            _converge(case, st, nested, k)

        return body

    cases = [
        (f"power@{k}:{_label(clean.hits, k)}{'' if f is None else ' torn'}", case_for(k, f))
        for k, f in variants
    ]
    report = _campaign(scenario, "power-loss", cases, workroot, jobs)
    report.notes.append("model: only the journal tail that was not fsynced is dropped")
    return report


def _in_flight(hits: Sequence[Hit]) -> int:
    """How many written records the trace ``hits`` has not yet seen fsynced."""
    pending = 0
    for h in hits:
        if h.name.startswith("journal.written."):
            pending += 1
        elif h.name == "journal.synced":
            pending = 0
    return pending


def _drop_undurable(log: Path, hits: Sequence[Hit], fraction: float | None) -> int:
    """Cut ``log`` to its durable records, per the child's trace; return the new size.

    The records in flight are those written (``journal.written.*``) after the last
    ``journal.synced`` point. With ``fraction``, keep that share of the bytes of the first
    of them (a torn write).
    """
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return 0
    in_flight = _in_flight(hits)
    if in_flight <= 0:
        return len(data)
    lines = data.split(b"\n")[:-1]
    keep = len(lines) - in_flight  # header and every durable record
    end = sum(len(line) + 1 for line in lines[:keep])
    if fraction is not None:
        tail = len(lines[keep]) + 1
        end += max(1, min(tail - 1, int(tail * fraction)))
    with open(log, "r+b") as f:
        f.truncate(end)
    return end
