"""Where a tool comes from: an index, a local project directory, a wheel or sdist file, a
direct URL, or a VCS repository, and whether it is installed editable.

What the user gave becomes a requirement that names the tool (``name @ URL``): a path is
made an absolute ``file://`` URL, and the name is read from the wheel's file name or asked
of the resolver (never built by hand). The :class:`Source` is recorded with the operation, so that
upgrade, reinstall and resume go back to the same place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import unquote, urlsplit

import msgspec

from . import backend as be
from . import names
from .backend.pins import pin_name
from .errors import ResolveFailed, UsageError
from .names import canonical

if TYPE_CHECKING:
    from packaging.requirements import Requirement

SourceKind = Literal["index", "directory", "wheel", "sdist", "url", "vcs"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)

_SDIST = (".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")
_PROJECT_FILES = ("pyproject.toml", "setup.py")
# A bare URL (no name in front): the resolver or the wheel's file name names it.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class Source(msgspec.Struct, frozen=True):
    """Where the tool is installed from. ``location``: the absolute path of a local source,
    else the URL (None for an index: the index options say which)."""

    kind: SourceKind = "index"
    location: str | None = None
    editable: bool = False

    @property
    def local(self) -> bool:
        return self.kind in ("directory", "wheel", "sdist")

    def to_dict(self) -> dict[str, Any]:
        """What is journaled (in the operation's options) and shown by ``list --json``."""
        return {"kind": self.kind, "location": self.location, "editable": self.editable}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Source:
        """A recorded source; a journal older than sources (or a tampered one) reads as the
        index, which a recorded ``name @ URL`` requirement still overrides."""
        if not d or d.get("kind") not in SOURCE_KINDS:
            return cls()
        kind: SourceKind = d["kind"]
        location = d.get("location")
        return cls(kind, location if isinstance(location, str) else None, d.get("editable") is True)


def _kind_of_path(path: str) -> SourceKind:
    if path.endswith(".whl"):
        return "wheel"
    if path.endswith(_SDIST):
        return "sdist"
    return "directory"


def file_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    return unquote(urlsplit(url).path)


def of(req: Requirement) -> Source:
    """The source a (checked) requirement names."""
    if not req.url:
        return Source()
    scheme = urlsplit(req.url).scheme.lower()
    if "+" in scheme:
        return Source("vcs", req.url)
    if scheme == "file":
        path = file_path(req.url)
        return Source(_kind_of_path(path), path)
    return Source("url", req.url)


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith((".", "/", "~"))
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.endswith((".whl", *_SDIST))
    ) and "://" not in text


def _check_local(path: str, shown: str) -> None:
    """A local source must be there and be a project, a wheel or an sdist: bad input."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"invalid source {shown!r}: no such file or directory")
    if p.is_dir():
        if not any((p / f).is_file() for f in _PROJECT_FILES):
            raise UsageError(
                f"invalid source {shown!r}: {path} is not a Python project "
                "(no pyproject.toml or setup.py)"
            )
    elif _kind_of_path(path) == "directory":
        raise UsageError(f"invalid source {shown!r}: {path} is not a wheel or an sdist")


def _wheel_name(url: str) -> str | None:
    filename = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    if not filename.endswith(".whl"):
        return None
    # Here, not at the top: packaging.utils imports packaging.tags (platform, sysconfig,
    # logging), which only a wheel's file name needs.
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        return str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename as e:
        raise UsageError(f"invalid source {filename!r}: {e}") from None


class Probe(msgspec.Struct, frozen=True):
    """What the resolver needs to name an unnamed source: the command's own choices."""

    python: str | None = None
    index: be.IndexOptions | None = None
    backend: str | None = None


def named(text: str, probe: Probe, *, editable: bool = False) -> str:
    """The requirement for what the user typed, naming the tool: ``black>=24`` as it is,
    ``./proj`` as ``proj @ file:///abs/proj``. Raises UsageError for bad input (exit 2),
    ResolveFailed when the resolver cannot read the source (exit 1)."""
    url: str | None = None
    extras = ""
    if _looks_like_path(text):
        if "\x00" in text or len(text) > names.MAX_URL_LEN:
            raise UsageError(f"invalid source {text[:60]!r}")
        path = os.path.abspath(os.path.expanduser(text))
        _check_local(path, text)
        url, name = Path(path).as_uri(), None
    elif _URL.match(text):
        url = names.check_url(text.strip(), text)
        name = None
    else:
        req = names.requirement(text)
        if not req.url:
            if editable:
                raise UsageError(f"--editable needs a local project directory, not {text!r}")
            return text
        url, name = req.url, req.name
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    if urlsplit(url).scheme == "file":
        _check_local(file_path(url), text)
    if editable and of(names.parsed(f"x @ {url}")).kind != "directory":
        raise UsageError(f"--editable needs a local project directory, not {text!r}")
    name = name or _wheel_name(url) or _ask_resolver(url, probe)
    requirement = f"{canonical(name)}{extras} @ {url}"
    names.requirement(requirement)  # the name the metadata gave is checked as a typed one
    return requirement


def _ask_resolver(url: str, probe: Probe) -> str:
    """The project's name, from its metadata as the resolver reads it (it builds a directory's
    or an sdist's metadata, clones a repository)."""
    import anyio

    try:
        python = be.find_python(probe.python)
        backend = be.get_backend(probe.backend)
    except (ValueError, be.BackendError) as e:
        raise UsageError(str(e)) from None

    async def ask() -> list[str]:
        index = probe.index or be.IndexOptions()
        return await backend.resolve(url, python, index, deps=False)

    try:
        pins = anyio.run(ask)
    except be.BackendError as e:
        if e.kind == "invalid":
            raise UsageError(str(e)) from None
        raise ResolveFailed(str(e)) from None
    return pin_name(pins[0])


def kept(requirement: str, given: str, old_requirement: str) -> str:
    """The requirement an upgrade resolves: a tool installed from a directory, a file or a
    URL is upgraded from there (a bare name or extras only), unless the user names a
    version, ``@latest`` or a new source."""
    new = names.requirement(requirement)
    if new.url or new.specifier or names.is_latest(given):
        return requirement
    old = names.requirement(old_requirement)
    if not old.url:
        return requirement
    still_there(old_requirement)
    extras = f"[{','.join(sorted(new.extras))}]" if new.extras else ""
    return f"{canonical(new.name)}{extras} @ {old.url}"


def still_there(requirement: str) -> None:
    """An installed tool is rebuilt (upgrade, reinstall, inject, uninject) from its recorded
    source: a local one that is gone is refused before any operation, the tool left as it is."""
    req = names.requirement(requirement)
    source = of(req) if req.url else None
    if source and source.local and source.location and not os.path.lexists(source.location):
        raise UsageError(
            f"{canonical(req.name)} was installed from {source.location}, which is "
            "gone; the installed tool is unchanged (install it again from another source "
            "with `txtool install --force SPEC`)"
        )


def name_all(specs: Sequence[str], probe: Probe, *, editable: bool) -> list[str]:
    """:func:`named` for each spec of one command."""
    return [named(s, probe, editable=editable) for s in specs]


def planned(requirement: str, editable: bool, recorded: Mapping[str, Any] | None) -> Source:
    """The source an operation records: the requirement's, editable when asked now or when
    the tool was installed editable from that same directory."""
    source = of(names.requirement(requirement))
    before = Source.from_dict(recorded)
    keep = before.editable and before.location == source.location
    if source.kind == "directory" and (editable or keep):
        return Source(source.kind, source.location, editable=True)
    return source
