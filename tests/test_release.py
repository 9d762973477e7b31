"""The two distributions are released together: txtool pins the engine it was tested with."""

from __future__ import annotations

import tomllib
from pathlib import Path

import txengine
import txtool

ROOT = Path(__file__).resolve().parents[1]


def test_txtool_pins_exactly_the_engine_in_this_tree() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d.split("#")[0].strip() for d in deps if d.startswith("txtool-engine")]
    assert pins == [f"txtool-engine=={txengine.__version__}"]


def test_versions_are_written_in_one_place_each() -> None:
    for pyproject in (ROOT / "pyproject.toml", ROOT / "engine" / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        assert "version" not in project and project["dynamic"] == ["version"]
    assert txtool.__version__ == txengine.__version__  # released together
