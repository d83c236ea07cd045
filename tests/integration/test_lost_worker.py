"""A worker process killed in the middle of a mind's task: the task is redelivered, the chord
completes, and the cycle still has exactly one dispatch."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db.models import DispatchRecord, MindRecord
from shared.db.session import session_scope
from tests.integration.conftest import Fleet, start_fleet
from workshop import driver, stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slow_fleet(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Fleet]:
    """Minds that take three seconds each, long enough to kill one while it thinks."""
    yield from start_fleet(tmp_path_factory, redis_port, {"WORKSHOP_CHAOS_MIND_DELAY_S": "3"})


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def test_killed_mind_process_is_redelivered_and_publishes_once(slow_fleet: Fleet) -> None:
    """SIGKILL of a pool process running a mind requeues its task; one dispatch, all minds ok."""
    state = stack.read_state(slow_fleet.settings)
    assert state is not None
    minds_worker = state.workers["minds"]
    trigger = CycleTrigger(
        cycle_key=f"kill-{uuid.uuid4().hex[:8]}", as_of=replay_as_of(date(2016, 3, 10))
    )
    driver.send_trigger(slow_fleet.app, trigger)
    time.sleep(1.5)  # the three minds are inside their three-second wait now
    victims = _children(minds_worker)
    assert victims, "the minds worker has pool processes"
    os.kill(victims[0], signal.SIGKILL)
    dispatch = driver.wait_for_dispatch(slow_fleet.db_url, trigger.cycle_key, timeout=90)
    assert [m.status for m in dispatch.minds] == ["ok", "ok", "ok"]
    with session_scope(slow_fleet.db_url) as session:
        for model, expected in ((DispatchRecord, 1), (MindRecord, 3)):
            count = session.scalar(
                select(func.count()).select_from(model).where(model.cycle_key == trigger.cycle_key)
            )
            assert count == expected
    assert "WorkerLostError" in slow_fleet.log("minds") or "SIGKILL" in slow_fleet.log("minds")
