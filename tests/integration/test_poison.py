"""Poison messages against real worker processes: refused, logged, acknowledged, dead-lettered;
no worker dies and nothing stored changes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu.messaging import Producer
from sqlalchemy import func, select

from shared import deadletters
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db.models import Base
from shared.db.session import session_scope
from shared.market.replay import sample_data_dir
from tests.integration.conftest import Fleet
from workshop import driver, stack

pytestmark = pytest.mark.integration

WORKERS = ("ingest", "minds", "synth", "resolver")
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _counts(db_url: str) -> dict[str, int]:
    with session_scope(db_url) as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


def _letters(fleet: Fleet) -> list[deadletters.DeadLetter]:
    client = redis.Redis.from_url(fleet.settings.resolved_broker_url())
    try:
        return deadletters.letters(client, 1000)
    finally:
        client.close()


def _publish(fleet: Fleet, queue: str, body: Any, **options: Any) -> str:
    """Publish a raw message, as a producer outside the desk (or an attacker) could."""
    task_id = str(options.pop("task_id", uuid.uuid4()))
    headers = options.pop("headers", {"task": "ingest.start_cycle", "id": task_id})
    with fleet.app.connection_for_write() as connection:
        Producer(connection).publish(body, routing_key=queue, headers=headers, **options)
    return task_id


def _wait_letter(fleet: Fleet, task_id: str, timeout: float = 30) -> deadletters.DeadLetter:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for letter in _letters(fleet):
            if letter.task_id == task_id:
                return letter
        time.sleep(0.1)
    pytest.fail(f"no dead letter for {task_id} within {timeout}s")


def _rejections(fleet: Fleet, worker: str) -> list[dict[str, Any]]:
    found = []
    for line in fleet.log(worker).splitlines():
        if line.startswith("{") and '"cycle.rejected"' in line:
            found.append(json.loads(line))
    return found


def _assert_alive(fleet: Fleet) -> None:
    alive = stack.status(fleet.settings)
    assert all(alive[name] for name in WORKERS), alive
    replies = fleet.app.control.ping(timeout=2) or []
    names = {name.split("@", 1)[0] for reply in replies for name in reply}
    assert set(WORKERS) <= names


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def test_poison_messages_are_dead_lettered_and_workers_survive(fleet: Fleet) -> None:
    """Deep, wrong-shaped, pickled and headerless messages are refused with a reason, listed by
    `workshop dead-letters`, never redelivered; every worker lives and nothing is stored."""
    before = _counts(fleet.db_url)
    deep_trigger = fleet.app.send_task(
        "ingest.start_cycle", args=[{"cycle_key": _deep(500), "as_of": "2016-03-01T17:30:00Z"}]
    ).id
    deep_settle = fleet.app.send_task("resolver.settle", kwargs={"now": _deep(500)}).id
    wrong_shape = _publish(fleet, "ingest", {"a": 1})
    pickled = _publish(
        fleet, "synth", b"\x80\x04K\x01.", content_type="application/x-python-serialize",
        content_encoding="binary", headers={"task": "synth.synthesize", "id": "pickled-1"},
        task_id="pickled-1",
    )  # fmt: skip
    reasons = {
        deep_trigger: "levels deep",
        deep_settle: "levels deep",
        wrong_shape: "must be [args, kwargs, embed]",
        pickled: "only application/json",
    }
    for task_id, reason in reasons.items():
        assert reason in _wait_letter(fleet, task_id).reason
    keyed = _publish(
        fleet, "ingest", [[{"cycle_key": "poison-key-1", "as_of": 0}], {}], task_id="keyed-1"
    )
    assert _wait_letter(fleet, keyed).cycle_key == "poison-key-1"
    logged = {entry.get("task_id"): entry for entry in _rejections(fleet, "ingest")}
    assert logged[keyed]["cycle_key"] == "poison-key-1"
    assert "levels deep" in logged[deep_trigger]["reason"]
    # Bytes that are not a kombu envelope at all, pushed straight onto the queue's list.
    raw = redis.Redis.from_url(fleet.settings.resolved_broker_url())
    try:
        for junk_item in (b"not json", b'{"body": "x", "headers": 5}', b"[1, 2, 3]"):
            raw.lpush("ingest", junk_item)
    finally:
        raw.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        dropped = [x for x in _letters(fleet) if "unreadable message envelope" in x.reason]
        if len(dropped) >= 3:
            break
        time.sleep(0.1)
    assert len(dropped) >= 3
    time.sleep(1.5)  # a requeued message would be back within this
    _assert_alive(fleet)
    # Acknowledged: none of them is waiting on a queue or in the unacknowledged set.
    client = redis.Redis.from_url(fleet.settings.resolved_broker_url())
    try:
        assert all(client.llen(q) == 0 for q in ("ingest", "synth", "resolver"))
        assert client.hlen("unacked") == 0
    finally:
        client.close()
    assert _counts(fleet.db_url) == before
    env = {**os.environ, "WORKSHOP_BROKER_URL": fleet.settings.resolved_broker_url()}
    listed = subprocess.run(
        [sys.executable, "-m", "workshop.cli", "dead-letters", "--json", "--limit", "1000"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    ids = {json.loads(line)["task_id"] for line in listed.stdout.splitlines()}
    assert set(reasons) | {keyed} <= ids
    # The fleet still works after all that.
    trigger = CycleTrigger(
        cycle_key=f"after-poison-{uuid.uuid4().hex[:6]}", as_of=replay_as_of(date(2016, 3, 7))
    )
    driver.send_trigger(fleet.app, trigger)
    driver.wait_for_dispatch(fleet.db_url, trigger.cycle_key, timeout=90)


texts = st.text(max_size=40)
moments = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    texts,
    st.sampled_from(["9999-12-31T00:00:00+00:00", "2999-01-01", "2016-03-01T17:30:00", "0"]),
    st.lists(st.integers(), max_size=3),
    st.none(),
)
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
triggers = st.one_of(
    junk,
    st.fixed_dictionaries(
        {"cycle_key": st.one_of(texts, junk), "as_of": moments},
        optional={"mode": st.one_of(texts, junk), "data_dir": st.one_of(texts, junk), "x": junk},
    ),
)
notes = st.one_of(
    junk,
    st.fixed_dictionaries(
        {"author": st.one_of(texts, junk), "posted_at": moments, "text": st.one_of(texts, junk)}
    ),
)
snapshots = st.one_of(
    junk,
    st.fixed_dictionaries(
        {"cycle_number": junk, "snapshot": st.one_of(junk, st.fixed_dictionaries(
            {"cycle_key": texts, "as_of": moments, "quotes": junk})), "features": junk,
         "record": junk}
    ),
)  # fmt: skip
_serial = itertools.count()


def _outcome(result: Any) -> tuple[str, str]:
    try:
        return "ok", json.dumps(result.get(timeout=60))
    except Exception as error:  # the task's own failure, re-raised by the result
        return "refused", str(error)


def _check_refused(fleet: Fleet, worker: str, task_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(e.get("task_id") == task_id for e in _rejections(fleet, worker)):
            return
        time.sleep(0.05)
    pytest.fail(f"task {task_id} failed without a cycle.rejected line in {worker}.log")


@PROPERTY
@given(payload=triggers)
def test_any_trigger_is_launched_or_refused_with_a_logged_reason(
    fleet: Fleet, payload: Any
) -> None:
    """A trigger of any shape either starts a cycle or is refused with a logged reason and
    nothing stored; the ingest worker survives every one."""
    before = _counts(fleet.db_url)
    result = fleet.app.send_task("ingest.start_cycle", args=[payload])
    kind, text = _outcome(result)
    if kind == "refused":
        assert "malformed cycle trigger" in text
        _check_refused(fleet, "ingest", result.id)
        assert _counts(fleet.db_url) == before
    elif json.loads(text).get("status") == "launched":
        driver.wait_for_dispatch(fleet.db_url, json.loads(text)["cycle_key"], timeout=60)
    assert stack.status(fleet.settings)["ingest"]


@PROPERTY
@given(payload=notes)
def test_any_note_is_posted_or_refused_with_a_logged_reason(fleet: Fleet, payload: Any) -> None:
    """A note of any shape is posted or refused with its fields named; the worker survives."""
    before = _counts(fleet.db_url)
    result = fleet.app.send_task("ingest.post_note", args=[payload])
    kind, text = _outcome(result)
    if kind == "refused":
        assert "malformed note" in text
        _check_refused(fleet, "ingest", result.id)
        assert _counts(fleet.db_url) == before
    assert stack.status(fleet.settings)["ingest"]


@PROPERTY
@given(now=moments.filter(lambda m: m is not None))
def test_any_settle_argument_is_used_or_refused(fleet: Fleet, now: Any) -> None:
    """A settle's `now` of any shape settles or is refused with a logged reason; no number is
    ever read as a moment, and the resolver survives."""
    result = fleet.app.send_task("resolver.settle", kwargs={"now": now})
    kind, text = _outcome(result)
    if isinstance(now, int | float | list):
        assert kind == "refused"
    if kind == "refused":
        assert "now" in text
        _check_refused(fleet, "resolver", result.id)
    assert stack.status(fleet.settings)["resolver"]


@PROPERTY
@given(payload=snapshots, mind=st.sampled_from(["macro", "flow", "contrarian"]))
def test_any_snapshot_payload_makes_an_absent_mind(fleet: Fleet, payload: Any, mind: str) -> None:
    """A mind handed a context of any shape answers absent with the reason, and lives."""
    result = fleet.app.send_task(f"minds.{mind}", args=[payload])
    answer = result.get(timeout=60)
    assert answer["status"] == "absent"
    assert "unusable context" in answer["reason"]
    assert stack.status(fleet.settings)["minds"]


@PROPERTY
@given(results=junk, key=st.one_of(texts, junk))
def test_any_synthesis_message_is_refused_without_storing(
    fleet: Fleet, results: Any, key: Any
) -> None:
    """A synthesis body for no stored cycle, or of the wrong shape, is refused and logged."""
    before = _counts(fleet.db_url)
    result = fleet.app.send_task("synth.synthesize", args=[results], kwargs={"cycle_key": key})
    kind, _ = _outcome(result)
    assert kind == "refused"
    _check_refused(fleet, "synth", result.id)
    assert _counts(fleet.db_url) == before
    assert stack.status(fleet.settings)["synth"]


row_fields = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str), texts, st.just(""), st.just("-3")
)


@PROPERTY
@given(
    row=st.tuples(
        st.one_of(st.just("1999-01-06"), texts), st.one_of(st.just("MSFT"), texts),
        row_fields, row_fields, row_fields, row_fields, row_fields,
    )
)  # fmt: skip
def test_any_replay_row_is_read_or_refused_naming_file_and_line(
    fleet: Fleet, row: tuple[str, ...]
) -> None:
    """A replay directory with one arbitrary row either runs or is refused naming prices.csv and
    the line; a refused one stores nothing and the worker lives."""
    source = sample_data_dir()
    lines = (source / "prices.csv").read_text().splitlines()[:40]
    lines.insert(20, ",".join(f.replace(",", " ").replace("\n", " ") for f in row))
    folder = Path(tempfile.mkdtemp(prefix="poison-replay-"))
    (folder / "prices.csv").write_text("\n".join(lines) + "\n")
    (folder / "macro.csv").write_text((source / "macro.csv").read_text())
    key = f"rows-{next(_serial)}-{uuid.uuid4().hex[:6]}"
    before = _counts(fleet.db_url)
    trigger = CycleTrigger(
        cycle_key=key, as_of=replay_as_of(date(1999, 2, 1)), data_dir=str(folder)
    )
    result = fleet.app.send_task("ingest.start_cycle", args=[trigger.model_dump(mode="json")])
    kind, text = _outcome(result)
    if kind == "refused":
        assert "prices.csv" in text
        _check_refused(fleet, "ingest", result.id)
        assert _counts(fleet.db_url) == before
    else:
        # A row that happens to be valid makes a cycle: let it finish before the next example.
        driver.wait_for_dispatch(fleet.db_url, key, timeout=60)
    assert stack.status(fleet.settings)["ingest"]
