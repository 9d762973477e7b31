"""Names from the command line and from package metadata are data, never paths.

A requirement may name where the tool comes from (a direct reference, ``name @ URL``): the
URL is checked for its shape here (a scheme uv and pip fetch, no password) and recorded as
the tool's source; whether it exists is for :mod:`txtool.sources` and the resolver to say.

``packaging`` is imported by the functions that parse a requirement or a version, not at the
top: ``packaging.requirements`` (with the markers, specifiers and ``packaging.tags`` it pulls
in) costs a command that parses none (uninstall, rollback, gc) a tenth of its time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from packaging.requirements import Requirement

MAX_LEN = 200
# A URL (or a path) is longer than a name: long checkouts and wheel names are common.
MAX_URL_LEN = 2000

# PEP 508 names: ASCII letters and digits, with . _ - inside.
_DIST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
# An executable name: no separators, not hidden, no control or shell-special characters.
_EXE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")
# uv's ``NAME@latest`` and ``NAME@VERSION`` (no spaces: ``name @ URL`` is PEP 508's).
_AT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?@(?P<what>[^\s/:@]+)$"
)

#: Schemes of a direct reference: local files, HTTP(S), and the VCS that uv and pip clone.
VCS = ("git", "hg", "svn", "bzr")
_SCHEMES = {"file", "http", "https"} | {
    f"{v}+{t}" for v in VCS for t in ("file", "http", "https", "ssh")
}
_SCHEMES |= {"git+git"}


_SEPARATORS = re.compile(r"[-_.]+")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Foo.Bar_baz`` -> ``foo-bar-baz``),
    exactly as ``packaging.utils.canonicalize_name`` spells it, without importing
    ``packaging.utils`` (it pulls in ``packaging.tags``: platform, sysconfig, logging)."""
    return _SEPARATORS.sub("-", name).lower()


class BadName(ValueError):
    """A name or requirement that txtool refuses before touching anything."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def tool_name(text: str) -> str:
    """A tool name as given to upgrade/uninstall, canonicalized; raise BadName if unsafe."""
    if not text or len(text) > MAX_LEN or not _DIST.match(text):
        raise BadName(f"invalid tool name {_shown(text)}: use a package name like 'black'")
    return canonical(text)


def is_latest(text: str) -> bool:
    """``NAME@latest``: the newest release, whatever the recorded spec pinned."""
    m = _AT.match(text)
    return m is not None and m.group("what") == "latest"


def _at_form(text: str) -> str:
    """``NAME@latest`` -> ``NAME``, ``NAME@VERSION`` -> ``NAME==VERSION`` (as uv spells them);
    anything else as it is."""
    m = _AT.match(text)
    if m is None:
        return text
    name, extras, what = m.group("name"), m.group("extras") or "", m.group("what")
    if what == "latest":
        return name + extras
    from packaging.version import InvalidVersion, Version

    try:
        Version(what)
    except InvalidVersion:
        raise BadName(
            f"invalid requirement {_shown(text)}: after @ comes 'latest' or a version"
        ) from None
    return f"{name}{extras}=={what}"


def check_url(url: str, what: str) -> str:
    """A direct reference's URL: a scheme uv and pip fetch, no password (it would be
    recorded and on a command line); raise BadName otherwise."""
    if len(url) > MAX_URL_LEN or any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise BadName(f"invalid source {_shown(what)}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise BadName(
            f"invalid source {_shown(what)}: use a path, a file://, http(s):// or git+https:// URL"
        )
    if parts.password is not None:
        shown = _shown(what.replace(f":{parts.password}@", ":****@"))
        raise BadName(
            f"invalid source {shown}: a password in the URL would be recorded; put it in ~/.netrc"
        )
    return url


def requirement(text: str) -> Requirement:
    """A requirement as given to install or upgrade: ``name``, ``name[extras]>=1``,
    ``name@latest``, ``name@1.0`` or a direct reference ``name @ URL``."""
    limit = MAX_URL_LEN if "@" in text else MAX_LEN
    if not text or len(text) > limit or "\x00" in text:
        raise BadName(f"invalid requirement {_shown(text)}")
    from packaging.requirements import InvalidRequirement

    try:
        req = parsed(_at_form(text))
    except InvalidRequirement as e:
        first = str(e).splitlines()[0]
        raise BadName(f"invalid requirement {_shown(text)}: {first}") from None
    if req.marker is not None:
        raise BadName(f"invalid requirement {_shown(text)}: environment markers make no sense here")
    if req.url:
        check_url(req.url, text)
    tool_name(req.name)
    return req


def parsed(text: str) -> Requirement:
    """``text`` as PEP 508 reads it, unchecked: for a requirement checked before (recorded in
    the journal, or the text of one :func:`requirement` returned)."""
    from packaging.requirements import Requirement

    return Requirement(text)


def executable_name(text: str) -> str:
    """An entry point name used as a file name in the bin dir; raise BadName if unsafe."""
    if not text or len(text) > MAX_LEN or text in (".", "..") or not _EXE.match(text):
        raise BadName(f"executable name {_shown(text)} is not a safe file name")
    return text
