"""The fleet's deployment file stays in step with the queues the code routes to."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared import tasknames
from shared.settings import DEFAULT_MINDS

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"


def _consumed_queues() -> set[str]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    queues: set[str] = set()
    for spec in services.values():
        command = spec.get("command") or []
        if "worker" in command:
            queues.update(command[command.index("--queues") + 1].split(","))
    return queues


def test_every_queue_has_a_worker_in_the_compose_file() -> None:
    """Each queue a task can be routed to is consumed by some worker service of the fleet."""
    assert set(tasknames.all_queues(DEFAULT_MINDS)) <= _consumed_queues()


def test_every_task_routes_to_a_declared_queue() -> None:
    """Every task name the services use maps to one of the declared queues."""
    names = [
        tasknames.START_CYCLE, tasknames.FETCH_SOURCE, tasknames.ASSEMBLE, tasknames.POST_NOTE,
        tasknames.TRIGGER_LIVE, tasknames.SYNTHESIZE, tasknames.SETTLE,
        *(tasknames.mind_task(m) for m in DEFAULT_MINDS),
    ]  # fmt: skip
    declared = set(tasknames.all_queues(DEFAULT_MINDS))
    assert {tasknames.queue_for(n) for n in names} <= declared
