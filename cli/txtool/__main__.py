import gc
import os
import sys


def run() -> None:
    """The process entry point: signals stay deferred, then ignored, until the exit.

    Once ``main`` returns, everything durable is durable (each journal record was synced
    before its step went on, the journal and the lock files are closed, every child was
    waited for), so the process leaves without the interpreter's teardown: collecting the
    folded state and finalizing some 200 modules cost more than a small command itself.
    Only the output is still owed: it is flushed first (a closed pipe loses it, nothing else).

    ``txtool --version`` alone is answered before the command line's parser is even
    imported (as argparse would answer it): the version is all a script asking for it wants.

    The cyclic garbage collector is off for the process: a command is short and ends in
    ``os._exit``, and the collector's passes walk every module object and the folded journal
    state again and again for the few cycles a command leaves (measured: 2 ms of a ``list``,
    5 to 10 ms of CPU of an uninstall or an upgrade; see docs/performance.md). Reference
    counting still frees everything else; ``main`` called in-process keeps the caller's
    collector as it is.
    """
    gc.disable()
    if sys.argv[1:] == ["--version"]:
        from txtool import __version__

        sys.stdout.write(f"txtool {__version__}\n")  # buffered: a closed pipe fails the flush
        code = 0
    else:
        code = _main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _main() -> int:
    from txtool.cli import main

    try:
        return main(restore_signals=False)
    except SystemExit as e:  # argparse: --help, --version, a usage error
        if not isinstance(e.code, int):
            raise
        return e.code


if __name__ == "__main__":
    run()
