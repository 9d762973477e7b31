"""Real uv and pip runs against a locally built wheelhouse: no mocks, no network."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from txtool.backend import (
    Backend,
    BackendError,
    IndexOptions,
    PipBackend,
    UvBackend,
    env_python,
    find_python,
    get_backend,
    inspect_env,
    script_path,
)
from txtool.wheelhouse import build_test_wheelhouse, build_wheel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="module")
def index(wheelhouse: Path) -> IndexOptions:
    return IndexOptions(find_links=(str(wheelhouse),), no_index=True)


@pytest.fixture(scope="module")
def python() -> str:
    return find_python(None)


@pytest.fixture(params=["uv", "pip"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield get_backend(request.param)


# ----------------------------------------------------------------------------- pure helpers


def test_index_options_round_trip_and_merge() -> None:
    rec = IndexOptions(find_links=("/w",), no_index=True)
    assert IndexOptions.from_dict(rec.to_dict()) == rec
    assert IndexOptions.from_dict({}) == IndexOptions()
    assert rec.merged(None) == rec
    assert rec.merged(IndexOptions()) == rec
    assert rec.merged(IndexOptions(find_links=("/x",))).find_links == ("/x",)
    # Naming an index clears a recorded --no-index.
    assert rec.merged(IndexOptions(index_url="https://i/simple")) == IndexOptions(
        index_url="https://i/simple", find_links=("/w",), no_index=False
    )


def test_wheel_is_deterministic(tmp_path: Path) -> None:
    a = build_wheel(tmp_path / "a", "Some.Tool", "1.0", console_scripts={"st": "st:main"})
    b = build_wheel(tmp_path / "b", "Some.Tool", "1.0", console_scripts={"st": "st:main"})
    assert a.name == "some_tool-1.0-py3-none-any.whl"
    assert a.read_bytes() == b.read_bytes()


def test_find_python() -> None:
    exe = find_python(None)
    assert Path(exe).is_absolute() and Path(exe).exists()
    if sys.prefix != sys.base_prefix:  # never txtool's own venv interpreter
        assert not Path(exe).is_relative_to(sys.prefix)
    assert find_python(sys.executable) == str(Path(sys.executable).absolute())
    for bad in ("/nonexistent/python", "python0.1"):
        with pytest.raises(BackendError) as ei:
            find_python(bad)
        assert ei.value.kind == "python"


def test_get_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_backend("uv"), UvBackend)
    assert isinstance(get_backend("pip"), PipBackend)
    monkeypatch.setenv("TXTOOL_BACKEND", "pip")
    assert get_backend().name == "pip"
    monkeypatch.delenv("TXTOOL_BACKEND")
    assert get_backend().name == "uv"  # uv is installed alongside the tests
    with pytest.raises(ValueError):
        get_backend("conda")


def test_inspect_missing(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as ei:
        inspect_env(tmp_path, "txdemo")
    assert ei.value.kind == "not-found"


async def test_inspect_reads_what_importlib_metadata_reads(
    python: str, index: IndexOptions, tmp_path: Path
) -> None:
    """inspect_env reads the dist-info itself (no importlib.metadata): on a real environment
    it finds what importlib.metadata finds; an environment holding a distribution twice is
    reported, not read at random."""
    import importlib.metadata

    uv = get_backend("uv")
    env = tmp_path / "env"
    await uv.create_env(env, python)
    await uv.install(env, ["multitool==2.0"], index)
    (site,) = env.glob("lib/python*/site-packages")
    (info,) = site.glob("multitool-*.dist-info")
    # What the INI format also allows. A new file: uv links the installed one from its cache.
    eps = info / "entry_points.txt"
    text = eps.read_text().replace(
        "[console_scripts]", "# a comment\n[console_scripts]\n\n  spaced = multitool:main  "
    )
    eps.unlink()
    eps.write_text(text)
    (d,) = importlib.metadata.distributions(path=[str(site)], name="multitool")
    got = inspect_env(env, "multitool")
    assert got.version == d.version == "2.0"
    for group, found in (
        ("console_scripts", got.console_scripts),
        ("gui_scripts", got.gui_scripts),
    ):
        assert found == {ep.name: ep.value for ep in d.entry_points if ep.group == group}
    assert got.console_scripts["spaced"] == "multitool:main"
    shutil.copytree(info, site / "multitool-1.0.dist-info")
    with pytest.raises(BackendError, match="more than once"):
        inspect_env(env, "multitool")


# ----------------------------------------------------------------------------- both backends


async def test_resolve_pinned_and_latest(
    backend: Backend, python: str, index: IndexOptions
) -> None:
    assert await backend.resolve("txdemo==1.0", python, index) == [
        "txdemo==1.0",
        "txdemo-helper==1.0",
    ]
    assert await backend.resolve("TXDemo", python, index) == ["txdemo==2.0", "txdemo-helper==2.0"]


async def test_install_and_run(
    backend: Backend, python: str, index: IndexOptions, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    pins = ["txdemo==1.0", "txdemo-helper==1.0"]
    await backend.create_env(env, python)
    assert env_python(env).exists()
    await backend.install(env, pins, index)
    out = subprocess.run(
        [str(script_path(env, "txdemo"))], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("txdemo 1.0 (helper 1.0)")
    got = inspect_env(env, "TXDemo")
    assert (got.name, got.version) == ("txdemo", "1.0")
    assert got.console_scripts == {"txdemo": "txdemo:main"}
    assert got.gui_scripts == {}


async def test_resolve_errors(
    backend: Backend, python: str, index: IndexOptions, tmp_path: Path
) -> None:
    cases = [
        ("no-such-package", index, "not-found"),
        ("txdemo==9.9", index, "not-found"),
        ("foo bar baz", index, "invalid"),
        (
            "txdemo",
            IndexOptions(find_links=(str(tmp_path / "nope"),), no_index=True),
            "unreachable",
        ),
    ]
    for req, idx, kind in cases:
        with pytest.raises(BackendError) as ei:
            await backend.resolve(req, python, idx)
        err = ei.value
        assert err.kind == kind, (req, str(err))
        assert "\n" not in str(err) and str(err)
    with pytest.raises(BackendError) as ei:
        await backend.resolve("txdemo", "/nonexistent/python", index)
    assert ei.value.kind == "python"


async def test_create_env_refuses_non_empty(backend: Backend, python: str, tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("x")
    with pytest.raises(BackendError):
        await backend.create_env(tmp_path, python)


# ----------------------------------------------------------------------------- uv only (fast)


async def test_multitool_gui_and_upgrade_pins(
    python: str, index: IndexOptions, tmp_path: Path
) -> None:
    uv = get_backend("uv")
    pins = await uv.resolve("multitool", python, index)
    assert pins == ["multitool==2.0"]
    env = tmp_path / "env"
    await uv.create_env(env, python)
    await uv.install(env, pins, index)
    got = inspect_env(env, "multitool")
    assert got.version == "2.0"
    assert sorted(got.console_scripts) == ["mt-a", "mt-b", "mt-c"]
    assert list(got.gui_scripts) == ["mt-gui"]
    for name, gui in [("mt-b", False), ("mt-gui", True)]:
        out = subprocess.run(
            [str(script_path(env, name, gui=gui))], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == f"{name} 2.0"
    noexec = get_backend("uv")
    env2 = tmp_path / "env2"
    await noexec.create_env(env2, python)
    await noexec.install(env2, ["noexec==1.0"], index)
    assert inspect_env(env2, "noexec").console_scripts == {}


async def test_install_missing_pin_is_not_found(
    python: str, index: IndexOptions, tmp_path: Path
) -> None:
    uv = get_backend("uv")
    await uv.create_env(tmp_path / "env", python)
    with pytest.raises(BackendError) as ei:
        await uv.install(tmp_path / "env", ["txdemo==9.9"], index)
    assert ei.value.kind == "not-found"
    assert ei.value.detail


async def test_hostile_entry_point_name(python: str, index: IndexOptions, tmp_path: Path) -> None:
    # uv refuses the wheel outright; pip installs it (as bin/evil), and inspect_env must report
    # the name verbatim so txtool's own validation sees "../evil".
    with pytest.raises(BackendError) as ei:
        uv = get_backend("uv")
        await uv.create_env(tmp_path / "uv", python)
        await uv.install(tmp_path / "uv", ["evil==1.0"], index)
    assert ei.value.kind == "failed"
    assert "../evil" in str(ei.value)

    pip = get_backend("pip")
    await pip.create_env(tmp_path / "pip", python)
    await pip.install(tmp_path / "pip", ["evil==1.0"], index)
    assert inspect_env(tmp_path / "pip", "evil").console_scripts == {"../evil": "evil:main"}


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_runs_under_trio(python: str, index: IndexOptions) -> None:
    pins = await get_backend("uv").resolve("slowtool==1.0", python, index)
    assert pins == ["slowtool==1.0"]


# ----------------------------------------------------------------------------- error mapping
# Real stderr captured from uv 0.13 / pip 23.2 for failures too slow (network retries) to provoke
# in every test run.

UV_CONNECT_REFUSED = """\
error: Request failed after 3 retries in 9.1s
  cause: Failed to fetch: http://127.0.0.1:9/simple/txdemo/
  cause: error sending request for url (http://127.0.0.1:9/simple/txdemo/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""
UV_DNS = """\
error: Request failed after 3 retries in 9.9s
  cause: Failed to fetch: http://nosuchhost.invalid/simple/txdemo/
  cause: dns error
  cause: failed to lookup address information: Name or service not known
"""
PIP_CONNECT_REFUSED = (
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
    "HTTPConnection object at 0x7f5a6a445750>: Failed to establish a new connection: "
    "[Errno 111] Connection refused')': /simple/txdemo/\n"
    "ERROR: Could not find a version that satisfies the requirement txdemo (from versions: none)\n"
    "ERROR: No matching distribution found for txdemo\n"
)


def test_error_mapping_of_network_failures() -> None:
    from txtool.backend.errors import classify as _classify
    from txtool.backend.pip import _pip_message
    from txtool.backend.uv import _uv_message

    assert _classify(UV_CONNECT_REFUSED) == "unreachable"
    assert _uv_message(UV_CONNECT_REFUSED) == (
        "Request failed after 3 retries in 9.1s: Failed to fetch: "
        "http://127.0.0.1:9/simple/txdemo/: Connection refused (os error 111)"
    )
    assert _classify(UV_DNS) == "unreachable"
    assert _classify(PIP_CONNECT_REFUSED) == "unreachable"
    assert _pip_message(PIP_CONNECT_REFUSED) == (
        "cannot connect to the index (/simple/txdemo/): [Errno 111] Connection refused"
    )
