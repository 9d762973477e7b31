"""Named failpoints: places where a test makes the process die or a file call fail.

Switched on by the environment variable ``TXENGINE_FAILPOINTS``, read once at import;
when it is unset :func:`hit` returns at its first line, so failpoints cost nothing in
normal runs. The value is a ``;``-separated list of rules::

    NAME[@PATH][#N]=ACTION

``NAME`` and ``PATH`` are shell-style globs over the failpoint's name and the path it
concerns (file calls pass their path). ``#N`` fires on the N-th matching hit only; without
it every matching hit fires. ``ACTION`` is one of:

``kill``           SIGKILL this process (nothing is flushed, no handler runs)
``error:ENAME``    raise ``OSError`` with that errno, e.g. ``error:ENOSPC``
``in-use``         raise the error Windows gives for a file held open by another process
``sleep:SECONDS``  block, to give a test a window for a signal
``fill``           fill the filesystem holding the hit's path (its free blocks, then its free
                   inodes) with ``.txengine-fill-*`` files at its mount point, then go on: the
                   writes that follow get a real ENOSPC (mount it with a small ``nr_inodes``);
                   ``fill:blocks`` leaves the inodes, so a new file is made and its write fails

``TXENGINE_FAILPOINT_TRACE=FILE`` appends one line per hit (``name<TAB>path``) to FILE, so a
harness can enumerate every point an operation passes and then crash at each in turn.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import fnmatch
import itertools
import os
import signal
import time
from collections.abc import Iterator

import msgspec

ENV = "TXENGINE_FAILPOINTS"
TRACE_ENV = "TXENGINE_FAILPOINT_TRACE"

#: Windows' ERROR_SHARING_VIOLATION (os error 32), the "file in use" of the peer's bug.
IN_USE_TEXT = "The process cannot access the file because it is being used by another process"


def in_use_error(path: str | os.PathLike[str] | None) -> PermissionError:
    err = PermissionError(errno_mod.EACCES, f"{IN_USE_TEXT} (os error 32)", path)
    return err


class Rule(msgspec.Struct):
    name: str
    path: str | None
    nth: int | None
    action: str
    hits: int = 0


def parse(spec: str) -> list[Rule]:
    """Parse a failpoint spec; raise ValueError naming the bad part."""
    rules = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        where, sep, action = part.partition("=")
        if not sep or not where:
            raise ValueError(f"failpoint rule {part!r}: expected NAME[@PATH][#N]=ACTION")
        nth: int | None = None
        if "#" in where:
            where, _, count = where.rpartition("#")
            nth = int(count)
        name, _, path = where.partition("@")
        _check_action(action)
        rules.append(Rule(name, path or None, nth, action))
    return rules


def _check_action(action: str) -> None:
    kind, _, arg = action.partition(":")
    if (kind in ("kill", "in-use", "fill") and not arg) or action == "fill:blocks":
        return
    if kind == "error" and isinstance(getattr(errno_mod, arg, None), int):
        return
    if kind == "sleep":
        float(arg)
        return
    raise ValueError(
        f"failpoint action {action!r}: expected kill, error:ENAME, in-use, sleep:S, fill or fill:blocks"
    )


_rules: list[Rule] = []
_trace: str | None = None
ACTIVE = False


def configure(spec: str | None, trace: str | None = None) -> None:
    """Replace the rules (tests in one process use this; child processes use the env)."""
    global _rules, _trace, ACTIVE
    _rules = parse(spec) if spec else []
    _trace = trace
    ACTIVE = bool(_rules or _trace)


@contextlib.contextmanager
def configured(spec: str | None, trace: str | None = None) -> Iterator[None]:
    """These rules for the duration of a ``with`` block; the previous ones come back after."""
    global _rules, _trace, ACTIVE
    saved = _rules, _trace, ACTIVE
    configure(spec, trace)
    try:
        yield
    finally:
        _rules, _trace, ACTIVE = saved


def hit(name: str, path: str | os.PathLike[str] | None = None) -> None:
    """Pass the failpoint ``name``: fire whatever rule matches it."""
    if not ACTIVE:
        return
    spath = os.fspath(path) if path is not None else ""
    if _trace:
        with open(_trace, "a", encoding="utf-8") as f:
            f.write(f"{name}\t{spath}\n")
    for rule in _rules:
        if not fnmatch.fnmatchcase(name, rule.name):
            continue
        if rule.path is not None and not fnmatch.fnmatchcase(spath, rule.path):
            continue
        rule.hits += 1
        if rule.nth is not None and rule.hits != rule.nth:
            continue
        _fire(rule.action, name, path)


def _fire(action: str, name: str, path: str | os.PathLike[str] | None) -> None:
    kind, _, arg = action.partition(":")
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "in-use":
        raise in_use_error(path)
    elif kind == "error":
        code = getattr(errno_mod, arg)
        raise OSError(code, f"{os.strerror(code)} (failpoint {name})", path)
    elif kind == "sleep":
        time.sleep(float(arg))
    elif kind == "fill":
        _fill(os.path.abspath(path if path is not None else "."), inodes=arg != "blocks")


def _fill(path: str, inodes: bool) -> None:
    top = path
    while not os.path.exists(top):
        top = os.path.dirname(top)
    dev = os.stat(top).st_dev
    while os.path.dirname(top) != top and os.stat(os.path.dirname(top)).st_dev == dev:
        top = os.path.dirname(top)
    filler = os.path.join(top, f".txengine-fill-{os.getpid()}")
    try:
        with open(filler, "ab", buffering=0) as f:
            while True:  # a short write, then ENOSPC, when the last block is gone
                f.write(bytes(1 << 20))
    except OSError as e:
        if e.errno != errno_mod.ENOSPC:
            raise
    try:
        for n in itertools.count() if inodes else ():
            os.close(os.open(f"{filler}.{n}", os.O_CREAT | os.O_WRONLY))
    except OSError as e:
        if e.errno != errno_mod.ENOSPC:
            raise


configure(os.environ.get(ENV), os.environ.get(TRACE_ENV))
