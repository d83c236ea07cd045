"""Claiming a cycle key and recording its context: the one place a cycle comes into being."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.calendar import utc_now
from shared.contracts import (
    CycleContext,
    CycleTrigger,
    Features,
    Memory,
    OperatorNote,
    Snapshot,
)
from shared.db.models import Cycle, DispatchRecord, NoteRecord
from shared.errors import BadInputError
from shared.memory import fingerprint, recall_from
from shared.records import carried_book, cycle_number, lessons_near, track_record


def parse_trigger(payload: Any) -> CycleTrigger:
    """The trigger as a contract, or BadInputError naming every field that was wrong."""
    try:
        return CycleTrigger.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in error.errors()
        )
        raise BadInputError(f"malformed cycle trigger: {problems}") from None


def existing_cycle(session: Session, cycle_key: str) -> Cycle | None:
    return session.scalar(select(Cycle).where(Cycle.cycle_key == cycle_key))


def is_duplicate(session: Session, cycle_key: str) -> bool:
    """A key whose cycle was launched or published is done; a claimed-only one may be resumed.

    Redelivery after a worker died between the claim and the launch must not strand the cycle.
    """
    cycle = existing_cycle(session, cycle_key)
    if cycle is None:
        return False
    published = session.scalar(
        select(DispatchRecord.id).where(DispatchRecord.cycle_key == cycle_key)
    )
    return published is not None or cycle.launched_at is not None


def claim(
    session: Session, trigger: CycleTrigger, snapshot: Snapshot, features: Features
) -> CycleContext | None:
    """Insert the cycle row (or resume an unlaunched one) and build the minds' context.

    Returns None when another delivery already owns the key.
    """
    cycle = existing_cycle(session, trigger.cycle_key)
    stored = {"snapshot": snapshot.model_dump(mode="json"),
              "features": features.model_dump(mode="json")}  # fmt: skip
    if cycle is None:
        # Inserted whole: one statement, not an insert and an update of its two largest columns.
        cycle = Cycle(
            cycle_key=trigger.cycle_key,
            as_of=trigger.as_of,
            mode=trigger.mode,
            data_dir=trigger.data_dir,
            status="claimed",
            **stored,
        )
        session.add(cycle)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return None
    elif cycle.launched_at is not None:
        return None
    else:
        cycle.snapshot, cycle.features = stored["snapshot"], stored["features"]
    record = track_record(session, trigger.as_of)
    # What the desk learned, for the minds' prompts: the rules in force and the stories from the
    # desk's state tables, and the lessons of tapes like this one (none settled after as_of).
    book, stories = carried_book(session, trigger.as_of)
    recalled: tuple[Memory, ...] = ()
    if features.broad:
        tape = fingerprint(features)
        near = lessons_near(session, features.broad, features.regime, tape, trigger.as_of)
        recalled = recall_from(near, features.broad, features.regime, tape, trigger.as_of)
    return CycleContext(
        cycle_number=cycle_number(session, cycle),
        snapshot=snapshot,
        features=features,
        record=record,
        rules=tuple(r for r in book if r.status == "active"),
        stories=stories,
        recalled=recalled,
    )


def for_mind(message: dict[str, Any], mind: str) -> dict[str, Any]:
    """The context as one mind is sent it: the record holds that mind's own lines, the only
    ones its prompt shows (shared.brain.prompting), so three messages do not carry the whole
    scoreboard each (two thirds of a message's bytes, encoded and sent three times).

    Nor do they carry the features' event rates: the synthesis' menu reads them (from the
    cycle's stored features), no mind and no prompt does, and they were four tenths of what
    was left of a mind's message, guarded, decoded and validated on every delivery."""
    record = message["record"]
    own = [line for line in record["lines"] if line.get("source") == mind]
    features = {**message["features"], "event_rates": {}}
    return {**message, "record": {**record, "lines": own}, "features": features}


def mark_launched(session: Session, cycle_key: str, when: datetime | None = None) -> None:
    session.execute(
        update(Cycle)
        .where(Cycle.cycle_key == cycle_key)
        .values(launched_at=when or utc_now(), status="thinking")
    )


NOTE_WINDOW = timedelta(hours=24)


def post_note(session: Session, note: OperatorNote) -> int:
    """Keep an operator's note; it reaches every cycle in the following day."""
    row = NoteRecord(author=note.author, posted_at=note.posted_at, text=note.text)
    session.add(row)
    session.flush()
    return row.id


def with_notes(session: Session, snapshot: Snapshot) -> Snapshot:
    """The snapshot with the notes posted in the day before its as_of (never after it)."""
    rows = session.scalars(
        select(NoteRecord)
        .where(NoteRecord.posted_at <= snapshot.as_of)
        .where(NoteRecord.posted_at > snapshot.as_of - NOTE_WINDOW)
        .order_by(NoteRecord.posted_at)
    ).all()
    if not rows:
        return snapshot
    notes = tuple(OperatorNote(author=r.author, posted_at=r.posted_at, text=r.text) for r in rows)
    return snapshot.model_copy(update={"notes": snapshot.notes + notes})
