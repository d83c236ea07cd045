"""The fleet on PostgreSQL, the database a fleet on several machines would share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, select

from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db.models import Cycle, DispatchRecord
from shared.db.session import session_scope
from tests.integration.conftest import Fleet, start_fleet
from workshop import driver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_fleet(
    tmp_path_factory: pytest.TempPathFactory, redis_port: int, postgres_url: str
) -> Iterator[Fleet]:
    """Worker processes whose database is a real PostgreSQL server."""
    yield from start_fleet(tmp_path_factory, redis_port, database_url=postgres_url)


def test_cycles_on_postgres_publish_once_per_key(pg_fleet: Fleet) -> None:
    """On PostgreSQL a twice-sent trigger still makes one cycle and one dispatch."""
    trigger = CycleTrigger(
        cycle_key=f"pg-{uuid.uuid4().hex[:8]}", as_of=replay_as_of(date(2016, 4, 1))
    )
    driver.send_trigger(pg_fleet.app, trigger)
    driver.send_trigger(pg_fleet.app, trigger)
    dispatch = driver.wait_for_dispatch(pg_fleet.db_url, trigger.cycle_key, timeout=60)
    assert dispatch.cycle_number >= 1
    assert pg_fleet.db_url.startswith("postgresql")
    with session_scope(pg_fleet.db_url) as session:
        for model in (Cycle, DispatchRecord):
            count = session.scalar(
                select(func.count()).select_from(model).where(model.cycle_key == trigger.cycle_key)
            )
            assert count == 1
