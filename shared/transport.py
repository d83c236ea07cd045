"""kombu's Redis transport, with unreadable envelopes dropped instead of fatal.

Anything that can push to a queue's Redis list (a buggy producer, a hand-typed LPUSH) can put
bytes there that are not a kombu envelope. kombu pops the item and fails to decode it, and the
exception ends the worker. Here the item (already popped, so it cannot come back) is logged as a
`cycle.rejected` dead letter and the read counts as empty; well-formed messages are untouched.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

import redis
import structlog
from kombu.transport import redis as kombu_redis

from shared import deadletters

log = structlog.get_logger("fleet.guard")
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError)


class GuardedChannel(kombu_redis.Channel):
    """A Redis channel whose reads survive envelopes that are not kombu's."""

    def _drop(self, error: Exception) -> None:
        reason = f"unreadable message envelope dropped: {type(error).__name__}: {str(error)[:200]}"
        log.error("cycle.rejected", reason=reason, dead_letter=True)
        letter = deadletters.make_letter(
            task=None, task_id=None, queue=None, cycle_key=None, reason=reason, body=None
        )
        try:
            with self.conn_or_acquire() as client:
                deadletters.record(client, letter)
        except redis.RedisError:
            log.warning("dead_letter.not_kept")

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)  # type: ignore[no-untyped-call]
        except UNREADABLE as error:
            self._drop(error)
            raise Empty() from None

    def _connparams(self, asynchronous: bool = False) -> Any:
        # A channel whose transport was closed under it (the broker connection lost mid-flush:
        # an event or an unacknowledged message's restore still to send) has no connection
        # settings left, and kombu's AttributeError there ended the worker ("Unrecoverable
        # error", seen once in the Redis-restart drill). Said as the connection error it is,
        # Celery's consumer reconnects as for any lost broker.
        if getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError("the connection to the broker was closed")
        return super()._connparams(asynchronous)  # type: ignore[no-untyped-call]

    def _get(self, queue: Any, *args: Any) -> Any:
        try:
            return super()._get(queue, *args)  # type: ignore[no-untyped-call]
        except UNREADABLE as error:
            self._drop(error)
            raise Empty() from None


class GuardedTransport(kombu_redis.Transport):
    """`broker_transport` of the desk's Celery app."""

    Channel = GuardedChannel
