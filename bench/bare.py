"""The bare Celery cycle the desk's overhead is measured against: the same shape (an ingest task
launching a chord of three mind tasks whose body writes one row), the same broker and result
backend, the same delivery settings and worker flags as the desk, and none of the desk's work.

    celery -A bench.bare:app worker -Q bare.ingest ...   (started by bench.fleet)

The database row is written with the standard library's sqlite3 in WAL mode, as the desk's
SQLite is: the floor includes one durable write, as a cycle must.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from celery import Celery, chord
from kombu.entity import Queue

INGEST, MINDS, SYNTH = "bare.ingest", "bare.minds", "bare.synth"
BROKER = os.environ.get("BENCH_BARE_BROKER", "redis://127.0.0.1:6379/15")
DB = os.environ.get("BENCH_BARE_DB", "bench-bare.sqlite")
DELAY = float(os.environ.get("BENCH_BARE_MIND_DELAY_S", "0"))

app = Celery("bare", broker=BROKER, backend=BROKER)
# What shared.celery_app sets for the desk, so that the two differ only in the work they do.
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_queues=[Queue(INGEST), Queue(MINDS), Queue(SYNTH)],
    task_default_queue=INGEST,
    task_routes={"bare.mind": {"queue": MINDS}, "bare.synth": {"queue": SYNTH}},
    task_send_sent_event=True,
    worker_send_task_events=True,
    result_extended=False,
    result_backend_thread_safe=True,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
    worker_hijack_root_logger=False,
)


def create_table(path: str = DB) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, body TEXT, written REAL)"
        )
        db.commit()
    finally:
        db.close()


@app.task(name="bare.ingest")
def ingest(key: str) -> str:
    header = [app.signature("bare.mind", args=[key, n]) for n in range(3)]
    chord(header)(app.signature("bare.synth", kwargs={"key": key}))
    return key


@app.task(name="bare.mind")
def mind(key: str, n: int) -> dict[str, Any]:
    if DELAY:
        time.sleep(DELAY)
    return {"key": key, "mind": n}


@app.task(name="bare.synth")
def synth(results: list[Any], key: str) -> str:
    with sqlite3.connect(DB, timeout=30) as db:
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("INSERT OR IGNORE INTO rows VALUES (?, ?, ?)", (key, repr(results), time.time()))
    return key
