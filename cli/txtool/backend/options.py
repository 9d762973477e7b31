"""Where packages come from (index options), and how an index password is kept out of the
journal, every output and every child's command line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from .errors import BackendError

MASK = "****"

# Masked URL -> the URL with its password, for this process only: the journal and every
# output hold the masked form; a child gets the real one through its environment.
_SECRETS: dict[str, str] = {}


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``****`` (remembered for this process's
    children); a URL without a password is returned as it is."""
    parts = urlsplit(url)
    if parts.password is None or parts.password == MASK:
        return url
    host = parts.netloc.rpartition("@")[2]
    masked = urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))
    _SECRETS[masked] = url
    return masked


def has_credentials(url: str) -> bool:
    return urlsplit(url).password is not None


def unmask_url(url: str, env_var: str) -> str:
    """The URL a child must use for a (possibly masked) recorded ``url``: the one given on
    this command line, else ``env_var`` (``UV_INDEX_URL``/``PIP_INDEX_URL``) when it is the
    same URL with its password, else the URL without a password, so that uv/pip find it in
    netrc or keyring. txtool never stores the password (docs/cli.md, "Credentials")."""
    parts = urlsplit(url)
    if parts.password != MASK:
        return url
    if url in _SECRETS:
        return _SECRETS[url]
    for given in (os.environ.get(env_var) or "").split():
        if mask_url(given) == url:
            return given
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


def redact(text: str) -> str:
    """``text`` (a child's stderr, a message) with every known password masked."""
    for masked, real in _SECRETS.items():
        text = text.replace(real, masked)
    return text


@dataclass(frozen=True)
class IndexOptions:
    """Where packages come from; recorded in the journal so resume/upgrade reuse it."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    extra_index_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists (e.g. from JSON) but keep the dataclass hashable.
        object.__setattr__(self, "find_links", tuple(self.find_links))
        object.__setattr__(self, "extra_index_urls", tuple(self.extra_index_urls))

    def to_dict(self) -> dict[str, Any]:
        """What is journaled and shown: each index URL's password masked (see :func:`mask_url`)."""
        out: dict[str, Any] = {
            "index_url": None if self.index_url is None else mask_url(self.index_url),
            "find_links": list(self.find_links),
            "no_index": self.no_index,
        }
        if self.extra_index_urls:  # absent as txtool 0.1.0 wrote it when there are none
            out["extra_index_urls"] = [mask_url(u) for u in self.extra_index_urls]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IndexOptions:
        index_url = d.get("index_url")
        find_links = d.get("find_links") or ()
        extra = d.get("extra_index_urls") or ()
        if index_url is not None and not isinstance(index_url, str):
            raise ValueError(f"index_url must be a string, not {type(index_url).__name__}")
        for name, value in (("find_links", find_links), ("extra_index_urls", extra)):
            if isinstance(value, str) or not all(isinstance(x, str) for x in value):
                raise ValueError(f"{name} must be a list of strings")
        return cls(
            index_url=index_url,
            find_links=tuple(find_links),
            no_index=bool(d.get("no_index")),
            extra_index_urls=tuple(extra),
        )

    def merged(self, override: IndexOptions | None) -> IndexOptions:
        """Fields set in `override` (the command line) win over recorded ones."""
        if override is None:
            return self
        index_url = override.index_url if override.index_url is not None else self.index_url
        find_links = override.find_links or self.find_links
        # Naming an index on the command line means "use an index": it clears a recorded --no-index.
        no_index = override.no_index or (self.no_index and override.index_url is None)
        extra = override.extra_index_urls or self.extra_index_urls
        return IndexOptions(index_url, find_links, no_index, extra)


def _local_path(location: str) -> Path | None:
    """The filesystem path a find-links/index location names, or None for remote URLs."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    return Path(location).expanduser()


def check_local_locations(index: IndexOptions) -> None:
    # pip only warns about a missing local location and then says "not found": check up front
    # so both backends report the real cause.
    for link in index.find_links:
        if has_credentials(link):
            raise BackendError(
                f"--find-links {mask_url(link)}: a password there would be on the command "
                "line of uv/pip; use --index-url, or put it in ~/.netrc",
                kind="invalid",
            )
    locations = list(index.find_links)
    if index.index_url and not index.no_index:
        locations.append(index.index_url)
    for loc in locations:
        p = _local_path(loc)
        if p is not None and not p.exists():
            raise BackendError(f"package location does not exist: {loc}", kind="unreachable")


def index_flags(index: IndexOptions) -> list[str]:
    """The command-line flags for ``index``; the index URL goes through the environment
    (:func:`_index_env`), where no other user can read it (``ps``, /proc/PID/cmdline)."""
    flags: list[str] = []
    for link in index.find_links:
        flags += ["--find-links", link]
    if index.no_index:
        flags.append("--no-index")
    return flags


def index_env(env: dict[str, str], index: IndexOptions, var: str) -> dict[str, str]:
    """``env`` with the index URLs (``var``, e.g. ``UV_INDEX_URL``, and its extra-index
    twin), their passwords restored where this process knows them."""
    if index.index_url is not None:
        env[var] = unmask_url(index.index_url, var)
    if index.extra_index_urls:
        extra_var = var.replace("INDEX_URL", "EXTRA_INDEX_URL")
        env[extra_var] = " ".join(unmask_url(u, extra_var) for u in index.extra_index_urls)
    return env


def is_bare_url(requirement: str) -> bool:
    """An unnamed direct reference (``git+https://...``, ``file:///...``): the resolver
    reads its name from its metadata."""
    scheme = urlsplit(requirement).scheme
    return "://" in requirement and bool(scheme) and " " not in requirement.strip()
