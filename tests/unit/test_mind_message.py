"""What a mind is sent: the cycle's context with its own lines of the record, so its prompt is
the one the whole context would give, in fewer bytes."""

from __future__ import annotations

import json
from datetime import date

from services.ingest.cycle import for_mind
from shared.brain.offline import OfflineBrain
from shared.brain.prompting import mind_messages
from shared.calendar import replay_as_of
from shared.contracts import CycleContext, CycleTrigger, TrackRecord
from shared.market.opening import replay_market
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
        assert {k: v for k, v in sent.items() if k not in ("record", "features")} == {
            k: v for k, v in message.items() if k not in ("record", "features")
        }
        assert len(json.dumps(sent)) < len(json.dumps(message))


def test_a_mind_thinks_the_same_without_the_event_rates() -> None:
    """On real replay days, each offline mind's output and each mind's prompt are the same
    from the message it is sent (no event rates) as from the whole context, no prompt shows
    the rates, and they were a large part of the message."""
    market = replay_market(None)
    days = market.sessions(date(1900, 1, 1), date(2999, 12, 31))
    brain = OfflineBrain()
    for day in (days[len(days) // 2], days[-200], days[-1]):
        snapshot = market.snapshot(CycleTrigger(cycle_key="m", as_of=replay_as_of(day)))
        full = context(market.features(snapshot))
        assert full.features.event_rates, "the replay's features carry event rates"
        message = full.model_dump(mode="json")
        for mind in ("macro", "flow", "contrarian"):
            sent = for_mind(message, mind)
            mine = CycleContext.model_validate(sent)
            assert mine.features.event_rates == {}
            assert mine.features.model_dump(exclude={"event_rates"}) == full.features.model_dump(
                exclude={"event_rates"}
            )
            assert brain.think(mind, mine) == brain.think(mind, full)
            prompt = mind_messages(mind, full)
            assert prompt == mind_messages(mind, mine)
            assert "event_rates" not in json.dumps(prompt)
        sent_bytes = len(json.dumps(for_mind(message, "macro")))
        assert sent_bytes < 0.75 * len(json.dumps(message))
