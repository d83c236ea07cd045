"""Fixtures for the live-source tests: loopback fakes, and yfinance kept out of the home folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yfinance as yf

# tests/ is not an installed package: make `tests.fakes` importable however pytest is started.
ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.http import FakeServer, serve  # noqa: E402 - needs the path above


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    """A scripted HTTP server on a free loopback port."""
    with serve() as server:
        yield server


@pytest.fixture(autouse=True, scope="session")
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """yfinance caches time zones in a SQLite file under the user's cache folder: use a temp one."""
    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance")))


@pytest.fixture(autouse=True)
def _fresh_yfinance_session() -> Iterator[None]:
    """yfinance keeps one cookie and crumb per process; each test's fake must mint its own."""
    from yfinance.data import SingletonMeta, YfData

    SingletonMeta._instances.pop(YfData, None)
    yield
    SingletonMeta._instances.pop(YfData, None)
