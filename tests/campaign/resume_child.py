"""The campaigns' resume child: ``txtool resume [--revert]``, then "nothing left pending".

Runs the real CLI in this process (so failpoints and SIGKILL act on it as on ``python -m
txtool``). After a successful resume it also requires that no committed operation still
has its clean-up pending, and that the stash is empty: resume promises to finish
everything, stash included. Exit 6 otherwise.
"""

from __future__ import annotations

import sys

from txtool.cli import main as txtool_main

PENDING = 6


def main() -> int:
    rc = txtool_main(["resume", *sys.argv[1:]])
    if rc != 0:
        return rc
    from txengine import load
    from txtool.locations import Locations

    journal = Locations.from_env().journal_dir
    if journal.exists():
        pending = [v.id for v in load(journal).uncleaned()]
        if pending:
            print(f"resume_child: clean-up still pending for {pending}", file=sys.stderr)
            return PENDING
        stash = journal / "stash"
        left = sorted(p.name for p in stash.iterdir()) if stash.is_dir() else []
        if left:
            print(f"resume_child: stash not emptied: {left}", file=sys.stderr)
            return PENDING
    return 0


if __name__ == "__main__":
    sys.exit(main())
