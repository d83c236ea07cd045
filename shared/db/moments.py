"""A replay cycle's number, kept as cycles are claimed rather than counted when read.

A replay's cycle is numbered 1 + the distinct market moments (as_of) of the same replay before
it, whatever order its days were run or re-run in. Counting them each time reads every cycle of
the replay (a cycle every ten minutes is 50,000 a year); instead replay_moments holds each
moment once with its number, and every flush that inserts a replay cycle (and the ingest's claim,
which inserts its cycle without the ORM) places its moment in the same transaction: the moments
after it move up by one (none, when days run in order) and it takes the number after its
predecessor's. Writers of one replay take turns, so two cycles claimed at once cannot take the
same number. A database whose cycles were written around both (bulk inserts) gets its moments
from shared.db.record.rebuild with the other aggregates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.sql.dml import ReturningInsert

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
    elif dialect == "sqlite" and not sqlite_wrote(connection, unknown=False):
        # A write statement takes SQLite's single writer lock, even when it changes no row (and
        # it opens the transaction, so the reads after it are inside it).
        connection.execute(text("UPDATE cycles SET id = id WHERE 0 = 1"))


def sqlite_wrote(connection: Connection, *, unknown: bool) -> bool:
    """Whether this SQLite transaction wrote already, and so holds the writer lock until it ends
    (a claim inserts its cycle first) and needs a checkpoint once committed: the sqlite3 driver
    begins a transaction of its own only before a statement that writes. `unknown` is the
    answer when the driver's connection cannot tell: each caller's safe side."""
    dbapi = connection.connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", unknown))


def _same(bundled: bool) -> ColumnElement[bool]:
    """The moments of one replay: the bundled one's (data_dir NULL), or a bound directory's."""
    column = ReplayMoment.data_dir
    return column.is_(None) if bundled else column == bindparam("replay")


def _params(data_dir: str | None, as_of: datetime) -> dict[str, object]:
    # Named apart from the columns: an UPDATE reserves its columns' names for its SET clause.
    return {"moment": as_of, "replay": data_dir}


# Each statement is built once for each kind of replay (keyed by whether it is the bundled one):
# building a statement costs more than running it.
_AS_OF = bindparam("moment", type_=ReplayMoment.as_of.type)
_HELD, _BEFORE, _AFTER = "held", "before", "after"


def _neighbours(bundled: bool) -> CompoundSelect[int, str]:
    """The replay's moment at as_of if it is held, else the one before it; and the one after it:
    one statement, each side the newest or the oldest by the moments' index."""
    same, moment, number = _same(bundled), ReplayMoment.as_of, ReplayMoment.number
    side = case((moment == _AS_OF, literal(_HELD)), else_=literal(_BEFORE))
    here = (select(number, side.label("side")).where(same, moment <= _AS_OF)
            .order_by(moment.desc()).limit(1).subquery("here"))  # fmt: skip
    after = (select(number, literal(_AFTER).label("side")).where(same, moment > _AS_OF)
             .order_by(moment).limit(1).subquery("after"))  # fmt: skip
    return union_all(select(*here.c), select(*after.c))


_KINDS = (True, False)
_NEIGHBOURS = {bundled: _neighbours(bundled) for bundled in _KINDS}
_SHIFT = {bundled: update(ReplayMoment).where(_same(bundled), ReplayMoment.as_of > _AS_OF)
          .values(number=ReplayMoment.number + 1) for bundled in _KINDS}  # fmt: skip
_NUMBER = {bundled: select(ReplayMoment.number).where(_same(bundled), ReplayMoment.as_of == _AS_OF)
           .limit(1) for bundled in _KINDS}  # fmt: skip
_PLACE = insert(ReplayMoment)


def _append(bundled: bool) -> ReturningInsert[int]:
    """A moment after every held one of its replay (days run in order) takes the number after
    the last's, in one statement; it inserts nothing (and returns no number) otherwise."""
    same, moment = _same(bundled), ReplayMoment.as_of
    last = (select(ReplayMoment.number).where(same).order_by(moment.desc()).limit(1)
            .scalar_subquery())  # fmt: skip
    later = select(ReplayMoment.id).where(same, moment >= _AS_OF)
    appended = select(bindparam("replay", type_=ReplayMoment.data_dir.type), _AS_OF,
                      func.coalesce(last, 0) + 1).where(~later.exists())  # fmt: skip
    return (insert(ReplayMoment).from_select(["data_dir", "as_of", "number"], appended)
            .returning(ReplayMoment.number))  # fmt: skip


_APPEND = {bundled: _append(bundled) for bundled in _KINDS}


def number(session: Session, data_dir: str | None, as_of: datetime) -> int | None:
    """The number of a replay's moment; None if no cycle of that moment was placed."""
    found = session.scalar(_NUMBER[data_dir is None], _params(data_dir, as_of))
    return int(found) if found is not None else None


def place(connection: Connection, data_dir: str | None, as_of: datetime) -> int:
    """Give a replay's moment its number, if it has none yet, and return its number (the caller
    holds the turn)."""
    params = _params(data_dir, as_of)
    bundled = data_dir is None
    appended = connection.execute(_APPEND[bundled], params).scalar()
    if appended is not None:
        return int(appended)
    near = {side: int(n) for n, side in connection.execute(_NEIGHBOURS[bundled], params)}
    if _HELD in near:
        return near[_HELD]
    if _AFTER in near:
        # A day run after later ones (a backfill) moves them up; run in order, none is after it.
        connection.execute(_SHIFT[bundled], params)
    placed = near.get(_BEFORE, 0) + 1
    connection.execute(_PLACE, {"data_dir": data_dir, "as_of": as_of, "number": placed})
    return placed


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


def place_inserted(
    connection: Connection, cycles: Iterable[tuple[str, str | None, datetime]]
) -> dict[tuple[str | None, datetime], int]:
    """Place the moments of the replay cycles being inserted, (mode, data_dir, as_of) each, in
    the connection's transaction; returns each replay moment's number (a live cycle has none:
    its number is its row id)."""
    found = {(data_dir, as_of) for mode, data_dir, as_of in cycles if mode == REPLAY}
    numbers = {}
    # In one order, so that two writers holding turns of two replays cannot wait on each other.
    for data_dir, as_of in sorted(found, key=lambda moment: (moment[0] or "", moment[1])):
        take_turns(connection, f"replay moments:{data_dir}")
        numbers[(data_dir, as_of)] = place(connection, data_dir, as_of)
    return numbers


def _place_new(session: Session, context: UOWTransaction, instances: object) -> None:
    """before_flush: the moments of the replay cycles this flush inserts, in its transaction."""
    found = [(row.mode, row.data_dir, row.as_of) for row in session.new if isinstance(row, Cycle)]
    if found:
        # The session's own connection: its transaction, and no autoflush from inside a flush.
        place_inserted(session.connection(), found)


event.listen(Session, "before_flush", _place_new)
