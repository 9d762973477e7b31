"""Fixtures for the engine tests: both anyio backends, failpoints reset after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from txengine import _failpoints as failpoints


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _failpoints_off() -> Iterator[None]:
    failpoints.configure(None)
    yield
    failpoints.configure(None)
