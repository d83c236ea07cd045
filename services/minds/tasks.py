"""The minds' Celery adapters: one task and one queue per mind, registered from the settings."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from services.minds.think import think
from shared import tasknames
from shared.brain.factory import brain_from_settings as brain_for
from shared.brain.retry import retry_countdown
from shared.celery_app import app, settings_of
from shared.contracts import CycleContext, MindOutput
from shared.errors import TransientError
from shared.tasking import key_or_none, rejected

log = structlog.get_logger("minds")
MAX_RETRIES = 3


def _register(mind: str) -> None:
    settings = settings_of(app)

    @app.task(
        name=tasknames.mind_task(mind),
        bind=True,
        soft_time_limit=settings.mind_time_limit_s,
        time_limit=settings.mind_time_limit_s + 15,
        max_retries=MAX_RETRIES,
    )
    def mind_task(self: Any, payload: Any) -> dict[str, Any]:
        started = time.perf_counter()
        structlog.contextvars.bind_contextvars(task_id=self.request.id, mind=mind)
        try:
            output = _think(self, mind, payload)
            usage = output.usage
            log.info(
                "mind.completed",
                status=output.status,
                stance=output.stance,
                confidence=round(output.confidence, 3),
                reason=output.reason,
                seconds=round(time.perf_counter() - started, 4),
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                dollars=usage.dollars if usage else 0.0,
            )
        finally:
            structlog.contextvars.clear_contextvars()
        return output.model_dump(mode="json")


def _think(task: Any, mind: str, payload: Any) -> MindOutput:
    settings = settings_of(app)
    if mind in settings.chaos_kill_minds:
        # Fire drill: the process dies as a segfault or the OOM killer would end it.
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        context = CycleContext.model_validate(payload)
    except ValidationError as error:
        key = (
            key_or_none(payload.get("snapshot", {}).get("cycle_key"))
            if isinstance(payload, dict) and isinstance(payload.get("snapshot"), dict)
            else None
        )
        rejected(f"unusable context: {error.error_count()} errors", task=mind, cycle_key=key)
        return MindOutput.absent(mind, f"unusable context: {error.error_count()} errors")
    structlog.contextvars.bind_contextvars(cycle_key=context.snapshot.cycle_key)
    try:
        if settings.chaos_mind_delay_s:
            time.sleep(settings.chaos_mind_delay_s)
        brain = brain_for(settings)
        return think(brain, mind, context, fail_on_purpose=settings.chaos_fail_minds)
    except SoftTimeLimitExceeded:
        return MindOutput.absent(mind, f"time limit of {settings.mind_time_limit_s:g}s reached")
    except TransientError as error:
        if task.request.retries >= MAX_RETRIES:
            return MindOutput.absent(mind, f"gave up after {MAX_RETRIES} retries: {error}")
        # Celery's backoff with jitter, never sooner than the model API's retry-after.
        wait = retry_countdown(task.request.retries, error)
        raise task.retry(exc=error, countdown=wait) from error
    except Exception as error:  # process edge: a broken brain must not fail the whole chord
        log.exception("mind.failed", mind=mind)
        return MindOutput.absent(mind, f"{type(error).__name__}: {error}"[:500])


for _mind in settings_of(app).minds:
    _register(_mind)
