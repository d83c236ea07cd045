"""The worker's message consumer with a guard in front: no message can kill a worker.

Celery's consumer runs in the worker's main process. An exception escaping its message handler
ends the worker ("Unrecoverable error"), and the message, never acknowledged, comes back to kill
every restart. This consumer checks each message's limits before Celery decodes it (shared.guard),
counts deliveries so that a message that killed its worker twice is not run a third time, and
turns any failure while receiving into a logged, dead-lettered, acknowledged refusal.
"""

from __future__ import annotations

import os
from typing import Any

import redis
import structlog
from celery.signals import task_postrun
from celery.worker.consumer import Consumer

from shared import deadletters, guard

log = structlog.get_logger("fleet.guard")


class MessageGuard:
    """What a worker's main process checks before it accepts a task message."""

    def __init__(self, broker_url: str, limits: guard.Limits, max_deliveries: int) -> None:
        self.broker_url = broker_url
        self.limits = limits
        self.max_deliveries = max_deliveries
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.broker_url)
        return self._client

    def admit(self, message: Any) -> None:
        """Raise guard.MessageRefused when the message must not reach Celery."""
        headers = message.headers
        name = guard.check_headers(headers)
        if guard.structure_depth(headers, self.limits.max_depth) > self.limits.max_depth:
            raise guard.MessageRefused(f"headers of {name} nested over {self.limits.max_depth}")
        guard.check_raw(message.body, message.content_type, self.limits)
        guard.check_task_body(message.body)
        retries = headers.get("retries") or 0
        if not isinstance(retries, int) or retries < 0:
            raise guard.MessageRefused(f"retries header {retries!r} is not a count")
        # A first delivery cannot have killed a worker before it: counting starts when the
        # broker hands a message back (kombu marks every restored message redelivered), so the
        # common case costs no round trip to Redis in the worker's main loop.
        if not redelivered(message):
            return
        deliveries = 1 + deadletters.count_delivery(self.client, headers["id"], retries)
        if deliveries > self.max_deliveries:
            raise guard.MessageRefused(
                f"delivered {deliveries} times and never finished: the earlier deliveries "
                "killed their worker"
            )

    def refuse(self, message: Any, reason: str) -> None:
        """Log the refusal, keep a dead letter, and acknowledge the message."""
        headers = message.headers if isinstance(message.headers, dict) else {}
        task = headers.get("task") if isinstance(headers.get("task"), str) else None
        task_id = headers.get("id") if isinstance(headers.get("id"), str) else None
        body = message.body
        cycle_key = guard.cycle_key_of(body)
        queue = (message.delivery_info or {}).get("routing_key")
        log.error(
            "cycle.rejected",
            reason=reason,
            cycle_key=cycle_key,
            task=task,
            task_id=task_id,
            queue=queue,
            dead_letter=True,
        )
        letter = deadletters.make_letter(
            task=task, task_id=task_id, queue=queue, cycle_key=cycle_key, reason=reason, body=body
        )
        try:
            deadletters.record(self.client, letter)
        except redis.RedisError:
            log.exception("dead_letter.not_kept", task_id=task_id)
        message.ack()


class GuardedConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, with every task message passing MessageGuard first."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        inner = super().create_task_handler(*args, **kwargs)
        settings = self.app.conf.workshop_settings
        message_guard = MessageGuard(
            self.app.conf.broker_url,
            guard.Limits(settings.message_max_bytes, settings.message_max_depth),
            settings.max_deliveries,
        )
        connection_errors = tuple(self.connection_errors)

        def on_task_received(message: Any) -> None:
            try:
                message_guard.admit(message)
            except guard.MessageRefused as refusal:
                message_guard.refuse(message, str(refusal))
                return
            try:
                inner(message)
            except connection_errors:
                raise  # the consumer reconnects and the message is redelivered
            except Exception as error:  # process edge: a message must never end the worker
                message_guard.refuse(message, f"{type(error).__name__}: {str(error)[:300]}")

        return on_task_received


_clients: dict[tuple[int, str], Any] = {}


def redis_client(url: str) -> Any:
    """One client per process and URL (pool processes are forked: never share a socket)."""
    key = (os.getpid(), url)
    if key not in _clients:
        _clients[key] = redis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
        )
    return _clients[key]


def redelivered(message: Any) -> bool:
    """Whether the broker restored this message after an earlier delivery did not finish."""
    info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
    headers = message.headers if isinstance(message.headers, dict) else {}
    return bool(info.get("redelivered") or headers.get("redelivered"))


def listen_for_finished_tasks() -> None:
    """Clear a run's delivery count when it ends (connected once per process; idempotent)."""
    task_postrun.connect(_finished, weak=False, dispatch_uid="workshop.delivery-finished")


def _finished(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    # The run ended (success, failure or retry scheduled): it did not kill its worker.
    request = getattr(sender, "request", None)
    if task_id is None or request is None or sender is None:
        return
    # Only a redelivered run was counted (MessageGuard.admit).
    info = getattr(request, "delivery_info", None) or {}
    if not info.get("redelivered"):
        return
    try:
        client = redis_client(sender.app.conf.broker_url)
        deadletters.finished(client, task_id, int(getattr(request, "retries", 0) or 0))
    except redis.RedisError:
        log.warning("delivery.count_not_cleared", task_id=task_id)
