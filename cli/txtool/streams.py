"""Output that cannot change what an operation does: a closed pipe (``| head``), a closed
terminal or a full disk under a redirect make writes fail; the operation carries on, and
what could not be written is dropped."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import TextIO, cast


class _Guarded(io.TextIOBase):
    """A text stream whose write errors are swallowed once and for all."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self.lost = False

    def write(self, s: str) -> int:
        if not self.lost:
            try:
                return self._inner.write(s)
            except OSError:
                self._lose()
        return len(s)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._inner.flush()
            except OSError:
                self._lose()

    def isatty(self) -> bool:
        try:
            return not self.lost and self._inner.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding

    def _lose(self) -> None:
        self.lost = True
        # Point the descriptor at /dev/null, so that the interpreter's last flush of the
        # buffered rest succeeds instead of printing "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._inner.fileno())
            os.close(null)


@contextlib.contextmanager
def guarded_streams() -> Iterator[None]:
    """Swap ``sys.stdout`` and ``sys.stderr`` for guarded ones for the duration."""
    old = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _Guarded(old[0]))
    sys.stderr = cast(TextIO, _Guarded(old[1]))
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = old
