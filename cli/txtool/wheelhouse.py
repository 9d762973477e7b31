"""A tiny PEP 427 wheel builder: real, installable wheels without network or build backends.

Used by the offline demo and by the tests. It builds, it never installs.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["build_demo_wheelhouse", "build_test_wheelhouse", "build_wheel"]

# Fixed timestamp: the same inputs always give byte-identical wheels.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_EMPTY: Mapping[str, str] = {}


def _wheel_name(name: str) -> str:
    """Name as it appears in wheel filenames and .dist-info dirs (PEP 427 + PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _entry_points(console: Mapping[str, str], gui: Mapping[str, str]) -> str:
    parts: list[str] = []
    for section, scripts in (("console_scripts", console), ("gui_scripts", gui)):
        if scripts:
            parts.append(f"[{section}]")
            # Names verbatim: tests need hostile names like "../evil" to reach the installer.
            parts.extend(f"{ep} = {target}" for ep, target in scripts.items())
            parts.append("")
    return "\n".join(parts)


def build_wheel(
    outdir: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    provides_extras: Sequence[str] = (),
    console_scripts: Mapping[str, str] = _EMPTY,
    gui_scripts: Mapping[str, str] = _EMPTY,
    files: Mapping[str, str] = _EMPTY,
    summary: str = "",
) -> Path:
    """Write `{name}-{version}-py3-none-any.whl` into outdir and return its path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    wname = _wheel_name(name)
    dist_info = f"{wname}-{version}.dist-info"

    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        metadata.append(f"Summary: {summary}")
    metadata.extend(f"Provides-Extra: {extra}" for extra in provides_extras)
    metadata.extend(f"Requires-Dist: {req}" for req in requires)
    wheel_meta = [
        "Wheel-Version: 1.0",
        "Generator: txtool.wheelhouse",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]

    # Ordered: payload first, dist-info after, RECORD last (as PEP 427 recommends).
    entries: list[tuple[str, bytes]] = [
        (path, text.encode("utf-8")) for path, text in sorted(files.items())
    ]
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    entries.append((f"{dist_info}/WHEEL", ("\n".join(wheel_meta) + "\n").encode()))
    if console_scripts or gui_scripts:
        ep_text = _entry_points(console_scripts, gui_scripts)
        entries.append((f"{dist_info}/entry_points.txt", ep_text.encode("utf-8")))

    record_path = f"{dist_info}/RECORD"
    record_lines = [f"{p},{_record_hash(data)},{len(data)}" for p, data in entries]
    record_lines.append(f"{record_path},,")
    entries.append((record_path, ("\n".join(record_lines) + "\n").encode("utf-8")))

    wheel_path = outdir / f"{wname}-{version}-py3-none-any.whl"
    tmp = wheel_path.with_name(wheel_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # regular file, rw-r--r--
            zf.writestr(info, data)
    tmp.replace(wheel_path)  # never leave a half-written wheel under the final name
    return wheel_path


def _module(dist: str) -> str:
    return _wheel_name(dist)


def _script_module(dist: str, version: str, scripts: Sequence[str]) -> str:
    """Module source with one trivial function per script, each printing `NAME VERSION`."""
    lines = [f'VERSION = "{version}"', ""]
    for i, script in enumerate(scripts):
        func = "main" if i == 0 else f"main_{i}"
        lines += ["", f"def {func}() -> None:", f"    print({f'{script} {version}'!r})", ""]
    return "\n".join(lines)


def _simple_tool(
    outdir: Path,
    dist: str,
    version: str,
    scripts: Sequence[str],
    *,
    gui: Sequence[str] = (),
    requires: Sequence[str] = (),
) -> Path:
    mod = _module(dist)
    all_scripts = [*scripts, *gui]
    targets = {s: f"{mod}:{'main' if i == 0 else f'main_{i}'}" for i, s in enumerate(all_scripts)}
    return build_wheel(
        outdir,
        dist,
        version,
        requires=requires,
        console_scripts={s: targets[s] for s in scripts},
        gui_scripts={s: targets[s] for s in gui},
        files={f"{mod}/__init__.py": _script_module(dist, version, all_scripts)},
        summary=f"txtool test tool {dist}",
    )


def _txdemo(outdir: Path, version: str, helper_req: str) -> Path:
    # Keep "txdemo X" as the first two tokens: demos and tests match on that prefix.
    source = (
        f'VERSION = "{version}"\n\n\n'
        "def main() -> None:\n"
        "    import txdemo_helper\n\n"
        f'    print(f"txdemo {version} (helper {{txdemo_helper.VERSION}})")\n'
    )
    return build_wheel(
        outdir,
        "txdemo",
        version,
        requires=[helper_req],
        console_scripts={"txdemo": "txdemo:main"},
        files={"txdemo/__init__.py": source},
        summary="txtool demo tool",
    )


def build_demo_wheelhouse(outdir: Path) -> Path:
    """txdemo 1.0/2.0 and txdemo-helper 1.0/2.0; 2.0 changes the dependency range."""
    outdir = Path(outdir)
    for version in ("1.0", "2.0"):
        build_wheel(
            outdir,
            "txdemo-helper",
            version,
            files={"txdemo_helper/__init__.py": f'VERSION = "{version}"\n'},
            summary="txtool demo helper library",
        )
    _txdemo(outdir, "1.0", "txdemo-helper>=1,<2")
    _txdemo(outdir, "2.0", "txdemo-helper>=2")
    return outdir


def build_test_wheelhouse(outdir: Path) -> Path:
    """The demo set plus tools with awkward shapes that the tests need."""
    outdir = build_demo_wheelhouse(outdir)
    mt = ["mt-a", "mt-b", "mt-c"]
    _simple_tool(outdir, "multitool", "1.0", mt)
    _simple_tool(outdir, "multitool", "2.0", mt, gui=["mt-gui"])
    _simple_tool(outdir, "evil", "1.0", ["../evil"])  # hostile entry point name
    build_wheel(
        outdir,
        "noexec",
        "1.0",
        files={"noexec/__init__.py": 'VERSION = "1.0"\n'},
        summary="a library without entry points",
    )
    _simple_tool(outdir, "collide", "1.0", ["ls-collide"])
    _simple_tool(outdir, "rival", "1.0", ["mt-a"])  # multitool's first executable name too
    for version in ("1.0", "2.0"):
        _simple_tool(outdir, "slowtool", version, ["slowtool"])
    _build_spec_wheels(outdir)
    _txexit(outdir)
    for version in ("1.0", "2.0"):
        _txman(outdir, version)
    return outdir


def _fancy(outdir: Path, version: str) -> Path:
    """A tool whose extra ``d`` pulls in another distribution, and whose executable names
    the optional modules it can import, so a test sees plugins and extras by running it."""
    source = (
        f'VERSION = "{version}"\n\n\n'
        "def main() -> None:\n"
        "    import importlib.util\n\n"
        '    found = [m for m in ("fancy_extra", "fancy_plugin") if importlib.util.find_spec(m)]\n'
        f"    print(f\"fancy {version} ({{' '.join(found) or 'plain'}})\")\n"
    )
    return build_wheel(
        outdir,
        "fancy",
        version,
        requires=['fancy-extra>=1; extra == "d"'],
        provides_extras=["d"],
        console_scripts={"fancy": "fancy:main"},
        files={"fancy/__init__.py": source},
        summary="txtool test tool with an extra",
    )


def _build_spec_wheels(outdir: Path) -> None:
    """What pins, extras and plugins need: several releases of ``fancy`` (with the extra
    ``d``), the dependency that extra pulls in (it has an executable of its own, for
    ``--include-deps``) and a plugin without executables, in two releases."""
    for version in ("1.0", "2.0", "3.0"):
        _fancy(outdir, version)
    _simple_tool(outdir, "fancy-extra", "1.0", ["fancy-extra-cli"])
    for version in ("1.0", "2.0"):
        build_wheel(
            outdir,
            "fancy-plugin",
            version,
            files={"fancy_plugin/__init__.py": f'VERSION = "{version}"\n'},
            summary="a plugin for fancy: a library without entry points",
        )


def _txman(outdir: Path, version: str) -> Path:
    """A tool whose wheel ships man pages as data files (``share/man/man1``, ``man5``)."""
    data = f"txman-{version}.data/data/share/man"
    page = f'.TH TXMAN 1 "" "txman {version}"\n.SH NAME\ntxman \\- txman {version} test page\n'
    return build_wheel(
        outdir,
        "txman",
        version,
        console_scripts={"txman": "txman:main"},
        files={
            "txman/__init__.py": _script_module("txman", version, ["txman"]),
            f"{data}/man1/txman.1": page,
            f"{data}/man5/txman.conf.5": page.replace("TXMAN 1", "TXMAN.CONF 5"),
            f"{data}/not-a-section/ignored.1": page,
        },
        summary="a tool with man pages",
    )


def _txexit(outdir: Path) -> Path:
    """``txexit CODE`` exits with CODE; ``txexit SIGNAME`` kills itself with that signal;
    ``txexit wait`` prints its pid and waits for SIGTERM, then exits 42 (for `txtool run`)."""
    source = (
        "import os, signal, sys, time\n\n\n"
        "def main() -> None:\n"
        "    arg = sys.argv[1] if len(sys.argv) > 1 else '0'\n"
        "    if arg == 'wait':\n"
        "        signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
        "        print(f'waiting {os.getpid()}', flush=True)\n"
        "        time.sleep(60)\n"
        "    elif arg.startswith('SIG'):\n"
        "        os.kill(os.getpid(), getattr(signal, arg))\n"
        "    print('args', *sys.argv[1:], flush=True)\n"
        "    sys.exit(int(arg) if arg.isdigit() else 0)\n"
    )
    return build_wheel(
        outdir,
        "txexit",
        "1.0",
        console_scripts={"txexit": "txexit:main"},
        files={"txexit/__init__.py": source},
        summary="exits as told (txtool run tests)",
    )
