"""Counting deliveries to catch a message that kills its worker: a first delivery is never
counted (it cannot have killed anything yet), a message the broker handed back is, and past
max_deliveries it is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared import guard
from shared.consumer import MessageGuard, redelivered


@dataclass
class Counter:
    """Stands in for Redis' INCR/EXPIRE pipeline: what the guard asked to count."""

    counts: dict[str, int] = field(default_factory=dict)
    pipelines: int = 0

    def pipeline(self) -> Counter:
        self.pipelines += 1
        self._ops: list[str] = []
        return self

    def incr(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        self._ops.append(key)

    def expire(self, key: str, _seconds: int) -> None:
        self._ops.append("")

    def execute(self) -> list[Any]:
        return [self.counts[self._ops[0]], True]


@dataclass
class Message:
    headers: dict[str, Any]
    delivery_info: dict[str, Any]
    body: bytes = json.dumps([[{}], {}, {}]).encode()
    content_type: str = "application/json"


def _message(again: bool) -> Message:
    headers = {"task": "minds.flow", "id": "t-1", "retries": 0}
    if again:
        headers["redelivered"] = True
    return Message(headers, {"redelivered": again} if again else {})


def test_only_a_message_handed_back_is_counted_and_refused_past_the_limit() -> None:
    """The first delivery costs no count; each redelivery counts, and the third delivery of a
    message that never finished (max_deliveries 2) is refused."""
    counter = Counter()
    gate = MessageGuard("redis://unused", guard.Limits(), max_deliveries=2)
    gate._client = counter
    assert not redelivered(_message(False))
    gate.admit(_message(False))
    assert counter.pipelines == 0
    assert redelivered(_message(True))
    gate.admit(_message(True))  # the second delivery
    assert counter.pipelines == 1
    with pytest.raises(guard.MessageRefused, match="delivered 3 times"):
        gate.admit(_message(True))
