"""Fixtures shared by the replay and feature tests: the shipped sample, loaded once per session."""

from __future__ import annotations

import pytest

from shared.market import ReplayData, ReplayMarket, load_replay, sample_data_dir


@pytest.fixture(scope="session")
def sample() -> ReplayData:
    return load_replay(sample_data_dir())


@pytest.fixture(scope="session")
def market(sample: ReplayData) -> ReplayMarket:
    return ReplayMarket(sample)
