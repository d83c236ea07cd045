"""The Celery application every worker, beat and producer shares, configured from Settings.

`celery -A shared.celery_app:app worker -Q ingest` runs a worker; task modules are included by
name so that services never import each other.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import setup_logging, task_postrun, worker_init
from kombu.entity import Queue

from shared import consumer, tasknames
from shared.collector import freeze_after_first_task, freeze_before_fork
from shared.logs import configure_logging
from shared.settings import Settings, load_settings
from shared.timing import HARD_MARGIN_S, transport_options

TASK_MODULES = [
    "services.ingest.tasks",
    "services.minds.tasks",
    "services.synth.tasks",
    "services.resolver.tasks",
]


def _route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    return {"queue": tasknames.queue_for(name)}


def create_app(settings: Settings) -> Celery:
    """Build the app; the broker is the setting or the embedded Redis recorded by `workshop up`."""
    broker = settings.resolved_broker_url()
    app = Celery("workshop", broker=broker, backend=broker, include=TASK_MODULES)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # A task is acknowledged only once it has run, and a task whose worker died is put back:
        # together with natural keys on every write this makes a lost worker harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(q) for q in tasknames.all_queues(settings.minds)],
        task_default_queue=tasknames.INGEST_QUEUE,
        task_routes=(_route,),
        task_send_sent_event=True,
        worker_send_task_events=True,
        result_expires=timedelta(days=1),
        # A result is its value alone: extended results would store each mind's whole context
        # (6-14 KB) again beside its output, and no reader uses that (Flower shows a task's
        # arguments from the events). Measured: throughput 0.31-0.34x -> 0.34-0.37x of bare.
        result_extended=False,
        result_backend_thread_safe=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Every task message passes size, depth, shape and delivery-count checks in the worker's
        # main process before Celery decodes it (a bad message is dead-lettered, never fatal).
        worker_consumer="shared.consumer:GuardedConsumer",
        # ... and an envelope that is not kombu's at all is dropped, not fatal (shared.transport).
        broker_transport="shared.transport:GuardedTransport",
        # Every task has a hard time limit (minds their own, longer one); the visibility timeout
        # exceeds the longest, so a message is redelivered only when its worker is gone, and
        # then within visibility_timeout + unacked_restore_interval (see redelivery_bound).
        task_soft_time_limit=settings.task_time_limit_s,
        task_time_limit=settings.task_time_limit_s + HARD_MARGIN_S,
        broker_transport_options=transport_options(settings),
        # A result that cannot be stored while Redis restarts is retried, not dropped (a lost
        # mind result would strand the chord until the sweep re-drives it).
        result_backend_always_retry=True,
        result_backend_max_retries=20,
        result_backend_max_sleep_between_retries_ms=5000,
        broker_connection_max_retries=None,
        timezone="UTC",
        beat_schedule=_beat_schedule(settings),
    )
    app.conf.workshop_settings = settings
    return app


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "settle-matured-calls": {
            "task": tasknames.SETTLE,
            "schedule": float(settings.resolve_every_s),
        },
        # No cycle left behind: re-drive (or close) cycles that never published.
        "sweep-stuck-cycles": {
            "task": tasknames.SWEEP,
            "schedule": float(settings.sweep_every_s),
        },
    }
    if settings.cycle_every_s:
        schedule["live-cycle"] = {
            "task": tasknames.TRIGGER_LIVE,
            "schedule": float(settings.cycle_every_s),
        }
    return schedule


@setup_logging.connect
def _logging(**_: Any) -> None:
    # Celery would install its own handlers; the desk logs through structlog everywhere.
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)


# A worker keeps what it holds for good out of the garbage collector's walks (shared.collector).
worker_init.connect(freeze_before_fork, weak=False)
task_postrun.connect(freeze_after_first_task, weak=False)

# The guard's delivery bookkeeping listens to task signals in every process that imports the app.
consumer.listen_for_finished_tasks()


def settings_of(celery_app: Celery) -> Settings:
    settings = celery_app.conf.workshop_settings
    assert isinstance(settings, Settings)
    return settings


app = create_app(load_settings())
