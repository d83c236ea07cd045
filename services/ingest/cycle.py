"""Claiming a cycle key and recording its context: the one place a cycle comes into being."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, insert, select, update
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
from shared.db import moments
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


class Known(NamedTuple):
    """What the claim needs of a key's cycle row, and whether it is done."""

    id: int
    as_of: datetime
    mode: str
    data_dir: str | None
    launched_at: datetime | None
    dispatch: int | None

    @property
    def done(self) -> bool:
        """Launched or published: only a cycle claimed but never launched may be resumed."""
        return self.launched_at is not None or self.dispatch is not None


# The ingest's statements are built once: building one costs more than running it.
_KNOWN = (
    select(Cycle.id, Cycle.as_of, Cycle.mode, Cycle.data_dir, Cycle.launched_at, DispatchRecord.id)
    .outerjoin(DispatchRecord, DispatchRecord.cycle_key == Cycle.cycle_key)
    .where(Cycle.cycle_key == bindparam("key"))
)
# Each sets the columns its parameters name.
_CLAIM = insert(Cycle).returning(Cycle.id)
_RESUME = update(Cycle).where(Cycle.cycle_key == bindparam("key"), Cycle.launched_at.is_(None))
_LAUNCHED = update(Cycle).where(Cycle.cycle_key == bindparam("key")).values(status="thinking")


def known_cycle(connection: Connection, cycle_key: str) -> Known | None:
    """The key's cycle row and its dispatch, in one statement; None for a new key."""
    row = connection.execute(_KNOWN, {"key": cycle_key}).first()
    return Known(*row) if row is not None else None


def is_duplicate(session: Session, cycle_key: str) -> bool:
    """A key whose cycle was launched or published is done; a claimed-only one may be resumed.

    Redelivery after a worker died between the claim and the launch must not strand the cycle.
    """
    known = known_cycle(session.connection(), cycle_key)
    return known is not None and known.done


def claim(
    session: Session, trigger: CycleTrigger, snapshot: Snapshot, features: Features
) -> CycleContext | None:
    """Insert the cycle row (or resume a claimed one that never launched) and build the minds'
    context.

    Returns None when the key is taken: launched or published, or claimed by another delivery
    at the same time. The row is written without the ORM (the context is all a cycle needs of
    it), so the claim places its replay moment itself, as the flush hook would have.
    """
    connection = session.connection()
    known = known_cycle(connection, trigger.cycle_key)
    if known is not None and known.done:
        return None
    stored = {"snapshot": snapshot.model_dump(mode="json"),
              "features": features.model_dump(mode="json")}  # fmt: skip
    number: int | None = None
    row: tuple[int, datetime, str, str | None]
    if known is None:
        # Inserted whole: one statement, not an insert and an update of its two largest columns.
        # On SQLite it takes the writer lock, so the moment's turn is held from here (on
        # PostgreSQL the turn is taken after the insert: the claim is the only writer of cycles).
        values = {"cycle_key": trigger.cycle_key, "as_of": trigger.as_of, "mode": trigger.mode,
                  "data_dir": trigger.data_dir, "status": "claimed", **stored}  # fmt: skip
        try:
            inserted = connection.execute(_CLAIM, values).scalar_one()
        except IntegrityError:
            session.rollback()
            return None
        row = (inserted, trigger.as_of, trigger.mode, trigger.data_dir)
        numbers = moments.place_inserted(connection, [(trigger.mode, trigger.data_dir,
                                                       trigger.as_of)])  # fmt: skip
        # The moment just placed is the number cycle_number would read back.
        number = numbers.get((trigger.data_dir, trigger.as_of))
    elif connection.execute(_RESUME, {"key": trigger.cycle_key, **stored}).rowcount != 1:
        return None  # launched by another delivery since it was read
    else:
        row = (known.id, known.as_of, known.mode, known.data_dir)
    record = track_record(session, trigger.as_of)
    # What the desk learned, for the minds' prompts: the rules in force and the stories from the
    # desk's state tables, and the lessons of tapes like this one (none settled after as_of).
    book, stories = carried_book(session, trigger.as_of)
    recalled: tuple[Memory, ...] = ()
    if features.broad:
        tape = fingerprint(features)
        near = lessons_near(session, features.broad, features.regime, tape, trigger.as_of)
        recalled = recall_from(near, features.broad, features.regime, tape, trigger.as_of)
    if number is None:  # a live cycle (its row id), or a resumed one (its moment's, read)
        cycle_id, as_of, mode, data_dir = row
        number = cycle_number(session, Cycle(id=cycle_id, as_of=as_of, mode=mode,
                                             data_dir=data_dir))  # fmt: skip
    return CycleContext(
        cycle_number=number,
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
    session.connection().execute(_LAUNCHED, {"key": cycle_key, "launched_at": when or utc_now()})


NOTE_WINDOW = timedelta(hours=24)


def post_note(session: Session, note: OperatorNote) -> int:
    """Keep an operator's note; it reaches every cycle in the following day."""
    row = NoteRecord(author=note.author, posted_at=note.posted_at, text=note.text)
    session.add(row)
    session.flush()
    return row.id


_NOTES = (
    select(NoteRecord.author, NoteRecord.posted_at, NoteRecord.text)
    .where(NoteRecord.posted_at <= bindparam("as_of"), NoteRecord.posted_at > bindparam("since"))
    .order_by(NoteRecord.posted_at)
)


def with_notes(session: Session, snapshot: Snapshot) -> Snapshot:
    """The snapshot with the notes posted in the day before its as_of (never after it)."""
    rows = session.connection().execute(
        _NOTES, {"as_of": snapshot.as_of, "since": snapshot.as_of - NOTE_WINDOW}
    )
    notes = tuple(OperatorNote(author=a, posted_at=p, text=t) for a, p, t in rows)
    if not notes:
        return snapshot
    return snapshot.model_copy(update={"notes": snapshot.notes + notes})
