"""What a mind is sent: the cycle's context with its own lines of the record, so its prompt is
the one the whole context would give, in fewer bytes."""

from __future__ import annotations

import json

from services.ingest.cycle import for_mind
from shared.brain.prompting import mind_messages
from shared.contracts import CycleContext, TrackRecord
from tests.unit.factories import context, line

SOURCES = ("synthesis", "macro", "flow", "contrarian")


def test_a_mind_is_sent_its_own_record_and_the_same_prompt() -> None:
    """Each mind's message validates, keeps only that mind's lines, and gives the very prompt
    the full context gives; everything but the record is unchanged."""
    record = TrackRecord(
        lines=tuple(
            line(source, 10 + n, 9, regime)
            for n, source in enumerate(SOURCES)
            for regime in ("all", "risk_on", "chop")
        )
    )
    full = context(record=record)
    message = full.model_dump(mode="json")
    for mind in ("macro", "flow", "contrarian"):
        sent = for_mind(message, mind)
        mine = CycleContext.model_validate(sent)
        assert {entry.source for entry in mine.record.lines} == {mind}
        assert len(mine.record.lines) == 3
        assert mind_messages(mind, mine) == mind_messages(mind, full)
        assert {k: v for k, v in sent.items() if k != "record"} == {
            k: v for k, v in message.items() if k != "record"
        }
        assert len(json.dumps(sent)) < len(json.dumps(message))
