"""``txtool run``: real environments in a real cache, reused while fresh, rebuilt beside the
one in use (a SIGKILL while building never leaves an environment a later run uses), bounded
(LRU) and emptied by ``cache prune``/``clean``; the tool's exit code and signals are its own
(txtool becomes the tool); PEP 723 scripts get their dependencies the same way."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from txtool.cli import FAILED, OK, USAGE
from txtool.run import script_metadata


class Runner:
    """``txtool run`` (and ``cache``) against one cache dir and the test wheelhouse."""

    def __init__(self, tx) -> None:
        self.tx = tx
        self.cache = tx.root / "cache"
        self.run_dir = self.cache / "run"

    def env(self, **extra: str) -> dict[str, str]:
        return {"TXTOOL_CACHE_DIR": str(self.cache), **extra}

    def __call__(self, *args: str, expect: int | None = OK, **extra: str):
        return self.tx("run", *self.tx.index, *args, expect=expect, **self.env(**extra))

    def spawn(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return self.tx.spawn("run", *self.tx.index, *args, **self.env(**extra))

    def cache_cmd(self, action: str, **extra: str) -> str:
        return self.tx("cache", action, **self.env(**extra)).stdout

    def envs(self) -> list[str]:
        d = self.run_dir / "envs"
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def pointers(self) -> dict[str, dict[str, object]]:
        if not self.run_dir.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in self.run_dir.glob("*.json")}


@pytest.fixture
def run(tx) -> Runner:
    return Runner(tx)


def test_run_builds_once_then_reuses_the_environment(run) -> None:
    first = run("txexit", "7", "--flag", "--", "-x", expect=7)
    assert first.stdout == "args 7 --flag -- -x\n"
    assert "building an environment for txexit" in first.stderr
    (env,) = run.envs()
    second = run("txexit", "7", "--flag", "--", "-x", expect=7)
    assert second.stdout == first.stdout and second.stderr == ""
    assert run.envs() == [env]
    assert not run.tx.home.exists() and not run.tx.bin.exists()  # nothing was installed


def test_the_tools_signals_and_exit_code_are_its_own(run) -> None:
    run("txexit", "0")  # built; the runs below start the tool at once
    assert run("txexit", "SIGTERM", expect=None).returncode == -signal.SIGTERM
    assert run("txexit", "SIGKILL", expect=None).returncode == -signal.SIGKILL
    proc = run.spawn("txexit", "wait")
    try:
        line = proc.stdout.readline()
        # txtool became the tool: same process, so every signal reaches the tool itself.
        assert line == f"waiting {proc.pid}\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_from_with_and_an_exact_version(run) -> None:
    assert run("--from", "txdemo==1.0", "txdemo").stdout == "txdemo 1.0 (helper 1.0)\n"
    assert run("txdemo==2.0").stdout == "txdemo 2.0 (helper 2.0)\n"
    out = run("--from", "txdemo==1.0", "--with", "multitool==1.0", "mt-b").stdout
    assert out == "mt-b 1.0\n"
    assert len(run.envs()) == 3  # one per set of requirements


def test_a_stale_environment_is_rebuilt_beside_and_the_old_one_goes(run) -> None:
    run("txexit")
    (old,) = run.envs()
    proc = run("txexit", TXTOOL_RUN_TTL="0")
    assert "building an environment" in proc.stderr
    (new,) = run.envs()
    assert new != old


def test_the_cache_keeps_the_most_recently_used(run) -> None:
    run("txexit")
    run("--from", "txdemo==1.0", "txdemo")
    run("txexit")  # now the most recently used
    run("--from", "multitool==1.0", "mt-a", TXTOOL_RUN_KEEP="2")
    kept = {p["what"] for p in run.pointers().values()}
    assert kept == {"txexit", "multitool==1.0"}
    assert len(run.envs()) == 2


def test_cache_prune_and_clean(run) -> None:
    run("txexit")
    run("--from", "txdemo==1.0", "txdemo")
    assert run.cache_cmd("prune") == "removed 0 environments\n"
    assert run.cache_cmd("prune", TXTOOL_RUN_TTL="0") == "removed 2 environments\n"
    run("txexit")
    assert run.cache_cmd("clean") == "removed 1 environment\n"
    assert run.envs() == [] and run.pointers() == {}
    assert run.cache_cmd("clean") == "removed 0 environments\n"


def test_a_sigkill_while_building_leaves_nothing_a_later_run_uses(run) -> None:
    proc = run.spawn("txexit", "3")
    envs = run.run_dir / "envs"
    run.tx.wait_for(
        lambda: any(envs.glob("*/pyvenv.cfg")) or proc.poll() is not None,
        what="the environment being built",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"the build finished before the kill (exit {proc.returncode})")
    (half,) = run.envs()
    assert run.pointers() == {}  # no run will use it
    # Its uv/pip children died with it: none goes on writing into the half environment.
    run.tx.wait_for(lambda: not _processes_naming(half), timeout=10, what="orphans to die")
    proc = run("txexit", "3", expect=3)
    assert "building an environment" in proc.stderr
    (env,) = run.envs()
    assert env != half  # the half environment was swept, not completed or used
    assert run.pointers()[env.split("-")[0]]["env"] == env


def _processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue  # gone meanwhile
    return found


def test_a_kill_before_the_switch_keeps_the_old_environment_in_use(run) -> None:
    run("txexit")
    (old,) = run.envs()
    # Built completely, then killed at the pointer's rename: the key still names the old one.
    proc = run(
        "txexit",
        TXTOOL_RUN_TTL="0",
        TXENGINE_FAILPOINTS="fs.write@*/run/.*.json.*=kill",
        expect=None,
    )
    assert proc.returncode == -signal.SIGKILL
    assert len(run.envs()) == 2
    (pointer,) = run.pointers().values()
    assert pointer["env"] == old
    assert run("txexit", "5", expect=5).stderr == ""  # the old one, still fresh
    assert run.cache_cmd("prune") == "removed 1 environment\n"
    assert run.envs() == [old]
    assert sorted(p.name for p in run.run_dir.iterdir() if p.name.startswith(".")) == []


SCRIPT = """\
# /// script
# requires-python = ">=3.8"
# dependencies = ["txdemo-helper==2.0"]
# ///
import sys

import txdemo_helper

print("helper", txdemo_helper.VERSION, *sys.argv[1:])
sys.exit(5)
"""


def test_a_pep_723_script_gets_its_dependencies(run, tmp_path) -> None:
    script = tmp_path / "hello.py"
    script.write_text(SCRIPT)
    proc = run(str(script), "a", "--b", expect=5)
    assert proc.stdout == "helper 2.0 a --b\n"
    assert run("--with", "txexit", str(script), expect=5).stdout == "helper 2.0\n"
    assert len(run.envs()) == 2
    plain = tmp_path / "plain.py"
    plain.write_text("import sys; print(sys.prefix == sys.base_prefix); sys.exit(4)\n")
    assert run(str(plain), expect=4).stdout == "True\n"  # no dependencies: no environment


def test_the_pep_723_block_parses_as_the_reference_does() -> None:
    assert script_metadata(SCRIPT) == {
        "requires-python": ">=3.8",
        "dependencies": ["txdemo-helper==2.0"],
    }
    assert script_metadata("print(1)\n") is None
    block = "# /// script\n# dependencies = []\n#\n# [tool.x]\n# y = 1\n# ///\n"
    assert script_metadata("x = 1\n" + block) == {"dependencies": [], "tool": {"x": {"y": 1}}}
    assert script_metadata("# /// script\n#dependencies = []\n# ///\n") is None  # not "# "


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--from", "not a spec!", "x"], USAGE, "invalid requirement"),
        (["../evil"], USAGE, "'../evil'"),
        (["--from", "multitool==1.0", "nope"], USAGE, "`txtool run --from multitool mt-a`"),
        (["nosuchtool"], FAILED, "cannot resolve nosuchtool"),
        (["--python", "/nonexistent/python", "txexit"], USAGE, "/nonexistent/python"),
        ([], USAGE, "name the tool"),
    ],
    ids=["bad-spec", "bad-name", "no-such-executable", "unknown-package", "bad-python", "none"],
)
def test_bad_input_is_one_line_and_leaves_no_environment(run, args, code, expected) -> None:
    proc = run(*args, expect=code)
    assert expected in run.tx.one_error(proc)
    if code == FAILED:
        assert run.envs() == [] and run.pointers() == {}


def test_a_script_that_asks_for_another_python_is_refused(run, tmp_path) -> None:
    script = tmp_path / "future.py"
    script.write_text("# /// script\n# requires-python = '>=9'\n# ///\nprint(1)\n")
    proc = run(str(script), expect=USAGE)
    assert "requires Python >=9" in run.tx.one_error(proc)


def test_a_cache_others_can_write_is_refused(run) -> None:
    run("txexit")
    run.run_dir.chmod(0o777)
    try:
        proc = run("txexit", expect=5)
        assert "writable by other users" in run.tx.one_error(proc)
    finally:
        run.run_dir.chmod(0o755)


def test_ctrl_c_while_building_leaves_nothing(run) -> None:
    proc = run.spawn("txexit", TXENGINE_FAILPOINTS="fs.write@*/run/.*.json.*=sleep:30")
    envs = run.run_dir / "envs"
    run.tx.wait_for(lambda: any(envs.glob("*/bin/txexit")), what="the environment built")
    time.sleep(0.5)  # in the failpoint's sleep, before the switch
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted; nothing was changed" in run.tx.one_error(
        subprocess.CompletedProcess([], 130, "", err)
    )
    assert run.envs() == [] and run.pointers() == {}
