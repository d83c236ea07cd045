"""A message that kills its worker process every time is run twice, then dead-lettered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from shared import deadletters
from tests.integration.conftest import Fleet, start_fleet
from workshop import stack

pytestmark = [pytest.mark.integration, pytest.mark.drill, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def killing_fleet(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Fleet]:
    """A fleet whose flow mind kills its own pool process on every message (a fire drill)."""
    yield from start_fleet(tmp_path_factory, redis_port, {"WORKSHOP_CHAOS_KILL_MINDS": "flow"})


def test_a_message_that_kills_its_worker_twice_is_dead_lettered(killing_fleet: Fleet) -> None:
    """The second death ends the redeliveries: the message is a dead letter with its reason, the
    queue is empty, and the minds worker is still up."""
    result = killing_fleet.app.send_task("minds.flow", args=[{}])
    client = redis.Redis.from_url(killing_fleet.settings.resolved_broker_url())
    try:
        deadline = time.monotonic() + 60
        letter = None
        while letter is None and time.monotonic() < deadline:
            letter = next(
                (x for x in deadletters.letters(client, 100) if x.task_id == result.id), None
            )
            time.sleep(0.2)
        assert letter is not None, "no dead letter within 60s"
        assert "delivered 3 times and never finished" in letter.reason
        assert letter.task == "minds.flow"
        time.sleep(2)
        assert client.llen("minds.flow") == 0
        assert client.hlen("unacked") == 0
    finally:
        client.close()
    log = killing_fleet.log("minds")
    assert log.count("WorkerLostError") + log.count("SIGKILL") >= 2
    assert stack.status(killing_fleet.settings)["minds"]
