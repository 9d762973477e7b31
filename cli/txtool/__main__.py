import sys

from txtool.cli import main


def run() -> None:
    """The process entry point: signals stay deferred, then ignored, until the exit."""
    sys.exit(main(restore_signals=False))


if __name__ == "__main__":
    run()
