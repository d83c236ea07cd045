"""Claiming a cycle key and storing its outcome: natural keys make repeats harmless."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.ingest.cycle import claim, is_duplicate, mark_launched, parse_trigger
from services.synth.store import store_cycle
from services.synth.synthesize import synthesize
from shared.brain.offline import OfflineBrain
from shared.calendar import replay_as_of
from shared.contracts import CycleContext, CycleTrigger, Dispatch, Features, MindOutput, Snapshot
from shared.db.aggregates import ReplayMoment
from shared.db.models import AbstentionRecord, Cycle, DispatchRecord, MindRecord, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.errors import BadInputError
from shared.market.opening import replay_market

MINDS = ("macro", "flow", "contrarian")
# What store_cycle is given: the dispatch, the minds' outputs and the context.
Stored = tuple[Dispatch, list[MindOutput], CycleContext]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    return url


def _trigger(key: str, day: date = date(2015, 8, 24)) -> CycleTrigger:
    return CycleTrigger(cycle_key=key, as_of=replay_as_of(day))


def test_parse_trigger_names_every_bad_field() -> None:
    """A malformed trigger is a BadInputError that names each field that was wrong."""
    with pytest.raises(BadInputError) as caught:
        parse_trigger({"cycle_key": "has spaces", "as_of": "2016-01-01T00:00:00", "mode": "x"})
    text = str(caught.value)
    for field in ("cycle_key", "as_of", "mode"):
        assert field in text
    with pytest.raises(BadInputError, match="surprise: Extra inputs"):
        parse_trigger({"cycle_key": "k", "as_of": "2016-01-01T00:00:00+00:00", "surprise": 1})


def test_claim_once_then_duplicate(db: str) -> None:
    """The first claim of a key wins; once launched, the key is a duplicate for everyone."""
    market = replay_market(None)
    trigger = _trigger("claim-1")
    snapshot = market.snapshot(trigger)
    features = market.features(snapshot)
    with session_scope(db) as session:
        context = claim(session, trigger, snapshot, features)
    assert context is not None
    assert context.cycle_number == 1
    with session_scope(db) as session:
        assert not is_duplicate(session, trigger.cycle_key)  # claimed, not yet launched
        mark_launched(session, trigger.cycle_key)
    with session_scope(db) as session:
        assert is_duplicate(session, trigger.cycle_key)
        assert claim(session, trigger, snapshot, features) is None
        assert session.scalar(select(func.count()).select_from(Cycle)) == 1


def test_a_claimed_cycle_that_never_launched_is_resumed(db: str) -> None:
    """A redelivery after a worker died between the claim and the launch claims the same row
    again (its snapshot rewritten, its number kept); once launched, nobody resumes it."""
    market = replay_market(None)
    trigger = _trigger("resume-1")
    snapshot = market.snapshot(trigger)
    features = market.features(snapshot)
    with session_scope(db) as session:
        first = claim(session, trigger, snapshot, features)
    with session_scope(db) as session:
        again = claim(session, trigger, snapshot, features)
    assert first is not None
    assert again is not None
    assert again.cycle_number == first.cycle_number
    with session_scope(db) as session:
        assert session.scalar(select(func.count()).select_from(Cycle)) == 1
        mark_launched(session, trigger.cycle_key)
    with session_scope(db) as session:
        assert claim(session, trigger, snapshot, features) is None


def test_a_live_cycle_is_numbered_by_its_row(db: str) -> None:
    """A live cycle's number is its row id; it places no replay moment."""
    market = replay_market(None)
    replayed = _trigger("numbered-replay")
    live = CycleTrigger(cycle_key="numbered-live", as_of=replayed.as_of, mode="live")
    with session_scope(db) as session:
        for trigger in (replayed, live):
            snapshot = market.snapshot(trigger)
            assert claim(session, trigger, snapshot, market.features(snapshot)) is not None
    snapshot = market.snapshot(live)
    with session_scope(db) as session:
        context = claim(session, live, snapshot, market.features(snapshot))  # resumed
        row = session.scalar(select(Cycle.id).where(Cycle.cycle_key == live.cycle_key))
        moments = session.scalar(select(func.count()).select_from(ReplayMoment))
    assert context is not None
    assert context.cycle_number == row == 2
    assert moments == 1


def test_a_published_cycle_is_never_claimed_again(db: str) -> None:
    """A key with a dispatch is done even if it was never marked launched (a cycle the sweep
    closed before its minds were sent): a repeated trigger is a duplicate, not a new launch."""
    trigger, snapshot, features, _ = _claimed_and_stored(db, "closed-1")
    with session_scope(db) as session:
        assert is_duplicate(session, trigger.cycle_key)
        assert claim(session, trigger, snapshot, features) is None


def _claimed_and_stored(db: str, key: str) -> tuple[CycleTrigger, Snapshot, Features, Stored]:
    """A replay cycle claimed, thought, composed and stored once: its trigger, snapshot,
    features, and what a second store would be given."""
    market = replay_market(None)
    trigger = _trigger(key)
    snapshot = market.snapshot(trigger)
    features = market.features(snapshot)
    with session_scope(db) as session:
        context = claim(session, trigger, snapshot, features)
    assert context is not None
    brain = OfflineBrain()
    outputs = [brain.think(m, context) for m in MINDS]
    dispatch = synthesize(context, outputs, brain, expected_minds=MINDS)
    with session_scope(db) as session:
        assert store_cycle(session, dispatch, outputs, context)
    return trigger, snapshot, features, (dispatch, outputs, context)


def test_store_cycle_writes_once(db: str) -> None:
    """A dispatch, its minds, calls and abstentions are stored once; a second store is a no-op."""
    *_, (dispatch, outputs, context) = _claimed_and_stored(db, "store-1")
    with session_scope(db) as session:
        assert not store_cycle(session, dispatch, outputs, context)
    with session_scope(db) as session:
        models: tuple[type[DispatchRecord | MindRecord | PredictionRecord | AbstentionRecord], ...]
        models = (DispatchRecord, MindRecord, PredictionRecord, AbstentionRecord)
        count = {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in models
        }
        status = session.scalar(select(Cycle.status).where(Cycle.cycle_key == "store-1"))
    assert count["dispatches"] == 1
    assert count["mind_outputs"] == 3
    # Every source either called or abstained: four sources, four rows between the two tables.
    assert count["predictions"] + count["abstentions"] == 4
    assert status == "published"
