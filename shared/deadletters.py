"""Dead letters: messages the fleet refused or that killed workers, kept in Redis with the reason.

A refused message is acknowledged (it never comes back) and a copy lands here, newest first, so an
operator can see what was dropped and why (`workshop dead-letters`). Deliveries are counted per
task id and retry: a message whose earlier deliveries never finished has killed its worker each
time, and after `max_deliveries` it is dead-lettered instead of run again.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEAD_LETTERS_KEY = "workshop:dead-letters"
DELIVERIES_PREFIX = "workshop:deliveries:"
KEEP = 1000
BODY_CHARS = 2000
# A delivery count outlives any redelivery delay (visibility timeout, retries) by far.
DELIVERY_TTL_S = 24 * 3600


class DeadLetter(BaseModel):
    """One refused message: when, which task, why, and the start of its body."""

    model_config = ConfigDict(frozen=True)

    at: float = Field(description="Unix time the message was refused.")
    task: str | None
    task_id: str | None
    queue: str | None
    cycle_key: str | None
    reason: str
    body: str = Field(description=f"The first {BODY_CHARS} characters of the raw body.")


def record(client: Any, letter: DeadLetter) -> None:
    """Keep a dead letter; only the newest KEEP are kept."""
    pipe = client.pipeline()
    pipe.lpush(DEAD_LETTERS_KEY, letter.model_dump_json())
    pipe.ltrim(DEAD_LETTERS_KEY, 0, KEEP - 1)
    pipe.execute()


def letters(client: Any, limit: int = 50) -> list[DeadLetter]:
    """The newest dead letters first."""
    raw = client.lrange(DEAD_LETTERS_KEY, 0, max(limit, 1) - 1)
    return [DeadLetter.model_validate(json.loads(item)) for item in raw]


def purge(client: Any) -> int:
    """Drop every dead letter; returns how many there were."""
    count = int(client.llen(DEAD_LETTERS_KEY))
    client.delete(DEAD_LETTERS_KEY)
    return count


def make_letter(
    *,
    task: str | None,
    task_id: str | None,
    queue: str | None,
    cycle_key: str | None,
    reason: str,
    body: bytes | str | None,
) -> DeadLetter:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    return DeadLetter(
        at=time.time(),
        task=task[:200] if task else None,
        task_id=task_id[:200] if task_id else None,
        queue=queue,
        cycle_key=cycle_key,
        reason=reason[:1000],
        body=text[:BODY_CHARS],
    )


def _delivery_key(task_id: str, retries: int) -> str:
    return f"{DELIVERIES_PREFIX}{task_id}:{retries}"


def count_delivery(client: Any, task_id: str, retries: int) -> int:
    """Count one more delivery of this task run; returns how many deliveries there have been."""
    key = _delivery_key(task_id, retries)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, DELIVERY_TTL_S)
    count, _ = pipe.execute()
    return int(count)


def finished(client: Any, task_id: str, retries: int) -> None:
    """The run finished (whatever its outcome): its deliveries no longer count against it."""
    client.delete(_delivery_key(task_id, retries))
