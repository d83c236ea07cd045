"""A fleet beyond one process per queue, on PostgreSQL: 200 cycles, twenty at a time, a
duplicate trigger in every wave and the database restarted under load; then three settles at
once. No dispatch is lost or doubled, no call is judged twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db.models import Cycle, DispatchRecord, MindRecord, PredictionRecord
from shared.db.session import session_scope
from shared.market.opening import replay_market
from tests.integration.conftest import Fleet, Postgres, start_fleet
from workshop import driver, stack

pytestmark = [pytest.mark.integration, pytest.mark.drill, pytest.mark.timeout(600)]

CYCLES = 200
WAVE = 20
# One more worker process for every queue, and two more resolvers (three settle at once).
EXTRA = {"ingest2": "ingest", "minds2": "minds.macro,minds.flow,minds.contrarian",
         "synth2": "synth", "resolver2": "resolver", "resolver3": "resolver"}  # fmt: skip


@pytest.fixture(scope="module")
def big_fleet(
    tmp_path_factory: pytest.TempPathFactory, redis_port: int, postgres_url: str
) -> Iterator[Fleet]:
    """The usual fleet on PostgreSQL plus a second worker process on every queue."""
    for fleet in start_fleet(tmp_path_factory, redis_port, database_url=postgres_url):
        state = stack.read_state(fleet.settings)
        assert state is not None
        env = stack.child_env(state, {"WORKSHOP_LOG_FORMAT": "json"})
        run = stack.run_dir(fleet.home)
        pids = {}
        for name, queues in EXTRA.items():
            command = stack.worker_command(name, queues.split(","), 2, pidfile=run / f"{name}.pid")
            pids[name] = stack.spawn(command, fleet.home / "logs" / f"{name}.log", env).pid
        stack.wait_for_workers(state.broker_url, {**state.workers, **pids}, fleet.home / "logs")
        yield fleet


def _published(db_url: str, keys: list[str]) -> set[str]:
    """Keys with a dispatch; an unreachable database (restarting) counts as none yet."""
    try:
        with session_scope(db_url) as session:
            found = session.scalars(
                select(DispatchRecord.cycle_key).where(DispatchRecord.cycle_key.in_(keys))
            ).all()
    except OperationalError:
        return set()
    return set(found)


def _wait_all(db_url: str, keys: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _published(db_url, keys) == set(keys):
            return
        time.sleep(0.5)
    missing = set(keys) - _published(db_url, keys)
    pytest.fail(f"{len(missing)} cycles without a dispatch after {timeout}s: {sorted(missing)[:5]}")


def test_two_hundred_cycles_on_many_workers_publish_exactly_once(
    big_fleet: Fleet, postgres: Postgres
) -> None:
    """200 cycles in waves of twenty over two worker processes per queue, a duplicate trigger
    per wave, PostgreSQL stopped for five seconds mid-run: exactly one dispatch and three minds
    per cycle; then three parallel settles judge each matured call once between them."""
    days = replay_market(None).sessions(date(2012, 1, 3), date(2013, 12, 31))[:CYCLES]
    assert len(days) == CYCLES
    keys = [f"scale:{day.isoformat()}" for day in days]
    started = time.monotonic()
    for wave in range(0, CYCLES, WAVE):
        batch = list(zip(keys[wave : wave + WAVE], days[wave : wave + WAVE], strict=True))
        for key, day in batch:
            driver.send_trigger(big_fleet.app, CycleTrigger(cycle_key=key, as_of=replay_as_of(day)))
        again = CycleTrigger(cycle_key=batch[0][0], as_of=replay_as_of(batch[0][1]))
        driver.send_trigger(big_fleet.app, again)
        if wave == 3 * WAVE:
            time.sleep(1.0)  # the wave is in flight: claims, minds, syntheses
            postgres.stop()
            time.sleep(5)
            postgres.start()
        _wait_all(big_fleet.db_url, [k for k, _ in batch], timeout=240)
    seconds = time.monotonic() - started
    print(f"{CYCLES} cycles in {seconds:.1f}s on two processes per queue")
    with session_scope(big_fleet.db_url) as session:
        for model, per_cycle in ((Cycle, 1), (DispatchRecord, 1), (MindRecord, 3)):
            rows = session.execute(
                select(model.cycle_key, func.count())
                .where(model.cycle_key.in_(keys))
                .group_by(model.cycle_key)
            ).all()
            assert len(rows) == CYCLES, model.__name__
            assert {count for _, count in rows} == {per_cycle}, model.__name__
    # Three settles at once, on three resolver processes: each call is judged by one of them.
    now = replay_as_of(days[-1]) + timedelta(days=3)
    results = [
        big_fleet.app.send_task("resolver.settle", kwargs={"now": now.isoformat()})
        for _ in range(3)
    ]
    answers = [r.get(timeout=240) for r in results]
    with session_scope(big_fleet.db_url) as session:
        settled = session.scalar(
            select(func.count())
            .select_from(PredictionRecord)
            .where(PredictionRecord.cycle_key.in_(keys), PredictionRecord.status != "open")
        )
    assert settled
    assert sum(a["settled"] for a in answers) == settled
    assert sorted(a["settled"] for a in answers)[:2] == [0, 0]
