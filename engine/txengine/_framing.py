"""The line format shared by every journal file: ``CRC32HEX SP JSON LF``, checked line by line.

The checksum covers the JSON, so each line is trusted on its own. A file is read whole
(:func:`scan`) or, for the history segment, one line at a time (:func:`check_line`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec

from ._errors import JournalCorrupt, JournalTooNew, JournalUnreadable
from ._events import FORMAT_VERSION, Header, Line

LOG_NAME = "journal.log"
SNAPSHOT_NAME = "journal.snapshot"
HISTORY_NAME = "journal.history"

Warn = Callable[[str], None]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Line).decode


class _Versioned(msgspec.Struct):
    v: int = 0


_decode_version = msgspec.json.Decoder(_Versioned).decode


def frame(entry: msgspec.Struct) -> bytes:
    """One journal line: checksum, space, JSON, newline."""
    payload = _encode(entry)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def check_line(line: bytes) -> bytes | None:
    """The JSON payload of a framed line (without its newline), or None when it is bad."""
    if len(line) < 10 or line[8] != 0x20:
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    payload = line[9:]
    return payload if zlib.crc32(payload) == crc else None


def decode_line(path: Path, payload: bytes, offset: int) -> Line:
    """Decode one checked payload; a newer format or an undecodable record raises."""
    try:
        entry = _decode(payload)
    except msgspec.DecodeError as e:
        refuse_newer(path, payload)
        raise JournalCorrupt(path, offset, f"undecodable record ({e})") from None
    if entry.v > FORMAT_VERSION:
        raise JournalTooNew(path, entry.v, FORMAT_VERSION)
    return entry


def scan(path: Path, data: bytes, *, allow_torn_tail: bool) -> tuple[list[Line], int]:
    """Decode every line of ``data``; return the entries and the length of the valid prefix.

    Lines that fail their check with no valid line after them are a torn tail (a crash
    mid-append): they end the scan when ``allow_torn_tail``. A failing line followed by a
    valid one is corruption, and so is anything from a newer format: both raise.
    """
    # The hot loop of replay: the frame check of check_line and the decode of decode_line,
    # inline (a call per line saved); byte offsets are worked out only when a line is bad.
    # (Measured: one decode of all payloads as a JSON array is slower than this loop.)
    entries: list[Line] = []
    keep, decode, crc32, newest = entries.append, _decode, zlib.crc32, FORMAT_VERSION
    lines = data.split(b"\n")
    tail = lines.pop()  # the piece after the final newline: empty unless torn
    for i, line in enumerate(lines):
        payload = line[9:]
        try:
            good = len(line) > 9 and line[8] == 0x20 and int(line[:8], 16) == crc32(payload)
        except ValueError:
            good = False
        if not good:
            return _torn(path, data, offset_of(data, i), "checksum mismatch", allow_torn_tail)
        try:
            entry = decode(payload)
        except msgspec.DecodeError:
            decode_line(path, payload, offset_of(data, i))  # raises, naming the cause
            raise
        if entry.v > newest:
            raise JournalTooNew(path, entry.v, newest)
        keep(entry)
    end = len(data) - len(tail)
    if tail:
        _refuse_unless_torn(path, data, end, "incomplete last line", allow_torn_tail)
    return entries, end


def refuse_newer(path: Path, payload: bytes) -> None:
    """Raise JournalTooNew when an undecodable ``payload`` claims a newer format."""
    try:
        version = _decode_version(payload).v
    except msgspec.DecodeError:
        return
    if version > FORMAT_VERSION:
        raise JournalTooNew(path, version, FORMAT_VERSION)


def _torn(path: Path, data: bytes, pos: int, reason: str, allowed: bool) -> tuple[list[Line], int]:
    """The entries before a bad line at ``pos`` that must be a torn tail, and ``pos``."""
    _refuse_unless_torn(path, data, pos, reason, allowed)
    entries, _ = scan(path, data[:pos], allow_torn_tail=False)
    return entries, pos


def _refuse_unless_torn(path: Path, data: bytes, pos: int, reason: str, allowed: bool) -> None:
    """Raise JournalCorrupt unless tearing is allowed and no valid line follows ``pos``."""
    if not allowed:
        raise JournalCorrupt(path, pos, reason)
    for line in data[pos:].split(b"\n")[1:-1]:
        if check_line(line) is not None:
            raise JournalCorrupt(path, pos, reason)


def read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:  # permission denied, a directory in its place, an I/O error
        raise JournalUnreadable(path, e.strerror or str(e)) from None


def header(path: Path, entries: list[Line], kind: str) -> Header:
    if not entries or not isinstance(entries[0], Header) or entries[0].kind != kind:
        raise JournalCorrupt(path, 0, f"missing {kind} header")
    return entries[0]


def offset_of(data: bytes, line_index: int) -> int:
    """Byte offset of line ``line_index`` in ``data`` (for naming a bad line)."""
    pos = 0
    for _ in range(line_index):
        pos = data.index(b"\n", pos) + 1
    return pos
