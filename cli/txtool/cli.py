"""The ``txtool`` command line. Heavy modules are imported inside the commands that need
them, so ``txtool --version`` and ``--help`` load neither the engine nor a progress library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__

if TYPE_CHECKING:
    from txengine import Journal, JournalState, OperationView

    from .installer import Installer, Outcome
    from .locations import Locations
    from .output import Reporter

# Exit codes (docs/cli.md).
OK = 0
FAILED = 1  # the operation failed and every change was undone (or `verify` found a mismatch)
USAGE = 2  # bad command line or input; nothing changed
INCOMPLETE = 3  # an operation is incomplete: `txtool resume` (or `resume --revert`) fixes it
BUSY = 4  # another txtool holds the lock
JOURNAL = 5  # the journal is unreadable (corrupt, or written by a newer txtool)
INTERRUPTED = 130  # Ctrl-C before anything changed


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the fix is in the message or in --help.
        self.exit(USAGE, f"txtool: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="txtool", description="Install Python command-line tools, transactionally.")
    p.add_argument("--version", action="version", version=f"txtool {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def cmd(name: str, help_: str, json_: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        if json_:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    def source_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--python", help="interpreter for the tool: a path or a version like 3.12")
        sp.add_argument("--index-url", help="base URL of the package index")
        sp.add_argument("--find-links", action="append", default=[], metavar="DIR_OR_URL")
        sp.add_argument("--no-index", action="store_true", help="use only --find-links")
        sp.add_argument("--backend", choices=["uv", "pip"], help="installer backend (default: uv)")
        sp.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")

    sp = cmd("install", "install tools, each in its own environment")
    sp.add_argument("specs", nargs="+", metavar="SPEC")
    source_options(sp)
    sp.add_argument("--force", action="store_true", help="replace files txtool does not own")

    sp = cmd("upgrade", "upgrade tools (resuming any incomplete operation first)")
    sp.add_argument("names", nargs="*", metavar="NAME")
    sp.add_argument("--all", action="store_true", help="upgrade every installed tool")
    sp.add_argument("--jobs", type=int, default=4, help="tools upgraded at once with --all")
    source_options(sp)
    sp.add_argument("--force", action="store_true", help="replace files txtool does not own")

    sp = cmd("uninstall", "remove tools and their executables")
    sp.add_argument("names", nargs="+", metavar="NAME")
    sp.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")

    cmd("list", "list installed tools")

    sp = cmd("resume", "finish (or with --revert, undo) incomplete operations")
    sp.add_argument("op", nargs="?", help="operation id (default: every incomplete one)")
    sp.add_argument("--revert", action="store_true", help="roll back instead of forward")

    cmd("status", "show incomplete operations and how to fix them")

    sp = cmd("history", "show past operations")
    sp.add_argument("name", nargs="?", metavar="NAME")

    sp = cmd("journal", "inspect or maintain the journal", json_=False)
    jsub = sp.add_subparsers(dest="journal_command", metavar="ACTION", parser_class=_Parser)
    jsub.required = True
    js = jsub.add_parser("show", help="print the journal's records")
    js.add_argument("--json", action="store_true", help="one JSON record per line")
    jsub.add_parser("verify", help="check every record's checksum and the lifecycle")
    jsub.add_parser("compact", help="fold closed operations into the snapshot")

    cmd("verify", "check the disk against the journal")
    sp = cmd("demo", "run the offline demo in a throwaway home", json_=False)
    sp.add_argument("--keep", action="store_true", help="keep the demo's home directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return USAGE
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(keep=args.keep)
    from txengine import TxError

    from .installer import NeedsResume, UsageError
    from .names import BadName

    code, message = OK, ""
    try:
        return int(COMMANDS[args.command](args))
    except (UsageError, BadName) as e:
        code, message = USAGE, str(e)
    except NeedsResume as e:
        code, message = INCOMPLETE, str(e)
    except TxError as e:
        code, message = _code_of(e), str(e)
    except OSError as e:
        code, message = _os_error(e)
    if getattr(args, "json", False):
        json.dump({"error": message, "exit_code": code}, sys.stdout)
        sys.stdout.write("\n")
    return _fail(code, message)


def _os_error(e: OSError) -> tuple[int, str]:
    """An OS error outside any step (the journal's disk is full, a directory is read-only):
    whether it left something half done is for the journal to say."""
    from txengine import TxError, describe_error

    try:
        incomplete = _state().incomplete()
    except (TxError, OSError):
        incomplete = []
    if incomplete:
        return INCOMPLETE, f"{describe_error(e)}; an operation is incomplete: see `txtool status`"
    return FAILED, f"{describe_error(e)} (no operation was left incomplete)"


def _code_of(e: Exception) -> int:
    from txengine import JournalError, LockBusy, OperationFailed, OperationIncomplete

    if isinstance(e, LockBusy):
        return BUSY
    if isinstance(e, JournalError):
        return JOURNAL
    if isinstance(e, OperationIncomplete):
        return INCOMPLETE
    if isinstance(e, OperationFailed):
        return FAILED
    return FAILED


def _fail(code: int, message: str) -> int:
    print(f"txtool: error: {message}", file=sys.stderr)
    return code


def _warn(message: str) -> None:
    print(f"txtool: warning: {message}", file=sys.stderr)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        text()


# -- reading -------------------------------------------------------------------------------


def _locations() -> Locations:
    from .locations import Locations

    return Locations.from_env()


def _state() -> JournalState:
    from txengine import JournalState, load

    loc = _locations()
    if not loc.journal_dir.exists():
        return JournalState()
    return load(loc.journal_dir, warn=_warn)


def _live_holder(loc: Locations) -> int | None:
    """The pid of another txtool running on this journal now, if any."""
    from txengine import live_holder

    return live_holder(loc.journal_dir)


def _running_note() -> int | None:
    """Say so when another txtool is running: its operation shows as incomplete until done."""
    pid = _live_holder(_locations())
    if pid is not None:
        print(
            f"txtool: note: another txtool (pid {pid}) is running; an operation it has in"
            " progress shows as incomplete until it ends",
            file=sys.stderr,
        )
    return pid


def _op_json(view: OperationView) -> dict[str, Any]:
    from .fixes import fix

    audit = view.audit()
    return {
        "op": view.id,
        "kind": view.kind,
        "tool": view.subject,
        "state": view.state,
        "where": audit.where,
        "error": view.error,
        "actions": list(audit.actions),
        "fix": fix(view) if audit.actions else None,
        "started": view.started,
        "updated": view.updated,
    }


def cmd_list(args: argparse.Namespace) -> int:
    from .fixes import fix
    from .tools import incomplete_by_tool, project

    state = _state()
    tools = project(state)
    pending = {k: v for k, v in incomplete_by_tool(state).items() if k not in tools}
    if state.incomplete():
        _running_note()
    data = [
        t.to_json() | {"incomplete": t.incomplete and _op_json(t.incomplete)}
        for t in tools.values()
    ]
    data += [{"name": k, "version": None, "incomplete": _op_json(v)} for k, v in pending.items()]

    def text() -> None:
        if not data:
            print("no tools installed")
        for t in tools.values():
            print(f"{t.name} {t.version}  ({', '.join(sorted(t.shims))})")
            if t.incomplete is not None:
                print(
                    f"  INCOMPLETE {t.incomplete.kind}: {t.incomplete.audit().where}; fix: {fix(t.incomplete)}"
                )
        for name, view in pending.items():
            print(f"{name} (not installed)")
            print(f"  INCOMPLETE {view.kind}: {view.audit().where}; fix: {fix(view)}")

    _emit(args, data, text)
    return INCOMPLETE if any(t.incomplete for t in tools.values()) or pending else OK


def cmd_status(args: argparse.Namespace) -> int:
    from .fixes import fix

    state = _state()
    incomplete = state.incomplete()
    cleanups = state.uncleaned()
    data: dict[str, Any] = {
        "incomplete": [_op_json(v) for v in incomplete],
        "cleanup_pending": [_op_json(v) for v in cleanups],
    }
    running = _running_note() if incomplete else None
    if running is not None:
        data["running_pid"] = running

    def text() -> None:
        if not incomplete and not cleanups:
            print("all operations complete")
        for v in incomplete:
            print(f"INCOMPLETE {v.kind} {v.subject} (op {v.id}): {v.audit().where}")
            if v.error:
                print(f"  cause: {v.error}")
            print(f"  fix: {fix(v)}")
        for v in cleanups:
            print(
                f"committed {v.kind} {v.subject} (op {v.id}): clean-up pending (runs with the next command)"
            )

    _emit(args, data, text)
    return INCOMPLETE if incomplete else OK


def cmd_history(args: argparse.Namespace) -> int:
    import time

    from txengine import iter_history

    name = None
    if args.name is not None:  # an empty name is bad input, not "every tool"
        from .names import tool_name

        name = tool_name(args.name)
    journal_dir = _locations().journal_dir
    # Streamed: the history segment is read one operation at a time (text output).
    found = iter_history(journal_dir, warn=_warn) if journal_dir.exists() else iter(())
    views = (v for v in found if name is None or v.subject == name)
    data = [_op_json(v) for v in views] if getattr(args, "json", False) else None

    def text() -> None:
        for v in views:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.started))
            extra = f" ({v.error})" if v.error else ""
            print(f"{when}  {v.id}  {v.kind:<9} {v.subject:<20} {v.audit().where}{extra}")

    _emit(args, data, text)
    return OK


def cmd_journal(args: argparse.Namespace) -> int:
    loc = _locations()
    if args.journal_command == "compact":
        journal = _open_journal(loc)
        try:
            n = journal.compact()
        finally:
            journal.close()
        print(f"compacted {n} closed operations into the snapshot")
        return OK
    state = _state()  # raises JournalCorrupt / JournalTooNew with the offset
    if args.journal_command == "verify":
        ops = list(state)
        print(f"journal OK: {len(ops)} operations, last record {state.last_seq}")
        return OK
    from txengine import dump

    for name, raw in dump(loc.journal_dir):
        payload = raw.decode("utf-8", "replace")
        print(payload if args.json else f"{name}: {payload}")
    return OK


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    loc = _locations()
    problems = verify(loc, _state())
    _emit(
        args,
        {"ok": not problems, "problems": problems},
        lambda: print("\n".join(problems) if problems else "disk matches the journal"),
    )
    return FAILED if problems else OK


# -- changing ------------------------------------------------------------------------------


def _open_journal(loc: Locations) -> Journal:
    from txengine import Journal

    from .tools import current

    timeout = float(os.environ.get("TXTOOL_LOCK_TIMEOUT", "60"))

    def waiting(pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        print(f"txtool: waiting for another txtool ({who}) to finish...", file=sys.stderr)

    return Journal.open(
        loc.journal_dir, timeout=timeout, on_wait=waiting, warn=_warn, retain=current
    )


def _options(args: argparse.Namespace) -> Any:
    from .backend import IndexOptions
    from .installer import Options

    index = None
    if args.index_url or args.find_links or args.no_index:
        links = tuple(_absolute(x) for x in args.find_links)
        index = IndexOptions(args.index_url, links, args.no_index)
    return Options(args.python, index, args.backend, getattr(args, "force", False))


def _absolute(location: str) -> str:
    # Recorded for upgrade and resume, which may run from another directory.
    return location if "://" in location else os.path.abspath(location)


def _mutating(args: argparse.Namespace, body: Callable[[Installer, Reporter], Any]) -> int:
    """Lock the journal, finish pending clean-ups, run ``body`` with Ctrl-C as cancellation."""
    import anyio

    from txengine import Interrupted, interruptible

    from .installer import Installer
    from .output import Reporter

    loc = _locations()
    live = sys.stderr.isatty() and not args.json and os.environ.get("TERM") != "dumb"
    journal = _open_journal(loc)
    try:
        with Reporter(live) as reporter:
            installer = Installer.create(loc, journal, observer=reporter)

            async def main() -> int:
                await installer.engine.finish_cleanups()
                return int(await body(installer, reporter))

            try:
                return anyio.run(interruptible, main)
            except Interrupted as e:
                if journal.state.incomplete():
                    return _fail(INCOMPLETE, f"{e}; see `txtool status` to resume or revert")
                return _fail(INTERRUPTED, f"{e}; nothing was changed")
    finally:
        if journal.closed_in_log() >= 100:
            journal.compact()
        journal.close()


def _print_outcome(o: Outcome, loc: Locations) -> None:
    if o.action == "installed":
        print(f"installed {o.tool} {o.version}: {', '.join(sorted(o.shims))}")
    elif o.action == "upgraded":
        print(f"upgraded {o.tool} {o.old_version} -> {o.version}")
    elif o.action == "up-to-date":
        print(f"{o.tool} is up to date ({o.version})")
    elif o.action == "already-installed":
        print(f"{o.tool} {o.version} is already installed (upgrade it, or --force to reinstall)")
    elif o.action == "uninstalled":
        print(f"uninstalled {o.tool} {o.old_version}")
    elif o.action == "resumed":
        state = f" ({o.version})" if o.version else " (uninstalled)"
        print(f"{o.tool}: the interrupted operation is finished{state}")


def _dry_run(args: argparse.Namespace, plans: list[Any]) -> int:
    def text() -> None:
        for plan in plans:
            if not hasattr(plan, "steps"):
                _print_outcome(plan, _locations())
                continue
            print(f"{plan.kind} {plan.tool}:")
            for i, step in enumerate(plan.steps, 1):
                print(f"  {i}. {step.describe()}")

    _emit(args, [p.to_json() for p in plans], text)
    return OK


def _planner(dry_run: bool) -> Any:
    """A planner over the unlocked journal: for --dry-run, and for refusing bad input before
    taking the lock. While another txtool runs, its operation in progress is not refused
    here: the planner under the lock decides once that txtool is done."""
    from .installer import Planner

    loc = _locations()
    return Planner(loc, _state(), locked=dry_run or _live_holder(loc) is None)


def _one_by_one(
    args: argparse.Namespace, items: Sequence[str], plan_for: Callable[..., Any]
) -> int:
    """Under the lock, plan and run each item in turn; the first failure stops the rest."""
    from .installer import Outcome

    loc = _locations()

    async def body(installer: Installer, reporter: Reporter) -> int:
        results = []
        for item in items:
            plan = plan_for(installer.planner(), item)
            outcome = plan if isinstance(plan, Outcome) else await installer.run(plan)
            results.append(outcome)
            if not args.json:
                _print_outcome(outcome, loc)
        _emit(args, [r.to_json() for r in results], lambda: None)
        return OK

    return _mutating(args, body)


def cmd_install(args: argparse.Namespace) -> int:
    opts = _options(args)
    # Plan once against the unlocked journal: bad input fails here, before anything exists.
    planner = _planner(args.dry_run)
    plans = [planner.install(s, opts) for s in args.specs]
    if args.dry_run:
        return _dry_run(args, plans)
    code = _one_by_one(args, args.specs, lambda p, spec: p.install(spec, opts))
    loc = _locations()
    if code == OK and not args.json and not loc.bin_on_path():
        _warn(f"{loc.bin_dir} is not on PATH; add it to use the installed tools")
    return code


def cmd_uninstall(args: argparse.Namespace) -> int:
    planner = _planner(args.dry_run)
    plans = [planner.uninstall(n) for n in args.names]  # bad input fails before any change
    if args.dry_run:
        return _dry_run(args, plans)
    return _one_by_one(args, args.names, lambda p, name: p.uninstall(name))


def cmd_upgrade(args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        return _fail(USAGE, "name the tools to upgrade, or use --all")
    if args.names and args.all:
        return _fail(USAGE, "--all takes no names")
    if args.jobs < 1:
        return _fail(USAGE, "--jobs must be at least 1")
    opts = _options(args)
    planner = _planner(args.dry_run)
    if args.dry_run:
        names = sorted(planner.tools) if args.all else args.names
        return _dry_run(args, [planner.upgrade(n, opts) for n in names])
    for name in args.names:  # bad input fails before any change
        planner.check_upgradable(name)
    from .upgrade import upgrade_many

    loc = _locations()

    async def body(installer: Installer, reporter: Reporter) -> int:
        results, failures = await upgrade_many(
            installer, args.names, args.all, opts, args.jobs, reporter
        )
        if not args.json:
            for o in results:
                _print_outcome(o, loc)
        for message in failures.values():
            print(f"txtool: error: {message}", file=sys.stderr)
        data = [o.to_json() for o in results]
        data += [{"tool": t, "action": "failed", "error": m} for t, m in failures.items()]
        _emit(args, data, lambda: None)
        if not failures:
            return OK
        return INCOMPLETE if installer.engine.journal.state.incomplete() else FAILED

    return _mutating(args, body)


def cmd_resume(args: argparse.Namespace) -> int:
    from txengine import OperationError, describe_error

    if args.op and _state().get(args.op) is None:
        return _fail(USAGE, f"no operation {args.op!r} in the journal (see `txtool history`)")

    async def body(installer: Installer, reporter: Reporter) -> int:
        state = installer.engine.journal.state
        if args.op:
            view = state.get(args.op)
            if view is None:
                return _fail(
                    USAGE, f"no operation {args.op!r} in the journal (see `txtool history`)"
                )
            targets = [view]
        else:
            targets = state.incomplete()
        done, code = [], OK
        for view in targets:
            try:
                await installer.resume(view.id, revert=args.revert)
            except OperationError as e:
                code = max(code, _code_of(e))
                print(f"txtool: error: {view.subject}: {describe_error(e)}", file=sys.stderr)
            done.append(_op_json(view))
            if not args.json and (view.closed or view.committed):
                verb = "reverted" if view.state == "reverted" else "finished"
                print(f"{verb} {view.kind} {view.subject} (op {view.id})")
        if not targets and not args.json:
            print("nothing to resume")
        _emit(args, done, lambda: None)
        return code

    return _mutating(args, body)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "install": cmd_install,
    "upgrade": cmd_upgrade,
    "uninstall": cmd_uninstall,
    "list": cmd_list,
    "resume": cmd_resume,
    "status": cmd_status,
    "history": cmd_history,
    "journal": cmd_journal,
    "verify": cmd_verify,
}
