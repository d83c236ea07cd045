"""The fleet on PostgreSQL, the database a fleet on several machines would share."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from services.ingest import cycle as cycles
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db.aggregates import ReplayMoment
from shared.db.models import Cycle, DispatchRecord
from shared.db.session import engine_for, migrate, session_scope
from shared.db.turns import turn
from shared.market.opening import replay_market
from shared.records import cycle_number
from tests.integration.conftest import Fleet, start_fleet
from workshop import driver

pytestmark = pytest.mark.integration

START = datetime(2016, 1, 4, 21, tzinfo=UTC)


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


def test_replay_days_claimed_at_once_on_postgres_are_numbered_by_as_of(postgres_url: str) -> None:
    """Cycles of one replay inserted concurrently, out of order, by separate connections still
    number each moment 1.. in as_of order (writers of a replay take turns)."""
    migrate(postgres_url)
    data_dir = f"/replay-{uuid.uuid4().hex[:8]}"
    rng = random.Random(4)
    days = [START + timedelta(days=rng.randrange(30)) for _ in range(48)]

    def insert(n: int) -> None:
        with session_scope(postgres_url) as session:
            session.add(Cycle(cycle_key=f"{data_dir}:{n}", as_of=days[n], mode="replay",
                              data_dir=data_dir))  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(insert, range(len(days))))
    with session_scope(postgres_url) as session:
        placed = session.execute(
            select(ReplayMoment.as_of, ReplayMoment.number).where(ReplayMoment.data_dir == data_dir)
        ).all()
        cycles = session.scalars(select(Cycle).where(Cycle.data_dir == data_dir)).all()
        numbers = {c.as_of: cycle_number(session, c) for c in cycles}
    ordered = sorted(set(days))
    assert sorted(placed) == [(a, i + 1) for i, a in enumerate(ordered)]
    assert numbers == {a: i + 1 for i, a in enumerate(ordered)}


def test_a_turn_on_postgres_is_held_across_connections_until_let_go(postgres_url: str) -> None:
    """The synthesis' turn on PostgreSQL: a second holder waits (seen waiting in pg_locks) and
    goes in once the first lets go; a wait past its bound goes on without the turn."""
    name = f"synthesis state {uuid.uuid4().hex[:8]}"
    events: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with turn(postgres_url, name, wait_s=10) as had:
            events.append(f"first in {had}")
            inside.set()
            release.wait(10)
            events.append("first out")

    def second() -> None:
        with turn(postgres_url, name, wait_s=10) as had:
            events.append(f"second in {had}")

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(10)
    with turn(postgres_url, name, wait_s=0.2) as had:
        assert not had  # bounded: the first still holds it
    waiter = threading.Thread(target=second)
    waiter.start()
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    for _ in range(500):
        with engine_for(postgres_url).connect() as connection:
            if connection.scalar(waiting):
                break
        time.sleep(0.01)
    else:
        pytest.fail("the second holder never waited for the turn")
    release.set()
    holder.join(10)
    waiter.join(10)
    assert events == ["first in True", "first out", "second in True"]


def test_replay_days_claimed_at_once_by_the_ingest_on_postgres_are_numbered_by_as_of(
    postgres_url: str,
) -> None:
    """The ingest's claim (its row written without the ORM, its moment placed by itself) keeps
    the numbering when many claims of one replay run at once, out of order, some days twice."""
    migrate(postgres_url)
    market = replay_market(None)
    days = market.sessions(date(2016, 1, 4), date(2016, 2, 26))
    rng = random.Random(9)
    picked = [rng.choice(days) for _ in range(32)]
    prefix = f"pg-claim-{uuid.uuid4().hex[:8]}"
    # The bundled replay (data_dir NULL) is shared with the other tests of this database: its
    # moments are compared after the ones already held.
    with session_scope(postgres_url) as session:
        before = {a for (a,) in session.execute(
            select(ReplayMoment.as_of).where(ReplayMoment.data_dir.is_(None)))}  # fmt: skip

    def claim_one(n: int) -> None:
        trigger = CycleTrigger(cycle_key=f"{prefix}:{n}", as_of=replay_as_of(picked[n]))
        snapshot = market.snapshot(trigger)
        with session_scope(postgres_url) as session:
            assert cycles.claim(session, trigger, snapshot, market.features(snapshot))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(claim_one, range(len(picked))))
    ordered = sorted(before | {replay_as_of(d) for d in picked})
    with session_scope(postgres_url) as session:
        placed = session.execute(
            select(ReplayMoment.as_of, ReplayMoment.number).where(ReplayMoment.data_dir.is_(None))
        ).all()
        claimed = session.scalars(select(Cycle).where(Cycle.cycle_key.startswith(prefix))).all()
        numbers = {c.as_of: cycle_number(session, c) for c in claimed}
    assert sorted(placed) == [(a, i + 1) for i, a in enumerate(ordered)]
    assert len(claimed) == len(picked)
    assert numbers == {a: ordered.index(a) + 1 for a in numbers}


def test_the_record_kept_in_a_process_is_the_databases_on_postgres(postgres_url: str) -> None:
    """The aggregates and state a process keeps follow its own writes and are read again after
    another process's, on PostgreSQL too (its own database: no other test writes there)."""
    from sqlalchemy import create_engine, text

    from tests.unit.test_incremental_record import kept_copy_follows_every_writer

    name = f"kept_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    kept_copy_follows_every_writer(url)
