"""The exhaustive txtool campaign: every scenario x every way to break it, plus the full fuzz.

Run from the repository root, in the test venv::

    python tests/campaign/run_full.py

Scenarios: install, upgrade, uninstall, multitool (upgrade, 2.0 adds a GUI script),
upgrade-all (three tools, ``upgrade --all``). Campaigns (``txengine.testing``): a SIGKILL at
every failpoint hit (with ``--nested rotate`` the resume and revert children are killed
too, at one of their first, middle or last hits; ``--nested all`` at all three), seeded random
kills, a fault (EIO, ENOSPC, EACCES, EBUSY, Windows "in use") at every filesystem call,
and power loss at every journal write. Then the journal fuzz: a real journal truncated at
every byte offset, ``--flips`` random bit flips, garbage appended, every command run on
each. Prints the harness's table and exits 1 on any failure (failing cases are kept under
``--workroot``).

``upgrade-all`` runs several operations (one per tool), so "old or new" is per tool there
(see ``txcampaign.PerTool``); its fault campaign is left out, because a fault in one tool's
upgrade correctly fails that tool (exit 1) while the others commit, which the harness's
single-operation model reads as "reported failure but committed".

Then the real faults: the real-ENOSPC sweep (``txenospc``: a tmpfs that really fills up at
every record and every shim write of install, upgrade and uninstall, symlink and copy shims;
root only, skipped with its reason otherwise) and the real-signal spread (``txsignals``:
SIGINT and SIGTERM at every moment of an upgrade). ``--scenarios '' --no-fuzz`` runs only
these; ``--no-enospc`` / ``--no-signals`` leave them out.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import txcampaign as tc  # noqa: E402
import txenospc  # noqa: E402
import txfuzz  # noqa: E402
import txsignals  # noqa: E402

from txengine.testing import (  # noqa: E402
    Report,
    crash_campaign,
    enumerate_points,
    fault_campaign,
    format_table,
    power_loss,
    random_kills,
)
from txtool.wheelhouse import build_test_wheelhouse  # noqa: E402

CAMPAIGNS = ("crash", "random-kill", "fault", "power-loss")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenarios", default=",".join(tc.SCENARIOS))
    p.add_argument("--campaigns", default=",".join(CAMPAIGNS))
    p.add_argument("--trials", type=int, default=10, help="random kills per scenario")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--flips", type=int, default=1000, help="bit flips in the fuzz")
    p.add_argument("--no-fuzz", action="store_true")
    p.add_argument("--no-enospc", action="store_true", help="leave out the real-ENOSPC sweep")
    p.add_argument("--no-signals", action="store_true", help="leave out the real signals")
    p.add_argument(
        "--nested",
        choices=["none", "rotate", "all"],
        default="none",
        help="also kill the resume/revert children (rotate: at one of first/middle/last hits)",
    )
    p.add_argument("--jobs", type=int, default=6, help="cases run at once")
    p.add_argument("--workroot", type=Path, default=None, help="keep case directories here")
    args = p.parse_args(argv)

    nested = {"rotate": ("rotate",), "all": ("first", "middle", "last"), "none": ()}[args.nested]
    root = args.workroot or Path(tempfile.mkdtemp(prefix="txtool-campaign-"))
    root.mkdir(parents=True, exist_ok=True)
    wheels = build_test_wheelhouse(root / "wheels")
    campaigns = args.campaigns.split(",")
    reports: list[Report] = []
    t0 = time.monotonic()
    for name in filter(None, args.scenarios.split(",")):
        sc = tc.scenario(name, wheels)
        hits = enumerate_points(sc, root)
        print(f"== {name}: {len(hits)} failpoint hits in a clean run", flush=True)
        kw = {"workroot": root, "jobs": args.jobs}
        for campaign in campaigns:
            if campaign == "crash":
                report = crash_campaign(sc, nested=nested, **kw)
            elif campaign == "random-kill":
                report = random_kills(sc, args.trials, args.seed, nested=nested, **kw)
            elif campaign == "fault" and name != "upgrade-all":
                report = fault_campaign(sc, **kw)
            elif campaign == "power-loss":
                report = power_loss(sc, seed=args.seed, **kw)
            else:
                continue
            print(report, flush=True)
            reports.append(report)
    if not args.no_fuzz:
        report = txfuzz.campaign(
            wheels, root / "fuzz", offsets="all", flips=args.flips, seed=args.seed, jobs=args.jobs
        )
        print(report, flush=True)
        reports.append(report)
    if not args.no_enospc:
        reason = txenospc.unavailable()
        if reason:
            print(f"== real-ENOSPC sweep skipped: {reason}", flush=True)
        for s in () if reason else txenospc.SWEEPS:
            report = txenospc.run_sweep(s, wheels, root / "enospc", jobs=min(args.jobs, 2))
            print(report, flush=True)
            reports.append(report)
    if not args.no_signals:
        report = txsignals.campaign(wheels, root / "signals", jobs=min(args.jobs, 2))
        print(report, flush=True)
        reports.append(report)
    elapsed = time.monotonic() - t0
    print()
    print(format_table(reports), end="")
    failed = [r for r in reports if not r.ok]
    print(f"\n{len(reports)} reports, {len(failed)} failing, {elapsed / 60:.1f} minutes")
    if not failed and args.workroot is None:
        shutil.rmtree(root, ignore_errors=True)
    elif failed:
        print(f"failing cases kept under {root}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
