"""A replay cycle's number, kept as cycles are claimed rather than counted when read.

A replay's cycle is numbered 1 + the distinct market moments (as_of) of the same replay before
it, whatever order its days were run or re-run in. Counting them each time reads every cycle of
the replay (a cycle every ten minutes is 50,000 a year); instead replay_moments holds each
moment once with its number, and every flush that inserts a replay cycle places its moment in
the same transaction: the moments after it move up by one (none, when days run in order) and it
takes the number after its predecessor's. Writers of one replay take turns, so two cycles
claimed at once cannot take the same number. A database whose cycles were written around the
ORM (bulk inserts) gets its moments from shared.db.record.rebuild with the other aggregates.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, UOWTransaction

from shared.db.aggregates import ReplayMoment
from shared.db.models import Cycle

REPLAY = "replay"


def advisory_key(name: str) -> int:
    """PostgreSQL's 64-bit advisory lock key for a named job."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def take_turns(connection: Connection, name: str) -> None:
    """Hold the database's lock for `name` until the transaction ends, so that two writers doing
    the same job take turns instead of working from the same reads."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
    elif dialect == "sqlite":
        # A write statement takes SQLite's single writer lock, even when it changes no row (and
        # it opens the transaction, so the reads after it are inside it).
        connection.execute(text("UPDATE cycles SET id = id WHERE 0 = 1"))


def _replay(data_dir: str | None) -> ColumnElement[bool]:
    column = ReplayMoment.data_dir
    return column.is_(None) if data_dir is None else column == data_dir


def number(session: Session, data_dir: str | None, as_of: datetime) -> int | None:
    """The number of a replay's moment; None if no cycle of that moment was placed."""
    found = session.scalar(
        select(ReplayMoment.number).where(_replay(data_dir), ReplayMoment.as_of == as_of).limit(1)
    )
    return int(found) if found is not None else None


def place(connection: Connection, data_dir: str | None, as_of: datetime) -> None:
    """Give a replay's moment its number, if it has none yet (the caller holds the turn)."""
    same = _replay(data_dir)
    moment = ReplayMoment.as_of
    held = connection.scalar(select(ReplayMoment.id).where(same, moment == as_of).limit(1))
    if held is not None:
        return
    before = connection.scalar(
        select(ReplayMoment.number).where(same, moment < as_of).order_by(moment.desc()).limit(1)
    )
    # A day run after later ones (a backfill) moves them up; run in order, this matches no row.
    connection.execute(
        update(ReplayMoment).where(same, moment > as_of).values(number=ReplayMoment.number + 1)
    )
    connection.execute(
        insert(ReplayMoment).values(data_dir=data_dir, as_of=as_of, number=(before or 0) + 1)
    )


def renumber(connection: Connection) -> None:
    """Rebuild every replay's moments from the stored cycles (shared.db.record.rebuild)."""
    connection.execute(delete(ReplayMoment))
    ranked = (
        select(
            Cycle.data_dir,
            Cycle.as_of,
            func.dense_rank().over(partition_by=Cycle.data_dir, order_by=Cycle.as_of),
        )
        .where(Cycle.mode == REPLAY)
        .distinct()
    )
    connection.execute(insert(ReplayMoment).from_select(["data_dir", "as_of", "number"], ranked))


def _place_new(session: Session, context: UOWTransaction, instances: object) -> None:
    """before_flush: the moments of the replay cycles this flush inserts, in its transaction."""
    found = {(row.data_dir, row.as_of) for row in session.new
             if isinstance(row, Cycle) and row.mode == REPLAY}  # fmt: skip
    if not found:
        return
    # The session's own connection: its transaction, and no autoflush from inside a flush.
    connection = session.connection()
    # In one order, so that two flushes holding turns of two replays cannot wait on each other.
    for data_dir, as_of in sorted(found, key=lambda moment: (moment[0] or "", moment[1])):
        take_turns(connection, f"replay moments:{data_dir}")
        place(connection, data_dir, as_of)


event.listen(Session, "before_flush", _place_new)
