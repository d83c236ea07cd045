"""Producing cycles and reading their results: what the command line (and any producer) does
through the broker and the database, never by calling a service directly."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from celery import Celery
from celery.result import AsyncResult
from sqlalchemy import select

from shared import records, tasknames
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger, Dispatch, LearnedRule, OperatorNote, TrackRecord
from shared.db.models import Cycle, DispatchRecord
from shared.db.session import session_scope
from shared.errors import WorkshopError
from shared.market.opening import replay_market
from shared.records import AgainstBaselines, track_record
from workshop.web import reading
from workshop.web.schema import DispatchList, DispatchView


class CycleTimeout(WorkshopError):
    """A cycle did not publish within its deadline (a worker is down, or the queue is stuck)."""


class CycleRejected(WorkshopError):
    """The worker refused the cycle's trigger (a malformed message, a bad replay directory)."""


def producer(broker_url: str) -> Celery:
    """A bare client app: it sends tasks by name and reads results, importing no service code."""
    app = Celery("workshop-client", broker=broker_url, backend=broker_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_routes=(lambda name, *a, **k: {"queue": tasknames.queue_for(name)},),
        broker_connection_retry_on_startup=True,
        # A producer facing a dead broker gives up within seconds with an error the command line
        # can print, instead of retrying for half a minute.
        broker_connection_timeout=3,
        broker_connection_max_retries=2,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 1,
            "interval_max": 1,
        },
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 10},
        redis_socket_connect_timeout=3,
        redis_socket_timeout=10,
        result_backend_transport_options={
            "retry_policy": {
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 1,
                "interval_max": 1,
            },
        },
    )
    return app


def close_producer(app: Celery) -> None:
    """Release every connection a producer opened: the result subscriber, the result client and
    the broker pool (Celery's close() leaves the first two to the garbage collector)."""
    backend = app.backend
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None:
        consumer.stop()
        # A result object collected later unsubscribes in its __del__, reconnecting to a broker
        # that may be gone; with nothing left subscribed there is nothing for it to do.
        subscribed = getattr(consumer, "subscribed_to", None)
        if subscribed is not None:
            subscribed.clear()
    client = getattr(backend, "client", None)
    if client is not None:
        client.close()
        client.connection_pool.disconnect()
    app.close()


def send_trigger(app: Celery, trigger: CycleTrigger) -> str:
    """Put a cycle trigger on the ingest queue; returns the task id."""
    result = app.send_task(tasknames.START_CYCLE, args=[trigger.model_dump(mode="json")])
    return str(result.id)


def post_note(app: Celery, note: OperatorNote, timeout: float = 60) -> dict[str, Any]:
    """Send an operator's note to the ingest queue and wait until it is in the inbox."""
    result = app.send_task(tasknames.POST_NOTE, args=[note.model_dump(mode="json")])
    answer = result.get(timeout=timeout)
    result.forget()
    return dict(answer)


def settle_via_queue(app: Celery, now: datetime | None, timeout: float = 120) -> dict[str, Any]:
    """Ask the resolver workers to settle what matured by now, and wait for their answer."""
    kwargs = {"now": now.isoformat()} if now else {}
    result = app.send_task(tasknames.SETTLE, kwargs=kwargs)
    answer = result.get(timeout=timeout)
    result.forget()
    return dict(answer)


def wait_for_dispatch(
    db_url: str, cycle_key: str, timeout: float = 120, *, trigger_task: AsyncResult | None = None
) -> Dispatch:
    """Poll the database until the cycle's dispatch exists.

    Given the trigger's task, fail at once when the worker rejected it (its result carries the
    worker's reason), instead of waiting out the timeout for a dispatch that will never come.
    """
    deadline = time.monotonic() + timeout
    pause = 0.02
    while time.monotonic() < deadline:
        found = last_dispatch(db_url, cycle_key=cycle_key)
        if found is not None:
            return found
        if trigger_task is not None and trigger_task.state == "FAILURE":
            raise CycleRejected(f"the worker rejected cycle {cycle_key}: {trigger_task.result}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)
    raise CycleTimeout(f"no dispatch for cycle {cycle_key} within {timeout:.0f}s")


def last_dispatch(db_url: str, *, cycle_key: str | None = None) -> Dispatch | None:
    with session_scope(db_url) as session:
        query = select(DispatchRecord)
        if cycle_key is not None:
            query = query.where(DispatchRecord.cycle_key == cycle_key)
        query = query.order_by(DispatchRecord.as_of.desc(), DispatchRecord.id.desc()).limit(1)
        row = session.scalar(query)
        return Dispatch.model_validate(row.payload) if row else None


def dispatch_list(db_url: str, page: int = 1, per_page: int = 20) -> DispatchList:
    """A page of dispatches, newest first, each with its call's status."""
    with session_scope(db_url) as session:
        return reading.list_dispatches(session, page, per_page)


def dispatch_by_number(db_url: str, number: int) -> DispatchView | None:
    """One dispatch by its permanent number (the one in its web address)."""
    with session_scope(db_url) as session:
        return reading.dispatch_view(session, number)


def cycle_count(db_url: str) -> int:
    with session_scope(db_url) as session:
        return len(session.scalars(select(Cycle.id)).all())


def rule_book(db_url: str) -> tuple[LearnedRule, ...]:
    """The learned rules as the latest cycle stored them (retired ones included)."""
    from shared.db import record as desk_state

    with session_scope(db_url) as session:
        return desk_state.load_state(session).rules


def record(db_url: str) -> TrackRecord:
    with session_scope(db_url) as session:
        return track_record(session, detail=True)


def against_baselines(db_url: str) -> list[AgainstBaselines]:
    """Each source's settled calls against the base rate, the naive model and the majority."""
    with session_scope(db_url) as session:
        return records.against_baselines(session)


def replay_label(data_dir: Path | None) -> str:
    """A short stable name for a replay directory, part of its cycle keys."""
    if data_dir is None:
        return "sample"
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"{data_dir.resolve().name[:24]}-{digest}"


def replay_key(label: str, day: date) -> str:
    return f"replay:{label}:{day.isoformat()}"


@dataclass(frozen=True)
class ReplayStep:
    day: date
    dispatch: Dispatch
    settled: int


def replay(
    app: Celery,
    db_url: str,
    data_dir: Path | None,
    start: date,
    end: date,
    *,
    timeout: float = 120,
    on_step: Callable[[ReplayStep], None] | None = None,
) -> Iterator[ReplayStep]:
    """Replay each trading day through the fleet, in order, on the replay clock.

    Before each day's cycle the resolver settles what matured by that day's as_of, so the
    synthesis weighs the minds by a record that includes yesterday's calls and nothing later.
    """
    market = replay_market(str(data_dir) if data_dir else None)
    label = replay_label(data_dir)
    for day in market.require_sessions(start, end):
        as_of = replay_as_of(day)
        answer = settle_via_queue(app, as_of, timeout)
        trigger = CycleTrigger(
            cycle_key=replay_key(label, day),
            as_of=as_of,
            mode="replay",
            data_dir=str(data_dir.resolve()) if data_dir else None,
        )
        send_trigger(app, trigger)
        dispatch = wait_for_dispatch(db_url, trigger.cycle_key, timeout)
        step = ReplayStep(day, dispatch, int(answer.get("settled", 0)))
        if on_step is not None:
            on_step(step)
        yield step
