"""Reading a home's state without changing it: for ``list``, ``status`` and error reports.

Imports only the journal's reader and txtool's projection, not the installer: a read-only
command pays for what it reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from txengine import JournalState, live_holder, load

from .locations import Locations


def read_state(loc: Locations, warn: Callable[[str], None]) -> JournalState:
    """The journal's state, unlocked (an empty one for a home without a journal)."""
    if not loc.journal_dir.exists():
        return JournalState()
    return load(loc.journal_dir, warn=warn)


def running(loc: Locations, state: JournalState) -> dict[str, int]:
    """Incomplete operations that a live txtool is working on now: op id -> its pid.

    An operation is running when a live process holds its tool's subject lock and the
    operation was written since that process started (no one else may write it while the
    lock is held); older incomplete ones were left by a process that died.
    """
    found = {}
    for view in state.incomplete():
        pid = live_holder(loc.journal_dir, view.subject)
        if pid is None:
            continue
        since = _process_start(pid)
        if since is None or view.updated >= since:
            found[view.id] = pid
    return found


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), where the system says."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(int(ln.split()[1]) for ln in f if ln.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK") - 1.0  # btime is rounded down to a second
