"""Resolve and install Python tools by driving uv (preferred) or pip.

txtool writes no resolver and no installer: this package turns a requirement into exact pins
and puts exactly those pins into a fresh environment, mapping the tools' errors to a few kinds
the CLI can explain. All subprocesses go through ``common.run``, which makes them die with
txtool (PR_SET_PDEATHSIG, set between fork and exec) and waits for them in a worker thread. One module per backend (``uv``, ``pip``);
``options`` holds index options and their secrets, ``environments`` what an environment holds.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from .environments import (
    Installed,
    distributions,
    env_damage,
    env_python,
    find_python,
    inspect_env,
    script_path,
)
from .errors import BackendError
from .options import IndexOptions, check_local_locations, mask_url

if TYPE_CHECKING:
    from .common import Backend
    from .config import effective as effective_index
    from .pip import PipBackend
    from .uv import UvBackend

# What runs the tools (subprocesses, their pipes, the index configuration files) is imported
# when a command first resolves or installs: an uninstall, a no-op upgrade's plan, the steps
# that move shims and environments only read environments (PEP 562).
_LAZY = {
    "Backend": ("common", "Backend"),
    "effective_index": ("config", "effective"),
    "PipBackend": ("pip", "PipBackend"),
    "UvBackend": ("uv", "UvBackend"),
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where[0]}"), where[1])
    globals()[name] = value
    return value


__all__ = [
    "Backend",
    "BackendError",
    "IndexOptions",
    "Installed",
    "PipBackend",
    "UvBackend",
    "check_local_locations",
    "distributions",
    "effective_index",
    "env_damage",
    "env_python",
    "find_python",
    "get_backend",
    "inspect_env",
    "mask_url",
    "script_path",
]


def get_backend(name: str | None = None) -> Backend:
    """ "uv" | "pip" | None (TXTOOL_BACKEND, else uv when its binary is available, else pip).

    Each backend's module is imported only when it is the one returned: the pip backend's
    (its config readers: tomllib, configparser) is not for a uv command."""
    if name is None:
        name = os.environ.get("TXTOOL_BACKEND") or None
    if name not in (None, "uv", "pip"):
        raise ValueError(f"unknown backend {name!r} (expected 'uv' or 'pip')")
    if name != "pip":
        from .uv import UvBackend

        try:
            return UvBackend()
        except (ImportError, FileNotFoundError) as e:
            if name == "uv":
                raise BackendError(f"the uv backend is not available: {e}", kind="failed") from None
    from .pip import PipBackend

    return PipBackend()
