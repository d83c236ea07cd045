"""Task and queue names: how services reach each other through the broker, never by import."""

from __future__ import annotations

START_CYCLE = "ingest.start_cycle"
FETCH_SOURCE = "ingest.fetch_source"
ASSEMBLE = "ingest.assemble"
TRIGGER_LIVE = "ingest.trigger_live"
POST_NOTE = "ingest.post_note"
SWEEP = "ingest.sweep_stuck"
SYNTHESIZE = "synth.synthesize"
SETTLE = "resolver.settle"

INGEST_QUEUE = "ingest"
SYNTH_QUEUE = "synth"
RESOLVER_QUEUE = "resolver"


def mind_task(mind: str) -> str:
    """Each mind is its own task on its own queue, so each can be scaled and watched alone."""
    return f"minds.{mind}"


def mind_queue(mind: str) -> str:
    return f"minds.{mind}"


def queue_for(task_name: str) -> str:
    """Route by service prefix; a mind's task goes to the queue of the same name."""
    service = task_name.split(".", 1)[0]
    if service == "minds":
        return task_name
    return service


def all_queues(minds: tuple[str, ...]) -> tuple[str, ...]:
    return (INGEST_QUEUE, *(mind_queue(m) for m in minds), SYNTH_QUEUE, RESOLVER_QUEUE)
