"""Cycles on the Claude brain through the real fleet: the real anthropic client in every worker,
pointed at a loopback server that speaks the Messages API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, select

from shared.brain.spending import ModelSpend
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db.session import session_scope
from tests.fakes.anthropic_server import FakeAnthropic
from tests.integration.conftest import Fleet, start_fleet
from workshop import driver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    """The Messages API fake, answering every forced tool with a valid reply."""
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def claude_fleet(
    tmp_path_factory: pytest.TempPathFactory, redis_port: int, claude: FakeAnthropic
) -> Iterator[Fleet]:
    """Workers thinking with Claude (through the fake); the key is a throw-away string."""
    env = {
        "WORKSHOP_BRAIN": "anthropic",
        "WORKSHOP_ANTHROPIC_BASE_URL": claude.base_url,
        "WORKSHOP_ANTHROPIC_API_KEY": "sk-test-never-logged",
    }
    yield from start_fleet(tmp_path_factory, redis_port, env)


def test_claude_cycle_publishes_and_a_replayed_cycle_costs_nothing(
    claude_fleet: Fleet, claude: FakeAnthropic
) -> None:
    """A cycle asks the model for each mind and the synthesis; the same inputs again ask nothing."""
    as_of = replay_as_of(date(2016, 5, 2))
    first = CycleTrigger(cycle_key=f"claude-{uuid.uuid4().hex[:8]}", as_of=as_of)
    before = claude.request_count
    driver.send_trigger(claude_fleet.app, first)
    dispatch = driver.wait_for_dispatch(claude_fleet.db_url, first.cycle_key, timeout=90)
    asked = claude.request_count - before
    assert asked >= 4  # three minds and the synthesis
    assert [m.mind for m in dispatch.minds] == ["macro", "flow", "contrarian"]
    assert all(m.status == "ok" for m in dispatch.minds)
    with session_scope(claude_fleet.db_url) as session:
        spent = session.scalar(
            select(func.count())
            .select_from(ModelSpend)
            .where(ModelSpend.cycle_key == first.cycle_key)
        )
    assert spent == asked
    assert all("sk-test-never-logged" not in claude_fleet.log(w) for w in ("minds", "synth"))

    again = CycleTrigger(cycle_key=f"claude-{uuid.uuid4().hex[:8]}", as_of=as_of)
    before = claude.request_count
    driver.send_trigger(claude_fleet.app, again)
    replayed = driver.wait_for_dispatch(claude_fleet.db_url, again.cycle_key, timeout=90)
    assert claude.request_count == before
    assert replayed.title == dispatch.title
