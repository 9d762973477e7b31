"""Shared pytest configuration.

Tests marked ``@pytest.mark.network`` touch the real package index. They are opt-in: skipped unless
pytest runs with ``--run-network`` or the environment sets ``TXTOOL_NETWORK_TESTS=1``.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-network",
        action="store_true",
        default=False,
        help="run tests marked 'network' (they touch the real package index)",
    )


def _network_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-network")) or os.environ.get("TXTOOL_NETWORK_TESTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _network_enabled(config):
        return
    skip = pytest.mark.skip(reason="network test: pass --run-network or set TXTOOL_NETWORK_TESTS=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)
