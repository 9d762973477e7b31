"""Names from the command line and from package metadata are data, never paths."""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

MAX_LEN = 200

# PEP 508 names: ASCII letters and digits, with . _ - inside.
_DIST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
# An executable name: no separators, not hidden, no control or shell-special characters.
_EXE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")


class BadName(ValueError):
    """A name or requirement that txtool refuses before touching anything."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def tool_name(text: str) -> str:
    """A tool name as given to upgrade/uninstall, canonicalized; raise BadName if unsafe."""
    if not text or len(text) > MAX_LEN or not _DIST.match(text):
        raise BadName(f"invalid tool name {_shown(text)}: use a package name like 'black'")
    return canonicalize_name(text)


def requirement(text: str) -> Requirement:
    """A requirement as given to install; direct references (``@ URL``) are refused."""
    if not text or len(text) > MAX_LEN or "\x00" in text:
        raise BadName(f"invalid requirement {_shown(text)}")
    try:
        req = Requirement(text)
    except InvalidRequirement as e:
        first = str(e).splitlines()[0]
        raise BadName(f"invalid requirement {_shown(text)}: {first}") from None
    if req.url:
        raise BadName(
            f"invalid requirement {_shown(text)}: direct URL references are not supported"
        )
    if req.marker is not None:
        raise BadName(f"invalid requirement {_shown(text)}: environment markers make no sense here")
    tool_name(req.name)
    return req


def executable_name(text: str) -> str:
    """An entry point name used as a file name in the bin dir; raise BadName if unsafe."""
    if not text or len(text) > MAX_LEN or text in (".", "..") or not _EXE.match(text):
        raise BadName(f"executable name {_shown(text)} is not a safe file name")
    return text
