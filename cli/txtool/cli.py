"""The ``txtool`` command line. Modules are imported inside the commands that need them:
``--version`` and ``--help`` load neither the engine nor a progress library, and the
read-only commands (``list``, ``status``, ``history``) load the journal's reader but not the
installer, its backends or packaging (see docs/performance.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, cast

from . import __version__

if TYPE_CHECKING:
    from txengine import JournalState, OperationView

    from .installer import Options
    from .locations import Locations
    from .service import Report, Service

from .exitcodes import BUSY, FAILED, INCOMPLETE, INTERRUPTED, JOURNAL, OK, USAGE

__all__ = ["BUSY", "FAILED", "INCOMPLETE", "INTERRUPTED", "JOURNAL", "OK", "USAGE", "main"]


class _Parser(argparse.ArgumentParser):
    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for each option it adds (to check its metavar), and by
        # default each one asks shutil, which imports bz2, lzma and zlib, for the width.
        # (Every formatter class of argparse takes a width; typeshed's protocol names prog.)
        make = cast("type[argparse.HelpFormatter]", self.formatter_class)
        return make(prog=self.prog, width=_help_width())

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the fix is in the message or in --help.
        from .helptext import unknown_command

        message = unknown_command(self, message) or f"{message} (see `{self.prog} --help`)"
        self.exit(USAGE, f"txtool: error: {message}\n")


def _help_width() -> int:
    """The width argparse wraps help to: ``shutil.get_terminal_size().columns - 2``
    (``COLUMNS``, else the terminal of ``sys.__stdout__``, else 80), read from ``os``."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _RootParser(_Parser):
    def format_help(self) -> str:
        from .helptext import overview

        return overview(self)  # one screen; `txtool help` has the rest


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given ``command`` (the word the command line starts
    with), that command's alone. Building every command's options costs more than a
    read-only command's work (argparse makes a help formatter for each option and looks up
    translations for each parser), and one command parses the line: what the others would
    add is never read. ``--help``, ``txtool help`` and a mistyped command get them all."""
    p = _RootParser(
        prog="txtool",
        description="Install Python command-line tools, each in its own environment, "
        "transactionally: a partial install, upgrade or uninstall is never reported as success.",
    )
    p.add_argument("--version", action="version", version=f"txtool {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, json_, add) in _COMMAND_LINE.items():
        if command is None or command == name:
            add(_command(sub, name, help_, json_))
    return p


def _command(
    parent: Any, name: str, help_: str, json_: bool = True, *, group: str = ""
) -> argparse.ArgumentParser:
    """A command's parser, added to ``parent`` (the subparsers of the root or of a group)."""
    from .helptext import epilog

    sp: argparse.ArgumentParser = parent.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=epilog(f"{group} {name}".strip()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if json_:
        sp.add_argument("--json", action="store_true", help="machine-readable output")
    return sp


def _source_options(sp: argparse.ArgumentParser, dry_run: bool = True) -> None:
    sp.add_argument("--python", help="interpreter for the tool: a path or a version like 3.12")
    sp.add_argument("--index-url", help="base URL of the package index")
    sp.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR_OR_URL",
        help="also look for wheels here (repeatable)",
    )
    sp.add_argument("--no-index", action="store_true", help="use only --find-links")
    sp.add_argument("--backend", choices=["uv", "pip"], help="installer backend (default: uv)")
    if dry_run:
        _dry_run_option(sp)


def _dry_run_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")


def _install_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("specs", nargs="+", metavar="SPEC", help="a requirement: black, 'black>=24'")
    _source_options(sp)
    sp.add_argument("--force", action="store_true", help="replace files txtool does not own")
    sp.add_argument(
        "-e", "--editable", action="store_true", help="install a local project directory editable"
    )
    sp.add_argument(
        "--with", dest="plugins", action="append", metavar="PKG", help="a plugin (repeatable)"
    )
    sp.add_argument(
        "--with-executables-from",
        dest="apps_from",
        action="append",
        metavar="PKG",
        help="also expose the executables of this dependency or plugin (repeatable)",
    )
    sp.add_argument(
        "--include-deps",
        action="store_true",
        default=None,
        help="also expose the executables of every dependency",
    )


def _upgrade_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("names", nargs="*", metavar="NAME", help="tools, optionally 'black<25'")
    sp.add_argument("--all", action="store_true", help="upgrade every installed tool")
    sp.add_argument(
        "--jobs", type=int, default=4, metavar="N", help="tools upgraded at once with --all"
    )
    _source_options(sp)
    sp.add_argument("--force", action="store_true", help="replace files txtool does not own")


def _uninstall_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("names", nargs="*", metavar="NAME", help="installed tools")
    sp.add_argument("--all", action="store_true", help="uninstall every installed tool")
    _dry_run_option(sp)


def _list_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--outdated", action="store_true", help="only tools an upgrade would move, and to what"
    )


def _reinstall_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("names", nargs="*", metavar="NAME", help="installed tools")
    sp.add_argument("--all", action="store_true", help="reinstall every installed tool")
    _source_options(sp)


def _inject_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("tool", metavar="TOOL", help="an installed tool")
    sp.add_argument("specs", nargs="+", metavar="PKG", help="plugins: requirements to add")
    sp.add_argument(
        "--include-apps", action="store_true", help="also expose the plugins' executables"
    )
    _source_options(sp)


def _uninject_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("tool", metavar="TOOL", help="an installed tool")
    sp.add_argument("specs", nargs="+", metavar="PKG", help="injected plugins to remove")
    _dry_run_option(sp)


def _resume_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "op", nargs="?", metavar="OP", help="operation id (default: every incomplete one)"
    )
    sp.add_argument("--revert", action="store_true", help="roll back instead of forward")


def _no_args(sp: argparse.ArgumentParser) -> None:
    """A command without arguments of its own (``--json`` aside)."""


def _history_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("name", nargs="?", metavar="NAME", help="only this tool's operations")
    sp.add_argument(
        "--generations",
        action="store_true",
        help="list the generations of NAME that rollback can reach, with their disk size",
    )


def _journal_args(sp: argparse.ArgumentParser) -> None:
    jsub = sp.add_subparsers(dest="journal_command", metavar="ACTION", parser_class=_Parser)
    jsub.required = True
    js = _command(jsub, "show", "print the journal's records", False, group="journal")
    js.add_argument("--json", action="store_true", help="one JSON record per line")
    _command(
        jsub, "verify", "check every record's checksum and the lifecycle", False, group="journal"
    )
    _command(jsub, "compact", "fold closed operations into the snapshot", False, group="journal")


def _rollback_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("names", nargs="*", metavar="NAME", help="installed tools")
    sp.add_argument(
        "--to", metavar="VERSION|GENERATION", help="the kept generation (default: the previous)"
    )
    sp.add_argument("--all", action="store_true", help="undo the latest `upgrade --all`")
    _dry_run_option(sp)
    sp.add_argument("--force", action="store_true", help="replace files txtool does not own")


def _gc_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("names", nargs="*", metavar="NAME", help="tools (default: every one)")
    sp.add_argument(
        "--keep", type=int, metavar="K", help="generations to keep besides the current one"
    )
    _dry_run_option(sp)


def _demo_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--keep", action="store_true", help="keep the demo's home directory")


def _dir_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--bin", action="store_true", help="the bin dir instead")


def _ensurepath_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--shell",
        action="append",
        choices=["bash", "zsh", "fish"],
        help="only this shell (repeatable; default: yours and every one installed)",
    )


def _run_args(sp: argparse.ArgumentParser) -> None:
    sp.usage = "txtool run [options] TOOL [ARGS...]"
    sp.add_argument(
        "tool_command",
        nargs=argparse.REMAINDER,
        metavar="TOOL",
        help="an executable (its package too, unless --from) or a script.py, then its"
        " arguments, passed as they are (a `--` too)",
    )
    sp.add_argument("--from", dest="spec", metavar="SPEC", help="the package that provides TOOL")
    sp.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=[],
        metavar="PKG",
        help="also install PKG (repeatable)",
    )
    _source_options(sp, dry_run=False)  # where packages come from, as for install


def _cache_args(sp: argparse.ArgumentParser) -> None:
    csub = sp.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    _command(
        csub, "prune", "remove stale and least recently used run environments", False, group="cache"
    )
    _command(csub, "clean", "remove every run environment", False, group="cache")


def _completions_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "shell", choices=["bash", "zsh", "fish"], metavar="SHELL", help="bash, zsh or fish"
    )


def _help_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("topic", nargs="*", metavar="COMMAND|TOPIC", help="e.g. install, env")


#: Each command, in the order ``txtool --help`` lists them: its help line, whether it takes
#: ``--json``, and what adds its arguments.
_COMMAND_LINE: dict[str, tuple[str, bool, Callable[[argparse.ArgumentParser], None]]] = {
    "install": ("install tools, each in its own environment", True, _install_args),
    "upgrade": ("upgrade tools (resuming any incomplete operation first)", True, _upgrade_args),
    "uninstall": ("remove tools and their executables", True, _uninstall_args),
    "list": ("list installed tools", True, _list_args),
    "reinstall": (
        "rebuild tools from their recorded spec, extras, plugins and options",
        True,
        _reinstall_args,
    ),
    "inject": ("add plugins to a tool's environment", True, _inject_args),
    "uninject": ("remove plugins from a tool's environment", True, _uninject_args),
    "resume": ("finish (or with --revert, undo) incomplete operations", True, _resume_args),
    "status": ("show incomplete operations and how to fix them", True, _no_args),
    "history": ("show past operations", True, _history_args),
    "journal": ("inspect or maintain the journal", False, _journal_args),
    "verify": ("check the disk against the journal", True, _no_args),
    "rollback": ("switch tools back to a kept generation, offline", True, _rollback_args),
    "gc": ("remove generations past TXTOOL_KEEP_GENERATIONS", True, _gc_args),
    "demo": ("run the offline demo in a throwaway home", False, _demo_args),
    "dir": ("print where tools live (--bin: where their executables go)", False, _dir_args),
    "ensurepath": (
        "add the bin dir to PATH in your shells' startup files",
        False,
        _ensurepath_args,
    ),
    "run": ("run a tool (or a PEP 723 script) without installing it", False, _run_args),
    "cache": ("manage the environments `txtool run` keeps", False, _cache_args),
    "completions": (
        "print the shell completion script for bash, zsh or fish",
        False,
        _completions_args,
    ),
    "help": ("show a command's help, or a topic: env, exit-codes", False, _help_args),
}


def main(argv: Sequence[str] | None = None, *, restore_signals: bool = True) -> int:
    """Run one command; return its exit code.

    The process entry point (``python -m txtool``) passes ``restore_signals=False``: SIGINT
    and SIGTERM are then ignored once the command is done, through the interpreter's
    shutdown, so that a late Ctrl-C cannot kill a process whose work is complete. Callers
    that go on in the same process get their own handlers back."""
    from .streams import guarded_streams

    handled = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s]
    old = {s: signal.getsignal(s) for s in handled}
    # SIGTERM as Ctrl-C: before the service holds the lock either one stops the command
    # with nothing changed; from then on the service defers them (see service.py).
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread (an embedder's worker): its handlers stay
        old = {}
    try:
        with guarded_streams():
            return _main(argv)
    finally:
        for s, h in old.items():
            if restore_signals and h is not None:
                signal.signal(s, h)
            elif not restore_signals and s != getattr(signal, "SIGHUP", None):
                # Ignored, not deferred: the interpreter's shutdown resets handlers to
                # the defaults (a late Ctrl-C would kill the process) but keeps SIG_IGN.
                signal.signal(s, signal.SIG_IGN)


def _main(argv: Sequence[str] | None) -> int:
    if argv is None and "_ARGCOMPLETE" in os.environ:
        from .completions import complete

        complete(_parser())  # the shell's Tab (see completions.py): answered, then exit
    words = sys.argv[1:] if argv is None else list(argv)
    first = words[0] if words else None
    args = _parser(first if first in _COMMAND_LINE else None).parse_args(words)
    if args.command is None:
        _parser().print_help()
        return USAGE
    if args.command == "help":
        return _help(args.topic)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(keep=args.keep)
    try:
        return _guarded(args)
    except KeyboardInterrupt:
        return _failure(args, INTERRUPTED, "interrupted; nothing was changed")


def _help(words: list[str]) -> int:
    from .helptext import topic, unknown_topic

    text = topic(_parser(), words)
    if text is None:
        return _fail(USAGE, unknown_topic(_parser(), words))
    sys.stdout.write(text)
    return OK


def _guarded(args: argparse.Namespace) -> int:
    try:
        return int(COMMANDS[args.command](args))
    except Exception as e:
        # The error classes are imported only once there is an error to classify.
        from .errors import reported_code

        code = reported_code(e)
        if code is not None:
            return _failure(args, code, str(e))
        if isinstance(e, OSError):
            return _failure(args, *_os_error(e))
        raise


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _failure(args: argparse.Namespace, code: int, message: str) -> int:
    if getattr(args, "json", False):
        _print_json({"error": message, "exit_code": code}, indent=None)
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


def _fail(code: int, message: str) -> int:
    print(f"txtool: error: {message}", file=sys.stderr)
    return code


def _warn(message: str) -> None:
    print(f"txtool: warning: {message}", file=sys.stderr)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        _print_json(data)
    else:
        text()


def _print_json(data: Any, indent: int | None = 2) -> None:
    import json  # only for --json: the text output does without it

    json.dump(data, sys.stdout, indent=indent)
    sys.stdout.write("\n")


# -- reading -------------------------------------------------------------------------------


def _locations() -> Locations:
    from .locations import Locations

    return Locations.from_env()


def _service(args: argparse.Namespace | None = None) -> Service:
    from .service import Service

    json_ = bool(getattr(args, "json", False))
    live = sys.stderr.isatty() and not json_ and os.environ.get("TERM") != "dumb"
    from .locations import lock_timeout

    return Service(_locations(), notify=_note, live=live, lock_timeout=lock_timeout())


def _state() -> JournalState:
    from .reading import read_state

    return read_state(_locations(), _warn)


def _note(message: str) -> None:
    print(f"txtool: {message}", file=sys.stderr, flush=True)


def _op_json(view: OperationView, running: dict[str, int] | None = None) -> dict[str, Any]:
    from .fixes import fix

    audit = view.audit()
    pid = (running or {}).get(view.id)
    return {
        "op": view.id,
        "kind": view.kind,
        "tool": view.subject,
        "state": "running" if pid else view.state,
        "where": audit.where,
        "error": view.error,
        "actions": [] if pid else list(audit.actions),
        "fix": fix(view) if audit.actions and not pid else None,
        "pid": pid,
        "started": view.started,
        "updated": view.updated,
    }


def _pending_line(view: OperationView, running: dict[str, int]) -> str:
    from .fixes import fix
    from .messages import pending_line

    line = pending_line(view, running.get(view.id))
    return line if view.id in running else f"{line}; fix: {fix(view)}"


def cmd_list(args: argparse.Namespace) -> int:
    from .reading import running as running_now
    from .tools import incomplete_by_tool, project

    if args.outdated:
        return _list_outdated(args)
    state = _state()
    running = running_now(_locations(), state)
    tools = project(state)
    pending = {k: v for k, v in incomplete_by_tool(state).items() if k not in tools}
    data = [
        t.to_json() | {"incomplete": t.incomplete and _op_json(t.incomplete, running)}
        for t in tools.values()
    ]
    if getattr(args, "json", False):  # what each kept generation takes on disk
        from .tools import disk_size

        for entry in data:
            for g in entry.get("generations", ()):
                g["size"] = disk_size(g["environment"])
    data += [
        {"name": k, "version": None, "incomplete": _op_json(v, running)} for k, v in pending.items()
    ]

    def text() -> None:
        if not data:
            print("no tools installed")
        for t in tools.values():
            spec = f"  {t.requirement}" if t.requirement != t.name else ""
            plugins = f"  with {', '.join(t.plugins)}" if t.plugins else ""
            shims = ", ".join(sorted(t.shims))
            print(f"{t.name} {t.version}{spec}  ({shims}){plugins}  generation {t.number}")
            if t.incomplete is not None:
                print(f"  {_pending_line(t.incomplete, running)}")
        for name, view in pending.items():
            print(f"{name} (not installed)")
            print(f"  {_pending_line(view, running)}")

    _emit(args, data, text)
    stuck = [v for v in incomplete_by_tool(state).values() if v.id not in running]
    return INCOMPLETE if stuck else OK


def _list_outdated(args: argparse.Namespace) -> int:
    """Each tool an upgrade would move within its recorded spec, resolved without the lock
    and without writing anything."""
    from .preview import outdated
    from .tools import project

    state = _state()
    tools = project(state)
    changes = outdated(_locations(), state)
    moving = [c for c in changes if c.outdated]
    failed = [c for c in changes if c.error is not None]
    data = [tools[c.tool].to_json() | {"latest": c.new} for c in moving]
    data += [tools[c.tool].to_json() | {"latest": None, "error": c.error} for c in failed]

    def text() -> None:
        for c in moving:
            print(f"{c.tool} {c.old} -> {c.new}")
        if not moving and not failed:
            print("every tool is up to date")

    _emit(args, data, text)
    for c in failed:
        print(f"txtool: error: cannot check {c.tool}: {c.error}", file=sys.stderr)
    return FAILED if failed else OK


def cmd_status(args: argparse.Namespace) -> int:
    from .messages import how_to_fix, pending_line
    from .reading import running as running_now

    state = _state()
    running = running_now(_locations(), state)
    incomplete = [v for v in state.incomplete() if v.id not in running]
    in_progress = [v for v in state.incomplete() if v.id in running]
    cleanups = state.uncleaned()
    data: dict[str, Any] = {
        "incomplete": [_op_json(v) for v in incomplete],
        "cleanup_pending": [_op_json(v) for v in cleanups],
    }
    if in_progress:  # operations a live txtool is running now
        data["running"] = [_op_json(v, running) for v in in_progress]

    def text() -> None:
        if not incomplete and not cleanups and not in_progress:
            print("all operations complete")
        for v in in_progress:
            print(_pending_line(v, running))
        for v in incomplete:
            print(pending_line(v, None))
            if v.error:
                print(f"  cause: {v.error}")
            print(f"  fix: {how_to_fix(v)}")
        for v in cleanups:
            print(
                f"committed {v.kind} {v.subject} (op {v.id}): clean-up pending (runs with the next command)"
            )

    _emit(args, data, text)
    return INCOMPLETE if incomplete else OK


def cmd_history(args: argparse.Namespace) -> int:
    import time

    from txengine import iter_history

    from .tools import Projector, is_noop

    name = None
    if args.name is not None:  # an empty name is bad input, not "every tool"
        from .names import tool_name

        name = tool_name(args.name)
    if args.generations:
        if name is None:
            return _fail(USAGE, "--generations lists one tool's: name it")
        return _generations(args, name)
    journal_dir = _locations().journal_dir
    # Streamed: the history segment is read one operation at a time (text output).
    found = iter_history(journal_dir, warn=_warn) if journal_dir.exists() else iter(())
    projector = Projector()  # each operation's from -> to, folded as the stream goes

    def rows() -> Any:
        for v in found:
            before = projector.tools.get(v.subject)
            was = (before.version, before.number) if before else (None, None)
            projector.apply(v)
            if (name is not None and v.subject != name) or (v.committed and is_noop(v)):
                continue  # a no-op upgrade changed nothing: not part of the history
            after = projector.tools.get(v.subject)  # unchanged by one not committed
            now = (after.version, after.number) if after else (None, None)
            options = v.meta.get("options") or {}
            yield (
                v,
                {
                    "from": was[0],
                    "to": now[0],
                    "from_generation": was[1],
                    "generation": now[1],
                    "requirement": v.meta.get("requirement"),
                    "python": options.get("python") if isinstance(options, dict) else None,
                },
            )

    data = [_op_json(v) | row for v, row in rows()] if getattr(args, "json", False) else None

    def text() -> None:
        for v, row in rows():
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.started))
            extra = f" ({v.error})" if v.error else ""
            change = _change(row, v.committed)
            print(f"{when}  {v.id}  {v.kind:<9} {v.subject:<20} {change}{v.audit().where}{extra}")

    _emit(args, data, text)
    return OK


def _change(row: dict[str, Any], committed: bool) -> str:
    """``1.0 (gen 1) -> 2.0 (gen 2)  spec  python  ``, the parts an operation has; one that
    did not commit changed nothing: ``1.0 (gen 1) unchanged``."""

    def side(version: Any, number: Any) -> str:
        return "-" if version is None else f"{version} (gen {number})"

    if row["from"] is None and row["to"] is None:
        return ""
    before = side(row["from"], row["from_generation"])
    change = (
        f"{before} -> {side(row['to'], row['generation'])}" if committed else f"{before} unchanged"
    )
    parts = [change]
    parts += [str(row[k]) for k in ("requirement", "python") if row[k]]
    return "  ".join(parts) + "  "


def _generations(args: argparse.Namespace, name: str) -> int:
    """``history NAME --generations``: what rollback can reach, and the disk each takes."""
    import time

    from .tools import disk_size, project

    tool = project(_state()).get(name)
    if tool is None:
        return _fail(USAGE, f"{name} is not installed")
    data = [
        g.to_json() | {"current": g.number == tool.number, "size": disk_size(g.env)}
        for g in tool.generations
    ]

    def text() -> None:
        for g, row in zip(tool.generations, data, strict=True):
            mark = "*" if row["current"] else " "
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(g.started))
            size = f"{row['size'] / 1e6:.1f} MB" if os.path.isdir(g.env) else "missing"
            print(f"{mark} {g.number:>3}  {g.version:<12} {when}  {size:>9}  {g.env}")

    _emit(args, data, text)
    return OK


def cmd_journal(args: argparse.Namespace) -> int:
    loc = _locations()
    if args.journal_command == "compact":
        n = _service(args).compact()
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


def _options(args: argparse.Namespace) -> Options:
    from .backend import IndexOptions
    from .installer import Options

    index = None
    if args.index_url or args.find_links or args.no_index:
        links = tuple(_absolute(x) for x in args.find_links)
        index = IndexOptions(args.index_url, links, args.no_index)
    return Options(
        args.python,
        index,
        args.backend,
        getattr(args, "force", False),
        editable=getattr(args, "editable", False),
        plugins=_given(getattr(args, "plugins", None)),
        apps_from=_given(getattr(args, "apps_from", None)),
        include_deps=getattr(args, "include_deps", None),
    )


def _given(values: list[str] | None) -> tuple[str, ...] | None:
    """A repeatable option: None when it was not given at all (keep what is recorded)."""
    return None if values is None else tuple(values)


def _absolute(location: str) -> str:
    # Recorded for upgrade and resume, which may run from another directory.
    return location if "://" in location else os.path.abspath(location)


def _render(args: argparse.Namespace, report: Report) -> int:
    """Print a report: one line per item (stdout for what was done, stderr for the rest),
    or exactly one JSON document; then the warnings. Return the report's exit code."""
    from .output import late_signal_note, outcome_line

    if args.json:
        _print_json([i.to_json() for i in report.items])
    for item in report.items:
        for note in item.notes:
            if note.startswith("warning: "):
                _warn(note.removeprefix("warning: "))
        if item.status == "done" and item.outcome is not None:
            if not args.json:
                print(outcome_line(item.outcome), flush=True)
        elif item.error:
            print(f"txtool: error: {item.error}", file=sys.stderr)
    for warning in report.warnings:
        _warn(warning)
    if report.late_signal is not None:
        _note(f"note: {late_signal_note(report.late_signal)}")
    return report.code


def _dry_run(args: argparse.Namespace, plans: list[Any]) -> int:
    from .output import outcome_line
    from .preview import changes

    # from -> to for every tool: each plan resolved as its run would, nothing journaled.
    found = iter(changes([p for p in plans if hasattr(p, "steps")]))
    shown = [(p, next(found) if hasattr(p, "steps") else None) for p in plans]

    def text() -> None:
        for plan, change in shown:
            if change is None:
                print(outcome_line(plan))
                continue
            print(change.text())
            for i, step in enumerate(plan.steps, 1):
                print(f"  {i}. {step.describe()}")

    _emit(args, [p.to_json() | (c.to_json() if c else {}) for p, c in shown], text)
    return OK


def cmd_install(args: argparse.Namespace) -> int:
    from .sources import Probe, name_all

    opts = _options(args)
    # A path or a URL becomes `name @ URL`: the tool's name, from its metadata, is known
    # before anything is planned or locked.
    probe = Probe(opts.python, opts.index, opts.backend)
    args.specs = name_all(args.specs, probe, editable=opts.editable)
    service = _service(args)
    # Plan once against the unlocked journal: bad input fails here, before anything exists.
    planner = service.planner()
    plans = [planner.install(s, opts) for s in args.specs]
    if args.dry_run:
        return _dry_run(args, plans)
    report = service.install(args.specs, opts)
    code = _render(args, report)
    _path_warnings(args, report)
    return code


def _path_warnings(args: argparse.Namespace, report: Report) -> None:
    """What PATH will run of what was just installed: nothing (the bin dir is not on it),
    or another file of the same name earlier on it."""
    from . import messages
    from .shell import shadowed

    loc = _locations()
    placed = {n for i in report.items if i.outcome and i.status == "done" for n in i.outcome.shims}
    if args.json or not placed:
        return
    if not loc.bin_on_path():
        _warn(messages.not_on_path(loc.bin_dir))
    for name, other in sorted(shadowed(loc.bin_dir, placed, os.environ.get("PATH", "")).items()):
        _warn(messages.shadowed(name, other, loc.bin_dir / name))


def cmd_uninstall(args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        return _fail(USAGE, "name the tools to uninstall, or use --all")
    if args.names and args.all:
        return _fail(USAGE, "--all takes no names")
    service = _service(args)
    planner = service.planner()
    names = sorted(planner.tools) if args.all else args.names
    plans = [planner.uninstall(n) for n in names]  # bad input fails before any change
    if args.dry_run:
        return _dry_run(args, plans)
    report = service.uninstall(args.names, everything=args.all)
    if args.all and not report.items and not args.json:
        print("no tools installed")
    return _render(args, report)


def cmd_upgrade(args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        return _fail(USAGE, "name the tools to upgrade, or use --all")
    if args.names and args.all:
        return _fail(USAGE, "--all takes no names")
    if args.jobs < 1:
        return _fail(USAGE, "--jobs must be at least 1")
    opts = _options(args)
    service = _service(args)
    planner = service.planner()
    if args.dry_run:
        names = sorted(planner.tools) if args.all else args.names
        return _dry_run(args, [planner.upgrade(n, opts) for n in names])
    for name in args.names:  # bad input fails before any change
        planner.check_upgradable(name)
    report = service.upgrade(args.names, opts, everything=args.all, jobs=args.jobs)
    code = _render(args, report)
    _path_warnings(args, report)
    return code


def _run_cache() -> Any:
    from .locations import cache_dir
    from .run import Cache

    return Cache(cache_dir(), notify=_note)


def cmd_run(args: argparse.Namespace) -> int:
    from .backend import BackendError, IndexOptions
    from .run import argv, execute, request

    if not args.tool_command:
        return _fail(USAGE, "name the tool (or script.py) to run")
    tool, *tool_args = args.tool_command
    opts = _options(args)
    req = request(
        tool,
        spec=args.spec,
        with_=args.with_,
        python=opts.python,
        index=opts.index or IndexOptions(),
        backend=opts.backend,
    )
    try:
        env = _run_cache().environment(req)
    except BackendError as e:  # nothing is left of the environment it was building
        return _fail(FAILED, str(e))
    return execute(argv(req, env, tool_args))


def cmd_cache(args: argparse.Namespace) -> int:
    from .run import cache_usage

    cache = _run_cache()
    print(cache_usage(cache.prune(everything=args.cache_command == "clean")))
    return OK


def cmd_completions(args: argparse.Namespace) -> int:
    from .completions import script

    sys.stdout.write(script(args.shell))
    return OK


def cmd_dir(args: argparse.Namespace) -> int:
    loc = _locations()
    print(loc.bin_dir if args.bin else loc.tools_dir)
    return OK


def cmd_ensurepath(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import shell

    loc = _locations()
    if shell.windows() and not args.shell:
        edits = [shell.ensure_user_path(shell.RegistryUserPath(), loc.bin_dir)]
    else:
        home = Path.home()
        shells = args.shell or shell.default_shells(os.environ, home)
        if not shells:
            return _fail(USAGE, "no bash, zsh or fish found: name one with --shell")
        try:
            edits = shell.ensure_shells(loc.bin_dir, shells, home, os.environ)
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            return _fail(FAILED, f"cannot update{where}: {e.strerror or e} (re-run when fixed)")
    for edit in edits:
        verb = "added" if edit.added else "already has"
        print(f"{edit.where}: {verb} {loc.bin_dir} on PATH")
    if any(e.added for e in edits):
        print("open a new shell (or log in again) to use it")
    return OK


def cmd_reinstall(args: argparse.Namespace) -> int:
    if bool(args.names) == bool(args.all):
        return _fail(USAGE, "name the tools to reinstall, or use --all (not both)")
    opts = _options(args)
    service = _service(args)
    planner = service.planner()
    names = sorted(planner.tools) if args.all else args.names
    plans = [planner.reinstall(n, opts) for n in names]  # bad input fails before any change
    if args.dry_run:
        return _dry_run(args, plans)
    return _render(args, service.reinstall(args.names, opts, everything=args.all))


def cmd_inject(args: argparse.Namespace) -> int:
    opts = _options(args)
    service = _service(args)
    plan = service.planner().inject(args.tool, args.specs, opts, args.include_apps)
    if args.dry_run:
        return _dry_run(args, [plan])
    return _render(args, service.inject(args.tool, args.specs, opts, args.include_apps))


def cmd_uninject(args: argparse.Namespace) -> int:
    from .installer import Options

    service = _service(args)
    plan = service.planner().uninject(args.tool, args.specs, Options())
    if args.dry_run:
        return _dry_run(args, [plan])
    return _render(args, service.uninject(args.tool, args.specs, Options()))


def cmd_resume(args: argparse.Namespace) -> int:
    service = _service(args)
    if args.op and service.state().get(args.op) is None:
        return _fail(USAGE, f"no operation {args.op!r} in the journal (see `txtool history`)")
    report = service.resume(args.op, revert=args.revert)
    if not report.items and not args.json:
        print("nothing to resume")
    return _render(args, report)


def cmd_rollback(args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        return _fail(USAGE, "name the tools to roll back, or use --all")
    if args.all and (args.names or args.to):
        return _fail(USAGE, "--all takes no names and no --to")
    if args.to is not None and len(args.names) > 1:
        return _fail(USAGE, "--to takes one tool")
    service = _service(args)
    planner = service.planner()
    names = planner.batch_tools() if args.all else args.names
    plans = [planner.rollback(n, args.to, force=args.force) for n in names]  # bad input: here
    if args.dry_run:
        return _dry_run(args, plans)
    report = service.rollback(args.names, args.to, everything=args.all, force=args.force)
    return _render(args, report)


def cmd_gc(args: argparse.Namespace) -> int:
    if args.keep is not None and args.keep < 0:
        return _fail(USAGE, "--keep must be 0 or more")
    service = _service(args)
    planner = service.planner()
    plans = [planner.gc(n, args.keep) for n in args.names or sorted(planner.tools)]
    if args.dry_run:
        return _dry_run(args, plans)
    report = service.gc(args.names, args.keep)
    if not report.items and not args.json:
        print("no tools installed")
    return _render(args, report)


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
    "reinstall": cmd_reinstall,
    "inject": cmd_inject,
    "uninject": cmd_uninject,
    "rollback": cmd_rollback,
    "gc": cmd_gc,
    "dir": cmd_dir,
    "completions": cmd_completions,
    "run": cmd_run,
    "cache": cmd_cache,
    "ensurepath": cmd_ensurepath,
}
