"""The index settings in force for a backend, read as the backend itself reads them, so that
txtool can record where a tool came from and an upgrade resolves from the same place.

uv: ``UV_*`` variables over the user's ``uv.toml`` over the system's (``UV_CONFIG_FILE``
instead of both, ``UV_NO_CONFIG`` for none). pip: ``PIP_*`` variables over
``PIP_CONFIG_FILE`` over the site, user and global ``pip.conf`` (``[install]`` over
``[global]``). A project's configuration in the current directory is never read: uv is run
so that it does not read it either (``uv.py``), and pip has none.

Each field is taken from the first place that sets it (the command line first), as both
tools do. Relative find-links in a file are relative to that file.

The file parsers (``tomllib``, ``configparser``) are imported once there is a file to parse:
most homes have neither a uv.toml nor a pip.conf, and a uv command never reads pip's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import BackendError
from .options import IndexOptions, mask_url

_TRUE = {"1", "true", "yes", "on"}


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _config_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or _home() / ".config")


def _config_dirs(env: Mapping[str, str]) -> list[Path]:
    return [Path(d) for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep) if d]


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUE)


def uv_files(env: Mapping[str, str]) -> list[Path]:
    """The uv.toml files uv reads for a tool, the one that wins first."""
    if _truthy(env.get("UV_NO_CONFIG", "")):
        return []
    if env.get("UV_CONFIG_FILE"):
        return [Path(env["UV_CONFIG_FILE"])]
    if sys.platform == "win32":
        user = Path(env.get("APPDATA") or _home()) / "uv" / "uv.toml"
    else:
        user = _config_home(env) / "uv" / "uv.toml"
    found = [user]
    if not _truthy(env.get("UV_NO_SYSTEM_CONFIG", "")):
        system = [d / "uv" / "uv.toml" for d in _config_dirs(env)]
        if sys.platform != "win32":
            system.append(Path("/etc/uv/uv.toml"))
        found += [next((f for f in system if f.is_file()), system[-1])]
    return found


def pip_files(env: Mapping[str, str]) -> list[Path]:
    """The pip.conf files pip reads, the one that wins first."""
    named = env.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    legacy = _home() / (".pip/pip.ini" if sys.platform == "win32" else ".pip/pip.conf")
    name = "pip.ini" if sys.platform == "win32" else "pip.conf"
    site = Path(sys.prefix) / name
    user = [_config_home(env) / "pip" / name, legacy]
    system = [Path("/etc") / name, *[d / "pip" / name for d in reversed(_config_dirs(env))]]
    return [*([Path(named)] if named else []), site, *user, *system]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BackendError(f"cannot read {path}: {e}", kind="invalid") from None
    import tomllib

    try:
        return tomllib.loads(raw.decode())  # as tomllib.load decodes a file
    except tomllib.TOMLDecodeError as e:
        raise BackendError(f"cannot read {path}: {e}", kind="invalid") from None


def _links(values: object, base: Path) -> list[str]:
    items = values.split() if isinstance(values, str) else values
    if not isinstance(items, list):
        return []
    return [_absolute(str(v), base) for v in items if isinstance(v, str)]


def _absolute(location: str, base: Path) -> str:
    if "://" in location or os.path.isabs(location):
        return location
    return str((base / os.path.expanduser(location)).resolve())


class _Settings:
    """Fields in the order they are found; the first to set one wins."""

    def __init__(self) -> None:
        self.index_url: str | None = None
        self.extra: list[str] | None = None
        self.find_links: list[str] | None = None
        self.no_index: bool | None = None

    def add(
        self,
        index_url: str | None = None,
        extra: Sequence[str] | None = None,
        find_links: Sequence[str] | None = None,
        no_index: bool | None = None,
    ) -> None:
        if self.index_url is None and index_url:
            self.index_url = index_url
        if self.extra is None and extra:
            self.extra = list(extra)
        if self.find_links is None and find_links:
            self.find_links = list(find_links)
        if self.no_index is None and no_index is not None:
            self.no_index = no_index

    def options(self) -> IndexOptions:
        return IndexOptions(
            index_url=self.index_url,
            find_links=tuple(self.find_links or ()),
            no_index=bool(self.no_index),
            extra_index_urls=tuple(self.extra or ()),
        )


def _uv_table(settings: _Settings, table: Mapping[str, Any], base: Path) -> None:
    indexes = [i for i in table.get("index", ()) if isinstance(i, dict) and "url" in i]
    default = next((str(i["url"]) for i in indexes if i.get("default") is True), None)
    extra = [str(i["url"]) for i in indexes if not i.get("default") and not i.get("explicit")]
    extra += [str(u) for u in table.get("extra-index-url", ()) if isinstance(u, str)]
    no_index = table.get("no-index")
    settings.add(
        index_url=table.get("index-url") if isinstance(table.get("index-url"), str) else default,
        extra=extra,
        find_links=_links(table.get("find-links", []), base),
        no_index=no_index if isinstance(no_index, bool) else None,
    )


def _uv(env: Mapping[str, str], settings: _Settings) -> None:
    extra = (env.get("UV_EXTRA_INDEX_URL") or "").split()
    extra += [i.partition("=")[2] or i for i in (env.get("UV_INDEX") or "").split()]
    settings.add(
        index_url=env.get("UV_INDEX_URL") or env.get("UV_DEFAULT_INDEX"),
        extra=extra,
        find_links=[x for x in (env.get("UV_FIND_LINKS") or "").split(",") if x.strip()],
        no_index=_truthy(env["UV_NO_INDEX"]) if env.get("UV_NO_INDEX") else None,
    )
    for path in uv_files(env):
        data = _read_toml(path)
        pip = data.get("pip")
        for table in (pip if isinstance(pip, dict) else {}, data):
            _uv_table(settings, table, path.parent)


def _pip(env: Mapping[str, str], settings: _Settings) -> None:
    settings.add(
        index_url=env.get("PIP_INDEX_URL"),
        extra=(env.get("PIP_EXTRA_INDEX_URL") or "").split(),
        find_links=(env.get("PIP_FIND_LINKS") or "").split(),
        no_index=_truthy(env["PIP_NO_INDEX"]) if env.get("PIP_NO_INDEX") else None,
    )
    import configparser

    for path in pip_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError) as e:
            raise BackendError(f"cannot read {path}: {e}", kind="invalid") from None
        for section in ("install", "global"):
            if not parser.has_section(section):
                continue
            get = parser[section].get
            no_index = get("no-index")
            settings.add(
                index_url=get("index-url"),
                extra=(get("extra-index-url") or "").split(),
                find_links=_links(get("find-links") or "", path.parent),
                no_index=_truthy(no_index) if no_index is not None else None,
            )


def effective(backend: str, given: IndexOptions | None, env: Mapping[str, str]) -> IndexOptions:
    """The index settings ``backend`` resolves with: ``given`` (the command line) over its
    variables and configuration files."""
    settings = _Settings()
    if given is not None:
        settings.add(
            given.index_url,
            given.extra_index_urls,
            given.find_links,
            given.no_index if given.no_index else None,
        )
        if given.index_url is not None:
            settings.add(no_index=False)  # naming an index means "use an index"
    (_uv if backend == "uv" else _pip)(env, settings)
    return settings.options()


def remember_secrets(backend: str, env: Mapping[str, str]) -> None:
    """Learn the passwords of the index URLs configured now, so that a recorded (masked)
    URL reaches the child whole when the user's configuration still holds its password."""
    try:
        found = effective(backend, None, env)
    except BackendError:
        return  # the child reads the same file and says what is wrong with it
    for url in (found.index_url, *found.extra_index_urls, *found.find_links):
        if url:
            mask_url(url)
