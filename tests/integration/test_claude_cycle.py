"""Cycles on the Claude brain through the real fleet: the real anthropic client in every worker,
pointed at a loopback server that speaks the Messages API and the published rules of the models
it answers for (Haiku-class minds, a Sonnet-class synthesis)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import date

import pytest
from sqlalchemy import select

from shared.brain.anthropic import price_usage
from shared.brain.spending import ModelSpend
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger, Dispatch
from shared.db.session import session_scope
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    Received,
    Reply,
    desk_responder,
    json_reply,
    overloaded,
    rate_limited,
    slow,
)
from tests.integration.conftest import Fleet, start_fleet
from workshop import driver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    """The Messages API fake, answering the desk's structured-output requests validly."""
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _plain_responder(claude: FakeAnthropic) -> Iterator[None]:
    claude.respond_with(desk_responder)
    yield
    claude.respond_with(desk_responder)


@pytest.fixture(scope="module")
def claude_fleet(
    tmp_path_factory: pytest.TempPathFactory, redis_port: int, claude: FakeAnthropic
) -> Iterator[Fleet]:
    """Workers thinking with Claude (through the fake) at the default models; the key is a
    throw-away string; a short SDK timeout so a slow reply is a timeout."""
    env = {
        "WORKSHOP_BRAIN": "anthropic",
        "WORKSHOP_ANTHROPIC_BASE_URL": claude.base_url,
        "WORKSHOP_ANTHROPIC_API_KEY": "sk-test-never-logged",
        "WORKSHOP_ANTHROPIC_TIMEOUT_S": "3",
    }
    yield from start_fleet(tmp_path_factory, redis_port, env)


def _cycle(fleet: Fleet, day: date) -> tuple[Dispatch, CycleTrigger]:
    trigger = CycleTrigger(cycle_key=f"claude-{uuid.uuid4().hex[:8]}", as_of=replay_as_of(day))
    driver.send_trigger(fleet.app, trigger)
    return driver.wait_for_dispatch(fleet.db_url, trigger.cycle_key, timeout=120), trigger


def _ledger(fleet: Fleet, cycle_key: str) -> list[ModelSpend]:
    with session_scope(fleet.db_url) as session:
        return list(session.scalars(select(ModelSpend).where(ModelSpend.cycle_key == cycle_key)))


class _Faults:
    """A responder that answers the first requests of a mind (or of the synthesis) with the
    given failures, in order, and every other request as the desk responder does."""

    def __init__(self, **faults: Sequence[Reply]) -> None:
        self.queues = {who: list(replies) for who, replies in faults.items()}
        self.failed = dict.fromkeys(faults, 0)
        self.lock = threading.Lock()

    def __call__(self, request: Received) -> Reply:
        if "body_md" in (request.output_schema.get("properties") or {}):
            who = "synthesis"
        else:
            found = re.search(r"# The (\w+) mind", request.system_text)
            who = found.group(1).lower() if found else "?"
        with self.lock:
            queue = self.queues.get(who)
            if queue:
                self.failed[who] += 1
                return queue.pop(0)
        return desk_responder(request)


def test_claude_cycle_publishes_at_each_models_price_and_a_replay_costs_nothing(
    claude_fleet: Fleet, claude: FakeAnthropic
) -> None:
    """Minds ask Haiku 5.5 and the synthesis Sonnet 5.5; the ledger charges each call at its own
    model's price; the same inputs again make no request and cost nothing."""
    before = claude.request_count
    dispatch, first = _cycle(claude_fleet, date(2016, 5, 2))
    asked = claude.request_count - before
    assert asked >= 4  # three minds and the synthesis
    assert [m.mind for m in dispatch.minds] == ["macro", "flow", "contrarian"]
    assert all(m.status == "ok" for m in dispatch.minds)
    rows = _ledger(claude_fleet, first.cycle_key)
    assert len(rows) == asked
    assert sorted(r.model for r in rows) == ["claude-haiku-5-5"] * 3 + ["claude-sonnet-5-5"]
    for row in rows:
        usage = {
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "cache_read_input_tokens": row.cache_read_tokens,
            "cache_creation_input_tokens": row.cache_write_tokens,
        }
        # Cache writes are all one-hour ones (the TTL the desk asks for).
        assert row.dollars == pytest.approx(price_usage(row.model, usage).dollars)
    assert all("sk-test-never-logged" not in claude_fleet.log(w) for w in ("minds", "synth"))

    before = claude.request_count
    replayed, again = _cycle(claude_fleet, date(2016, 5, 2))
    assert claude.request_count == before
    assert replayed.title == dispatch.title
    assert sum(r.dollars for r in _ledger(claude_fleet, again.cycle_key)) == 0


def test_rate_limit_and_timeout_on_minds_and_overload_on_the_synthesis_still_publish(
    claude_fleet: Fleet, claude: FakeAnthropic
) -> None:
    """A 429 on one mind, a reply slower than the SDK timeout on another, and a 529 then a
    timeout on the synthesis are retried by Celery with backoff; the cycle publishes with every
    mind ok and the model's own words."""
    late = json_reply({"stance": "neutral", "confidence": 0.3, "argument": "x" * 60})
    faults = _Faults(
        macro=[rate_limited(retry_after=1)],
        flow=[slow(late, 5.0)],
        synthesis=[overloaded(), slow(late, 5.0)],
    )
    claude.respond_with(faults)
    dispatch, _ = _cycle(claude_fleet, date(2016, 5, 3))
    assert faults.failed == {"macro": 1, "flow": 1, "synthesis": 2}
    assert all(m.status == "ok" for m in dispatch.minds)
    assert "The model was unavailable" not in dispatch.body_md
    assert dispatch.title == "A Plain Dispatch From the Fake Model"


def test_an_overloaded_synthesis_whose_retries_are_spent_publishes_and_says_so(
    claude_fleet: Fleet, claude: FakeAnthropic
) -> None:
    """With the synthesis overloaded through every retry, the dispatch is still published, in
    the deterministic writer's words, and says the model was unavailable."""
    faults = _Faults(synthesis=[overloaded()] * 100)
    claude.respond_with(faults)
    dispatch, _ = _cycle(claude_fleet, date(2016, 5, 4))
    assert faults.failed == {"synthesis": 4}  # the first try and three retries
    assert "The model was unavailable" in dispatch.body_md
    assert "529 overloaded_error" in dispatch.body_md
