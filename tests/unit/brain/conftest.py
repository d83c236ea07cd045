"""Fixtures for the Claude brain: the loopback Messages API fake, a migrated database, a cycle."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import anthropic
import pytest

from shared.brain.anthropic import AnthropicBrain, BrainConfig
from shared.brain.prompting import Rule
from shared.brain.spending import Caps
from shared.contracts import CycleContext
from shared.db.session import migrate
from tests.fakes.anthropic_server import FakeAnthropic
from tests.unit.brain.cases import (
    API_KEY,
    MIND_MODEL,
    NOW,
    SYNTHESIS_MODEL,
    BrainMaker,
    make_context,
)

GENEROUS = Caps(per_cycle=1.0, per_day=20.0)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/brain.db"
    migrate(url)
    return url


@pytest.fixture
def make_brain(fake: FakeAnthropic, db_url: str) -> Iterator[BrainMaker]:
    clients: list[anthropic.Anthropic] = []

    def make(
        *,
        rules: Sequence[Rule] = (),
        caps: Caps = GENEROUS,
        timeout_s: float = 5.0,
    ) -> AnthropicBrain:
        client = anthropic.Anthropic(
            api_key=API_KEY, base_url=fake.base_url, max_retries=0, timeout=timeout_s
        )
        clients.append(client)
        config = BrainConfig(
            mind_model=MIND_MODEL,
            synthesis_model=SYNTHESIS_MODEL,
            max_tokens=4000,
            synthesis_max_tokens=6000,
            timeout_s=timeout_s,
            caps=caps,
        )
        return AnthropicBrain(client, config, db_url=db_url, rules=rules, clock=lambda: NOW)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def context() -> CycleContext:
    return make_context()
