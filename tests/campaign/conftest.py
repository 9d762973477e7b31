"""Fixtures of the txtool campaign: the offline wheelhouse, and the helpers on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from txtool.wheelhouse import build_test_wheelhouse


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_wheelhouse(tmp_path_factory.mktemp("campaign-wheels"))
