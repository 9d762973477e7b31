"""The bin dir and the user's shell: where things live (``txtool dir``), putting the bin dir
on PATH (``txtool ensurepath``), and what PATH really runs (the "not on PATH" and
"shadowed" warnings).

``ensurepath`` appends one marked line to each shell's startup file, only when the file does
not have it yet, so running it again changes nothing. On Windows it adds the bin dir to the
user's PATH in the registry, behind :class:`UserPath` (the seam tests use elsewhere).
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import msgspec

Shell = Literal["bash", "zsh", "fish"]
SHELLS: tuple[Shell, ...] = get_args(Shell)

MARKER = "# added by `txtool ensurepath`"


class Edit(msgspec.Struct, frozen=True):
    """One startup file (or the Windows user PATH) and whether ensurepath changed it."""

    where: str
    added: bool


def startup_files(shell: Shell, home: Path, environ: Mapping[str, str]) -> list[Path]:
    """The files ``shell`` reads at start-up where a PATH line belongs: bash's interactive
    ``.bashrc`` and the one login file bash reads; zsh's ``.zshrc`` (under ``ZDOTDIR``);
    fish's ``config.fish`` (under ``XDG_CONFIG_HOME``)."""
    if shell == "bash":
        logins = [home / n for n in (".bash_profile", ".bash_login", ".profile")]
        login = next((p for p in logins if p.exists()), home / ".profile")
        return [home / ".bashrc", login]
    if shell == "zsh":
        return [Path(environ.get("ZDOTDIR") or home) / ".zshrc"]
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [config / "fish" / "config.fish"]


def path_line(shell: Shell, bin_dir: Path) -> str:
    """The one line that puts ``bin_dir`` first on PATH, unless it is there already."""
    if shell == "fish":
        quoted = "'" + str(bin_dir).replace("\\", "\\\\").replace("'", "\\'") + "'"
        return f"contains {quoted} $PATH; or set -gx PATH {quoted} $PATH"
    quoted = shlex.quote(str(bin_dir))
    return f'case ":$PATH:" in *:{quoted}:*) ;; *) export PATH={quoted}:"$PATH" ;; esac'


def default_shells(environ: Mapping[str, str], home: Path) -> list[Shell]:
    """The user's login shell, and every other supported shell that is installed or has a
    startup file in ``home``."""
    login = Path(environ.get("SHELL", "")).name
    found = [
        s
        for s in SHELLS
        if s == login
        or shutil.which(s) is not None
        or any(p.exists() for p in startup_files(s, home, environ))
    ]
    return found


def ensure_line(path: Path, line: str) -> bool:
    """Append ``line`` (after the marker) to ``path`` unless it is there; True if added.
    Appended, not rewritten: a dotfile that is a link (a dotfiles repository) stays one,
    and what the file holds is never at risk."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    if line in text.splitlines():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    lead = "" if not text or text.endswith("\n") else "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{lead}\n{MARKER}\n{line}\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def ensure_shells(
    bin_dir: Path, shells: Iterable[Shell], home: Path, environ: Mapping[str, str]
) -> list[Edit]:
    edits = []
    for shell in shells:
        for path in startup_files(shell, home, environ):
            edits.append(Edit(str(path), ensure_line(path, path_line(shell, bin_dir))))
    return edits


class UserPath(Protocol):
    """The Windows user PATH (``HKCU\\Environment``, value ``Path``)."""

    def get(self) -> str: ...

    def set(self, value: str) -> None: ...


def _winreg() -> Any:
    # By name: the module exists (and is typed) only on Windows.
    return importlib.import_module("winreg")


class RegistryUserPath:
    """:class:`UserPath` in the registry, telling running programs it changed."""

    def get(self) -> str:
        winreg = _winreg()
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, "Environment") as key:
            try:
                value, _ = winreg.QueryValueEx(key, "Path")
            except FileNotFoundError:
                return ""
        return str(value)

    def set(self, value: str) -> None:
        import ctypes

        winreg = _winreg()
        access = winreg.KEY_SET_VALUE
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, "Environment", 0, access) as key:
            winreg.SetValueEx(key, "Path", 0, winreg.REG_EXPAND_SZ, value)
        # New shells read the new PATH only once Explorer hears of it (WM_SETTINGCHANGE).
        user32 = getattr(ctypes, "windll").user32  # noqa: B009 (Windows only)
        result = ctypes.c_ulong()
        user32.SendMessageTimeoutW(0xFFFF, 0x1A, 0, "Environment", 2, 5000, ctypes.byref(result))


def ensure_user_path(store: UserPath, bin_dir: Path) -> Edit:
    """Append ``bin_dir`` to the Windows user PATH unless an entry names it already (Windows
    paths compare without case, and with or without a trailing separator)."""
    current = store.get()
    entries = [e for e in current.split(";") if e]

    def norm(p: str) -> str:
        return os.path.normcase(p.rstrip("\\/")).lower()

    if any(norm(os.path.expandvars(e)) == norm(str(bin_dir)) for e in entries):
        return Edit("the user PATH", False)
    store.set(";".join([*entries, str(bin_dir)]))
    return Edit("the user PATH", True)


def windows() -> bool:
    return sys.platform == "win32"


# -- what PATH runs ------------------------------------------------------------------------


def shadowed(bin_dir: Path, names: Iterable[str], path_env: str) -> dict[str, str]:
    """Each executable name that PATH finds in another directory before ``bin_dir``:
    name -> what runs instead. Nothing when ``bin_dir`` is not on PATH (that is its own
    warning)."""
    entries = [Path(e).absolute() for e in path_env.split(os.pathsep) if e]
    if bin_dir not in entries:
        return {}
    earlier = entries[: entries.index(bin_dir)]
    found = {}
    for name in names:
        for d in earlier:
            hit = shutil.which(name, path=str(d))
            if hit is not None:
                found[name] = hit
                break
    return found
