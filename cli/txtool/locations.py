"""Where txtool keeps things. Environment variables override every location."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Locations:
    home: Path  # environments and the journal
    bin_dir: Path  # where shims go

    @property
    def journal_dir(self) -> Path:
        return self.home / "journal"

    @property
    def tools_dir(self) -> Path:
        return self.home / "tools"

    def env_dir(self, tool: str, env_id: str) -> Path:
        return self.tools_dir / tool / env_id

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Locations:
        """``TXTOOL_HOME`` else the platform's user data dir; ``TXTOOL_BIN_DIR`` else
        ``XDG_BIN_HOME`` else ``~/.local/bin`` (where uv tool and pipx put them too)."""
        env = os.environ if environ is None else environ
        home = env.get("TXTOOL_HOME")
        if not home:
            import platformdirs

            home = platformdirs.user_data_dir("txtool", appauthor=False)
        bin_dir = env.get("TXTOOL_BIN_DIR") or env.get("XDG_BIN_HOME")
        if not bin_dir:
            bin_dir = str(Path.home() / ".local" / "bin")
        return cls(Path(home).absolute(), Path(bin_dir).absolute())

    def bin_on_path(self) -> bool:
        entries = os.environ.get("PATH", "").split(os.pathsep)
        return any(e and Path(e).absolute() == self.bin_dir for e in entries)
