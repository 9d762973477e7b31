"""``python -m bundles install SOURCE VERSION --prefix P | resume [--revert] | status``.

Exit codes: 0 done, 1 failed and every change undone, 2 bad input (nothing changed),
3 incomplete (run ``resume``), 4 another process holds the prefix's journal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from txengine import (
    Engine,
    Journal,
    LockBusy,
    OperationFailed,
    OperationIncomplete,
    load,
)

from .installer import STEPS, current, install, journal_dir, resume


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bundles", description=__doc__)
    parser.add_argument("--prefix", type=Path, required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="install a version and make it current")
    inst.add_argument("source", type=Path)
    inst.add_argument("version")
    inst.add_argument("--sha256", help="the bundle's checksum (default: the source's)")
    res = sub.add_parser("resume", help="finish what a killed run left, or undo it")
    res.add_argument("--revert", action="store_true")
    sub.add_parser("status", help="the current version and any incomplete operation")
    args = parser.parse_args(argv)
    prefix = args.prefix.absolute()
    try:
        if args.command == "install":
            view = anyio.run(install, prefix, args.source.absolute(), args.version, args.sha256)
            print(f"installed {view.subject}: {prefix / 'current'} -> versions/{view.subject}")
        elif args.command == "resume":

            async def go() -> None:
                with Journal.open(journal_dir(prefix)) as journal:
                    await resume(Engine(journal, STEPS), revert=args.revert)

            anyio.run(go)
            print(f"nothing incomplete; current: {current(prefix)}")
        else:
            left = load(journal_dir(prefix)).incomplete() if journal_dir(prefix).is_dir() else []
            print(f"current: {current(prefix)}")
            for view in left:
                print(f"incomplete: {view.kind} {view.subject}: {view.where()} (run resume)")
            return 3 if left else 0
    except ValueError as e:
        print(f"bundles: error: {e}", file=sys.stderr)
        return 2
    except OperationFailed as e:
        print(f"bundles: failed: {e}", file=sys.stderr)
        return 1
    except OperationIncomplete as e:
        print(
            f"bundles: incomplete: {e} (run: python -m bundles --prefix {prefix} resume)",
            file=sys.stderr,
        )
        return 3
    except LockBusy as e:
        print(f"bundles: busy: {e}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
