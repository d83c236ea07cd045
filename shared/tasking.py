"""What every task adapter shares: which errors are worth a retry, and how a refusal is logged.

Storage that blinks (SQLite locked or read-only for a while, PostgreSQL restarting, Redis gone for
seconds) fails a task with one of STORAGE_ERRORS; every task retries those with exponential
backoff (about four minutes in all) instead of failing and stranding its cycle. Bad input is
never retried: it is refused once, logged as `cycle.rejected` with its reason and cycle key.
"""

from __future__ import annotations

import re
from typing import Any

import redis
import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.contracts import CYCLE_KEY_PATTERN
from shared.errors import StorageUnavailable

STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    redis.ConnectionError,
    redis.TimeoutError,
    StorageUnavailable,
)

# Celery task options: retry storage errors with backoff 1, 2, 4 ... 30 s (jittered), ten times.
STORAGE_RETRY: dict[str, Any] = {
    "autoretry_for": STORAGE_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 10,
}

_KEY = re.compile(CYCLE_KEY_PATTERN)
log = structlog.get_logger("fleet")


def key_or_none(value: object) -> str | None:
    """The cycle key if the value is a well-formed one (for log context), else None."""
    return value if isinstance(value, str) and _KEY.match(value) else None


def rejected(reason: str, **fields: Any) -> None:
    """Log one refusal of bad input: `cycle.rejected`, its reason, and what it was about."""
    from celery import current_task

    if current_task is not None and current_task.request.id:
        fields.setdefault("task_id", current_task.request.id)
    log.error("cycle.rejected", reason=reason[:1000], **fields)
