"""The database's incremental record: the scoreboard's tallies and the recalibration's bins,
folded in by every flush that stores or settles a call, and read in constant time.

Every ORM flush that inserts a call, an abstention or a settled forecast, or turns a call or a
forecast from open to settled, adds its deltas (shared.tallies) in the same transaction, by
additive upserts: concurrent writers never lose an update, and there is no code path that writes
a call without its aggregates. A settled row's status is its mapper's version column (see
shared.db.models), so two settle passes that judged the same call cannot both count it: the
second's UPDATE matches no row and its transaction rolls back.

The aggregates hold every event folded so far; desk_state.record_through is the newest of them.
A cycle whose as_of is at or after it reads the aggregates; one before it (a backfill, a replay
run out of order) reads the rows, as before, so that nothing settled after its as_of leaks in.
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Row, Text, bindparam, case, cast, event, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from shared.contracts import LearnedRule, ScoreLine, Story
from shared.db import moments as replay_moments
from shared.db.aggregates import (
    CalibrationBin,
    CalibrationFit,
    DeskState,
    LearnedRuleRecord,
    ScoreCell,
    ScoreTally,
    StoryRecord,
)
from shared.db.models import (
    AbstentionRecord,
    ForecastRecord,
    PredictionRecord,
    UtcDateTime,
)
from shared.scoring import Abstained, CallOutcome, Key, Tally, line_of, order
from shared.tallies import (
    EVIDENCE,
    PUBLIC,
    SUMS,
    Delta,
    Increments,
    abstained,
    add_increments,
    closed,
    cut_key,
    cut_text,
    increments,
    opened,
)

DESK = "desk"
# The recalibration's bin width in pooled p(up); services.synth.calibrate bins the same way.
BIN = 0.002


def bin_of(pooled: float) -> int:
    return round(pooled / BIN)


def logit(p: float) -> float:
    p = min(1 - 1e-9, max(1e-9, p))
    return math.log(p / (1 - p))


# --- writing --------------------------------------------------------------------------------------


def _upsert(
    dialect: str,
    model: Any,
    keys: tuple[str, ...],
    sums: tuple[str, ...],
    *,
    set_to: tuple[str, ...] = (),
) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET col = col + excluded.col, for each sum, and
    col = excluded.col for each of set_to; built once per dialect and table (building a
    statement costs more than running it). _Kept.moved adds the same way."""
    cached = (dialect, model, keys, sums, set_to)
    found = _UPSERTS.get(cached)
    if found is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = model.__table__
        stmt = insert(table)
        added = {n: table.c[n] + stmt.excluded[n] for n in sums}
        found = _UPSERTS[cached] = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={**added, **{n: stmt.excluded[n] for n in set_to}}
        )
    return found


_UPSERTS: dict[tuple[Any, ...], Any] = {}


def apply(connection: Connection, deltas: Iterable[Delta]) -> Moved:
    """Add the deltas to the stored tallies: one upsert per line touched, in one round trip.
    Returns the rows it added (what each line and cell moved by).

    The deltas of one flush are summed per line first, as plain rows (a Tally per line, with
    its ten calibration cells, cost more to build than the sums it carried)."""
    sums: dict[tuple[str, str], dict[str, Any]] = {}
    cells: dict[tuple[str, str, int], list[float]] = {}
    last: Tally | None = None
    moves: Increments = ((), ())
    for book, key, delta in deltas:
        # One delta goes to every line its call counts in: read what it moves once.
        if delta is not last:
            last, moves = delta, increments(delta)
        line = (book, cut_text(key))
        row = sums.get(line)
        if row is None:
            row = sums[line] = {"book": book, "cut": line[1], **_ZERO}
        for name, value in moves[0]:
            row[name] += value
        for bucket, add in moves[1]:
            cell = cells.get((*line, bucket))
            if cell is None:
                cell = cells[(*line, bucket)] = [0, 0.0, 0]
            cell[0] += add[0]
            cell[1] += add[1]
            cell[2] += add[2]
    if not sums:
        return Moved()
    dialect = connection.dialect.name
    moved = Moved(tallies=list(sums.values()))
    connection.execute(_upsert(dialect, ScoreTally, ("book", "cut"), SUMS), moved.tallies)
    rows = [
        {"book": b, "cut": c, "bucket": bucket, "n": int(n), "stated": stated, "hits": hits}
        for (b, c, bucket), (n, stated, hits) in cells.items()
        if n
    ]
    if rows:
        cell_stmt = _upsert(dialect, ScoreCell, ("book", "cut", "bucket"), ("n", "stated", "hits"))
        connection.execute(cell_stmt, rows)
        moved.cells = rows
    return moved


# A line's sums before anything is added: the Tally's own zeros (integers and floats).
_ZERO = {name: getattr(Tally(), name) for name in SUMS}


def add_bins(
    connection: Connection, items: Iterable[tuple[float, bool, float | None]]
) -> list[dict[str, Any]]:
    """Settled pooled forecasts (pooled p(up), went up, base rate of up) into their bins; the
    rows it added."""
    rows: dict[int, list[float]] = {}
    for pooled, went_up, base_rate in items:
        cell = rows.setdefault(bin_of(pooled), [0, 0, 0.0])
        cell[0] += 1
        cell[1] += int(went_up)
        # Without a known base rate the forecast is anchored on a coin (logit 0).
        cell[2] += logit(base_rate) if base_rate is not None else 0.0
    if not rows:
        return []
    stmt = _upsert(
        connection.dialect.name, CalibrationBin, ("bin",), ("n", "ups", "base_logit_sum")
    )
    values = [{"bin": i, "n": int(n), "ups": int(k), "base_logit_sum": s}
              for i, (n, k, s) in rows.items()]  # fmt: skip
    connection.execute(stmt, values)
    return values


@dataclass
class Moved:
    """What a write added to the aggregates: the rows of its upserts (apply, add_bins)."""

    tallies: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    bins: list[dict[str, Any]] = field(default_factory=list)


_WHEN = bindparam("moment", type_=UtcDateTime())
_THROUGH = DeskState.record_through
_BUMP_RECORD = (
    update(DeskState)
    .where(DeskState.name == DESK)
    .values(record_version=DeskState.record_version + 1)
    .returning(DeskState.record_version)
)
_REACH = _BUMP_RECORD.values(
    record_through=case((or_(_THROUGH.is_(None), _THROUGH < _WHEN), _WHEN), else_=_THROUGH)
)


def _moved(session: Session, moment: datetime | None, moved: Moved | None) -> None:
    """Every write of the aggregates ends here, in its transaction: desk_state.record_through
    moves up to moment (never down; None leaves it), record_version is bumped, and what the
    write touched (None: not known) is kept for this process's copy of the aggregates, which
    takes it when the transaction commits (_take)."""
    connection = session.connection()
    if moment is None:
        version = connection.execute(_BUMP_RECORD).scalar()
    else:
        version = connection.execute(_REACH, {"moment": moment}).scalar()
    _forget(session)
    if version is not None:
        session.info.setdefault(_PENDING, []).append((int(version), moved))


def call_outcome(row: PredictionRecord | Row[*tuple[Any, ...]], status: str) -> CallOutcome:
    """A stored call (its row, or _CALL_COLUMNS of it) as scoring counts it, with the status it
    had at the moment asked about."""
    return CallOutcome.of(row, status, withheld=row.withheld_by is not None)


# What scoring reads of a stored call, and when it was made and settled: read without the ORM
# where many are (rebuilding the aggregates, the events after a moment).
_P = PredictionRecord
_CALL_COLUMNS = (_P.source, _P.regime, _P.status, _P.confidence, _P.asset_class,
                 _P.horizon_hours, _P.topic, _P.base_rate, _P.withheld_by, _P.made_at,
                 _P.settled_at)  # fmt: skip


def _changed_from_open(row: Any) -> bool:
    from sqlalchemy import inspect

    history = inspect(row).attrs.status.history
    before = history.deleted[0] if history.deleted else None
    return before in (None, "open") and row.status not in (None, "open") and bool(history.added)


@dataclass
class _Events:
    """What a transaction's new and settled rows add to the record: the deltas of the scoreboard's
    tallies, the recalibration's settled forecasts, and when each happened. One mapping from a
    row to its events, for a flush's rows (_fold) and for rows inserted around it (add_rows)."""

    deltas: list[Delta] = field(default_factory=list)
    forecasts: list[tuple[float, bool, float | None]] = field(default_factory=list)
    moments: list[datetime] = field(default_factory=list)

    def new(self, model: type[Any], row: Any) -> None:
        """A row about to be inserted (an ORM instance, or a _Values of one)."""
        if model is PredictionRecord:
            self.deltas += opened(call_outcome(row, "open"))
            self.moments.append(row.made_at)
            if row.status not in (None, "open"):
                self.deltas += closed(call_outcome(row, row.status))
                if row.settled_at is not None:
                    self.moments.append(row.settled_at)
        elif model is AbstentionRecord:
            self.deltas += abstained(Abstained(row.source, row.regime))
            self.moments.append(row.made_at)
        elif model is ForecastRecord and _forecast_settled(row):
            self.forecasts.append((row.raw_probability_up, bool(row.went_up), row.base_rate_up))
            self.moments.append(row.settled_at)

    def changed(self, row: object) -> None:
        """A stored row the flush updates: a call or a forecast turned from open to settled."""
        if isinstance(row, PredictionRecord) and _changed_from_open(row):
            self.deltas += closed(call_outcome(row, row.status))
            if row.settled_at is not None:
                self.moments.append(row.settled_at)
        elif isinstance(row, ForecastRecord) and _changed_from_open(row) and _forecast_settled(row):
            self.forecasts.append((row.raw_probability_up, bool(row.went_up), row.base_rate_up))
            self.moments.append(row.settled_at)  # type: ignore[arg-type]

    def write(self, session: Session) -> None:
        """Add them to the aggregates, in the session's transaction."""
        if not self.deltas and not self.forecasts:
            return
        # The session's own connection: its transaction, and no autoflush from inside a flush.
        connection = session.connection()
        moved = apply(connection, self.deltas)
        moved.bins = add_bins(connection, self.forecasts)
        _moved(session, max(self.moments) if self.moments else None, moved)


class _Values:
    """A row's values about to be inserted, read by attribute as its model's instance would be
    (what _Events.new reads of it); a column not given reads as None."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def __getattr__(self, name: str) -> Any:
        return self.values.get(name)


def _fold(session: Session, context: UOWTransaction, instances: object) -> None:
    """before_flush: the deltas of what this flush stores, written in the same transaction."""
    events = _Events()
    for row in session.new:
        events.new(type(row), row)
    for row in session.dirty:
        events.changed(row)
    events.write(session)


def add_rows(session: Session, rows: Sequence[tuple[type[Any], Sequence[dict[str, Any]]]]) -> None:
    """Insert new rows around the unit of work, one executemany per model in the order given, and
    fold what they add to the record in the same transaction, as a flush of them would: a cycle's
    few rows cost less this way than as ORM objects flushed one INSERT ... RETURNING at a time.
    An IntegrityError propagates with nothing folded (the caller rolls back)."""
    connection = session.connection()
    events = _Events()
    for model, values in rows:
        if not values:
            continue
        connection.execute(model.__table__.insert(), list(values))
        for row in values:
            events.new(model, _Values(row))
    events.write(session)


def _forecast_settled(row: Any) -> bool:
    return row.status == "settled" and row.went_up is not None and row.settled_at is not None


event.listen(Session, "before_flush", _fold)


# --- reading --------------------------------------------------------------------------------------


_DESK = select(
    DeskState.built,
    DeskState.record_through,
    DeskState.version,
    DeskState.as_of,
    DeskState.record_version,
).where(DeskState.name == DESK)


@dataclass(frozen=True, slots=True)
class _Desk:
    built: bool
    through: datetime | None  # record_through
    version: int
    as_of: datetime | None  # the state's
    record: int  # record_version


def _desk(session: Session) -> _Desk:
    # The desk's one row, read once per transaction for the record's reach and the state's
    # version alike (a cycle's reads ask four times); a flush that folds events in, a rebuild
    # or a state stored forgets it.
    held: _Desk | None = session.info.get(_DESK_HELD)
    if held is None:
        row = session.execute(_DESK).first()
        held = (
            _Desk(False, None, 0, None, 0)
            if row is None
            else _Desk(bool(row[0]), row[1], int(row[2]), row[3], int(row[4]))
        )
        session.info[_DESK_HELD] = held
    return held


_DESK_HELD = "workshop.desk_state"


def _forget(session: Session) -> None:
    session.info.pop(_DESK_HELD, None)
    session.info.pop(_BOOKS_HELD, None)


def _ended(session: Session, transaction: SessionTransaction) -> None:
    _forget(session)
    if transaction.nested:
        # A savepoint's writes may have been undone: what the copy would be told is not known.
        pending = session.info.get(_PENDING)
        if pending:
            session.info[_PENDING] = [(version, None) for version, _ in pending]
        session.info.pop(_STATE_PENDING, None)
    elif transaction.parent is None:  # the transaction itself (a flush ends one inside it)
        session.info.pop(_PENDING, None)
        session.info.pop(_STATE_PENDING, None)


# What one transaction read is not what the next one may read: other writers move it between.
event.listen(Session, "after_transaction_end", _ended)


# --- the aggregates and the state kept in this process --------------------------------------
#
# A cycle reads every line of both books, the bins and the desk's state, and between two cycles
# of one synthesis process they change only by what that process itself stored, unless a
# resolver settled calls or another cycle was stored. So the process keeps what it read, for
# as long as desk_state.record_version (bumped by every write of the aggregates, _moved) and
# desk_state.version (bumped by every state stored) are what it read them at: the desk row a
# transaction reads anyway says whether the copy is the database's, in that transaction. A
# transaction that wrote the aggregates hands the rows it touched, as stored, to the copy when
# it commits (the copy then follows its own cycles without reading them back), and only if the
# copy was at the version just before its first bump; one that rolls back hands nothing. The
# version starts at random in each database, so that a copy of one is never taken for another
# recreated at the same address. Only a process that writes the aggregates keeps them (the
# synthesis): one that only reads them (ingest, the web app) finds them moved by others at every
# read, and would pay the check below for nothing.
_PENDING = "workshop.record_moved"  # [(record_version after a write, what it touched or None)]
_STATE_PENDING = "workshop.state_stored"


@dataclass(frozen=True)
class _Kept:
    """One database's aggregates as of one record_version: both books, the bins (None: not
    read yet)."""

    version: int
    books: Held | None = None
    bins: tuple[tuple[int, int, int, float], ...] | None = None

    def moved(self, version: int, moved: Moved) -> _Kept:
        """The copy after a write that added these rows, added as its upserts add them (the
        same IEEE additions the database makes, so the copy is what a read would return); new
        containers, as a transaction may still be reading the old ones."""
        books = None
        if self.books is not None:
            books = {book: (dict(sums), dict(cells)) for book, (sums, cells) in self.books.items()}
            for row in moved.tallies:
                held = books.setdefault(row["book"], ({}, {}))[0]
                added = [row[name] for name in SUMS]
                was = held.get(row["cut"])
                # The row's sums are of the Tally's types (apply starts them from _ZERO), as
                # a read of the line returns them.
                held[row["cut"]] = tuple(added if was is None else map(operator.add, was, added))
            for row in moved.cells:
                line = books.setdefault(row["book"], ({}, {}))[1]
                cells, bucket = line.get(row["cut"], []), row["bucket"]
                n, stated, hits = row["n"], row["stated"], row["hits"]
                for b, *sums in cells:
                    if b == bucket:
                        n, stated, hits = sums[0] + n, sums[1] + stated, sums[2] + hits
                others = [cell for cell in cells if cell[0] != bucket]
                line[row["cut"]] = [*others, (bucket, int(n), float(stated), float(hits))]
        bins = None
        if self.bins is not None:
            held_bins = {row[0]: row for row in self.bins}
            for row in moved.bins:
                b, n, ups, base = row["bin"], row["n"], row["ups"], row["base_logit_sum"]
                if b in held_bins:
                    _, was_n, was_ups, was_base = held_bins[b]
                    n, ups, base = was_n + n, was_ups + ups, was_base + base
                held_bins[b] = (b, int(n), int(ups), float(base))
            bins = tuple(held_bins[b] for b in sorted(held_bins))
        return _Kept(version, books, bins)


_KEPT: weakref.WeakKeyDictionary[Any, _Kept] = weakref.WeakKeyDictionary()
_STATES: weakref.WeakKeyDictionary[Any, tuple[tuple[int, int], State]] = weakref.WeakKeyDictionary()
_WRITERS: weakref.WeakSet[Any] = weakref.WeakSet()  # engines this process wrote aggregates by
_CHECK = select(DeskState.record_version, DeskState.version).where(DeskState.name == DESK)


def _kept(session: Session, desk: _Desk) -> _Kept | None:
    """This process's copy of the aggregates, if it is the one the desk row shows."""
    kept = _KEPT.get(session.get_bind())
    return kept if kept is not None and kept.version == desk.record else None


def _may_keep(session: Session, desk: _Desk) -> bool:
    """Whether what this transaction read after the desk row may be kept for others: a process
    that writes the aggregates, nothing of its own written yet, and the versions unchanged since
    (no other write in between)."""
    if session.get_bind() not in _WRITERS:
        return False
    if session.info.get(_PENDING) or session.info.get(_STATE_PENDING):
        return False
    now = session.execute(_CHECK).first()
    return now is not None and (int(now[0]), int(now[1])) == (desk.record, desk.version)


def _keep(session: Session, desk: _Desk, **read: Any) -> None:
    if not _may_keep(session, desk):
        return
    engine = session.get_bind()
    kept = _KEPT.get(engine)
    base = kept if kept is not None and kept.version == desk.record else _Kept(desk.record)
    _KEPT[engine] = replace(base, **read)


def _take(session: Session) -> None:
    """after_commit: what the transaction wrote, into this process's copies."""
    pending = session.info.pop(_PENDING, None)
    state = session.info.pop(_STATE_PENDING, None)
    if not pending:
        return
    engine = session.get_bind()
    _WRITERS.add(engine)
    kept = _KEPT.get(engine)
    for version, moved in pending:
        if kept is None or moved is None or kept.version != version - 1:
            _KEPT.pop(engine, None)
            break
        kept = kept.moved(version, moved)
    else:
        if kept is not None:
            _KEPT[engine] = kept
    if state is not None:
        _STATES[engine] = ((pending[-1][0], state.version), state)


event.listen(Session, "after_commit", _take)


def usable(session: Session, as_of: datetime | None) -> bool:
    """Whether the aggregates are the record as it stood at as_of (None: everything stored)."""
    desk = _desk(session)
    built, through = desk.built, desk.through
    if not built:
        built = rebuild(session)
    if not built:
        return False
    return as_of is None or through is None or through <= as_of


_TALLIES = select(ScoreTally.book, ScoreTally.cut, *(getattr(ScoreTally, n) for n in SUMS))
_CELLS = select(
    ScoreCell.book, ScoreCell.cut, ScoreCell.bucket, ScoreCell.n, ScoreCell.stated, ScoreCell.hits
)
_BOOKS_HELD = "workshop.books"
Held = dict[str, tuple[dict[str, tuple[Any, ...]], dict[str, list[tuple[int, int, float, float]]]]]


def _books_read(session: Session) -> Held:
    """Both books' stored sums and cells, read together once per transaction (a cycle reads
    the public book and the evidence book); a flush that folds events in forgets them."""
    held: Held | None = session.info.get(_BOOKS_HELD)
    if held is None:
        desk = _desk(session)
        kept = _kept(session, desk)
        if kept is not None and kept.books is not None:
            held = kept.books
        else:
            held = {book: ({}, {}) for book in (PUBLIC, EVIDENCE)}
            for book, cut, *values in session.execute(_TALLIES):
                held.setdefault(book, ({}, {}))[0][cut] = tuple(values)
            for book, cut, bucket, n, stated, hits in session.execute(_CELLS):
                cell = (int(bucket), int(n), float(stated), float(hits))
                held.setdefault(book, ({}, {}))[1].setdefault(cut, []).append(cell)
            _keep(session, desk, books=held)
        session.info[_BOOKS_HELD] = held
    return held


@dataclass(frozen=True)
class StoredBook:
    """The record's aggregates in the database, through the RecordBook port (shared.ports): what
    the backtest's TallyBook keeps in memory, folded from the same deltas."""

    session: Session

    def apply(self, deltas: Iterable[Delta]) -> None:
        _moved(self.session, None, apply(self.session.connection(), deltas))

    def lines(
        self, book: str, keeps: Callable[[Key], bool] | None = None, *, detail: bool = False
    ) -> tuple[ScoreLine, ...]:
        """The book's lines from its tallies, in scoreboard order.

        A line is built again only when its stored sums or cells changed since this process
        last built it: a cycle touches a handful of the record's lines, and building a line (its
        intervals, its calibration error, the contract) cost more than reading them all."""
        sums, cells = _books_read(self.session)[book]
        built: list[tuple[Key, ScoreLine]] = []
        for cut, values in sums.items():
            held = tuple(sorted(cells.get(cut, ())))
            memo = (detail, cut, values, held)
            found = _LINES.get(memo)
            if found is None:
                tally = _stored_tally(values, held)
                if len(_LINES) >= LINE_MEMO:
                    _LINES.clear()
                key = cut_key(cut)
                found = _LINES[memo] = (key, line_of(key, tally, detail=detail))
            if keeps is None or keeps(found[0]):
                built.append(found)
        return tuple(line for _, line in sorted(built, key=lambda item: order(item[0])))


def _stored_tally(sums: tuple[Any, ...], cells: Iterable[tuple[int, int, float, float]]) -> Tally:
    """A line's Tally from its stored sums (in SUMS order) and calibration cells."""
    tally = Tally(**dict(zip(SUMS, sums, strict=True)))
    for bucket, n, stated, hits in cells:
        tally.cells[bucket] = [n, stated, hits]
    return tally


def lines(
    session: Session, *, include_withheld: bool = False, detail: bool = False
) -> tuple[ScoreLine, ...]:
    """Every line of one book (public, or evidence with include_withheld) from its tallies."""
    return StoredBook(session).lines(EVIDENCE if include_withheld else PUBLIC, detail=detail)


# Lines built from (detail, cut, sums, cells), in this process; a few books' worth.
LINE_MEMO = 4096
_LINES: dict[tuple[bool, str, tuple[Any, ...], tuple[Any, ...]], tuple[Key, ScoreLine]] = {}


# --- a cycle behind the record ---------------------------------------------------------------
#
# The aggregates hold every event folded so far. A cycle whose as_of is before the newest of them
# (a burst's cycles finish out of order; a day re-run) reads them less the events after its
# as_of: those are few and found by index, and the deltas commute, so taking them away gives the
# record as it stood (the scan's, up to the last bits of its float sums). Past LATER_LIMIT
# events (a far backfill) the rows are read instead.
LATER_LIMIT = 5000
# The sums that count events: a line none of them counts any more had no event by then.
_COUNTS = ("calls", "abstentions", "withheld")


@dataclass(frozen=True)
class Later:
    """What was folded in after a moment: its score deltas, and the pooled forecasts it settled."""

    deltas: list[Delta]
    forecasts: list[tuple[float, bool, float | None]]


def later_than(session: Session, as_of: datetime) -> Later | None:
    """The events folded in after as_of; None when there are more than LATER_LIMIT."""
    p, a, f = PredictionRecord, AbstentionRecord, ForecastRecord
    calls = session.execute(
        select(*_CALL_COLUMNS)
        .where(or_(p.made_at > as_of, p.settled_at > as_of))
        .limit(LATER_LIMIT + 1)
    ).all()
    skipped = session.execute(
        select(a.source, a.regime).where(a.made_at > as_of).limit(LATER_LIMIT + 1)
    ).all()
    # By settled_at alone (its index: a status condition would steer the planner to scan every
    # settled forecast); the few found are filtered here.
    settled = session.execute(
        select(f.raw_probability_up, f.went_up, f.base_rate_up, f.status)
        .where(f.settled_at > as_of)
        .limit(LATER_LIMIT + 1)
    ).all()
    if len(calls) + len(skipped) + len(settled) > LATER_LIMIT:
        return None
    deltas: list[Delta] = []
    for r in calls:
        call = call_outcome(r, "open")
        if r.made_at > as_of:
            deltas += opened(call)
        if r.status not in (None, "open") and r.settled_at is not None and r.settled_at > as_of:
            deltas += closed(replace(call, status=r.status))
    for source, regime in skipped:
        deltas += abstained(Abstained(source, regime))
    forecasts = [
        (float(x), bool(up), base)
        for x, up, base, status in settled
        if status == "settled" and up is not None
    ]
    return Later(deltas, forecasts)


def lines_before(
    session: Session, later: Later, *, include_withheld: bool = False, detail: bool = False
) -> tuple[ScoreLine, ...]:
    """One book's lines from its aggregates less the later events."""
    book = EVIDENCE if include_withheld else PUBLIC
    sums, cells = _books_read(session)[book]
    tallies = {cut: _stored_tally(values, cells.get(cut, ())) for cut, values in sums.items()}
    last: Tally | None = None
    taken: Increments = ((), ())
    for name, key, delta in later.deltas:
        if name != book:
            continue
        if delta is not last:
            sums_moved, cells_moved = increments(delta)
            last = delta
            taken = (tuple((n, -v) for n, v in sums_moved),
                     tuple((b, [-x for x in add]) for b, add in cells_moved))  # fmt: skip
        held = tallies.get(cut_text(key))
        if held is not None:
            add_increments(held, taken)
    kept = [
        (cut_key(cut), tally)
        for cut, tally in tallies.items()
        if any(getattr(tally, name) for name in _COUNTS)
    ]
    return tuple(line_of(k, t, detail=detail) for k, t in sorted(kept, key=lambda kt: order(kt[0])))


def bins_before(session: Session, later: Later) -> list[tuple[int, int, int, float]]:
    """bins() less the pooled forecasts settled after the moment."""
    held = {index: [n, ups, base] for index, n, ups, base in bins(session)}
    for pooled, went_up, base_rate in later.forecasts:
        cell = held.get(bin_of(pooled))
        if cell is not None:
            cell[0] -= 1
            cell[1] -= int(went_up)
            cell[2] -= logit(base_rate) if base_rate is not None else 0.0
    return [(i, int(n), int(ups), float(base)) for i, (n, ups, base) in sorted(held.items()) if n]


def bins(session: Session) -> list[tuple[int, int, int, float]]:
    """(bin, forecasts, ups, sum of base-rate logits) of every bin of settled pooled forecasts."""
    desk = _desk(session)
    kept = _kept(session, desk)
    if kept is not None and kept.bins is not None:
        return list(kept.bins)
    found = [(int(b), int(n), int(k), float(s)) for b, n, k, s in session.execute(_BINS)]
    _keep(session, desk, bins=tuple(found))
    return found


_BINS = select(CalibrationBin.bin, CalibrationBin.n, CalibrationBin.ups,
               CalibrationBin.base_logit_sum).order_by(CalibrationBin.bin)  # fmt: skip


def rebuild(session: Session) -> bool:
    """Build the aggregates from the stored rows, once (a database from before they existed).

    The first caller claims the job by flipping desk_state.built; others see it built. Returns
    whether the aggregates can be read.
    """
    from shared.scoring import tallies

    desk = session.get(DeskState, DESK)
    if desk is None:
        session.add(DeskState(name=DESK, version=0, built=False))
        session.flush()
    _forget(session)
    claimed = session.execute(
        update(DeskState).where(DeskState.name == DESK, DeskState.built.is_(False))
        .values(built=True)
    )  # fmt: skip
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return True
    calls: list[CallOutcome] = []
    moments: list[datetime] = []
    for r in session.execute(select(*_CALL_COLUMNS)):
        calls.append(call_outcome(r, r.status))
        moments.append(r.settled_at or r.made_at)
    skipped = session.execute(
        select(AbstentionRecord.source, AbstentionRecord.regime, AbstentionRecord.made_at)
    ).all()
    abstentions = [Abstained(s, r) for s, r, _ in skipped]
    moments += [made for *_, made in skipped]
    connection = session.connection()
    for book, include in ((PUBLIC, False), (EVIDENCE, True)):
        found = tallies(calls, abstentions, include_withheld=include)
        apply(connection, ((book, key, tally) for key, tally in found.items()))
    forecasts = session.execute(
        select(ForecastRecord.raw_probability_up, ForecastRecord.went_up,
               ForecastRecord.base_rate_up, ForecastRecord.settled_at)
        .where(ForecastRecord.status == "settled", ForecastRecord.went_up.is_not(None))
    ).all()  # fmt: skip
    add_bins(connection, ((pooled, bool(up), base) for pooled, up, base, _ in forecasts))
    moments += [settled for *_, settled in forecasts if settled is not None]
    # Whatever the aggregates held before (nothing, or rows deleted by hand): not known here.
    _moved(session, max(moments) if moments else None, None)
    # Cycles written around the ORM were not numbered as they came: number them all.
    replay_moments.renumber(connection)
    return True


# --- the desk's own state -------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Rules, stories and the last fit as the latest cycle left them, with the version to check
    when storing the next state."""

    version: int
    as_of: datetime | None
    rules: tuple[LearnedRule, ...]
    stories: tuple[Story, ...]
    fit: tuple[float, float] | None


class StateConflict(Exception):
    """Another cycle stored a new state since this one read it: read again and redo."""


def load_state(session: Session) -> State:
    """The desk's state as the latest cycle left it: this process's copy while the desk row
    shows the versions it was kept at."""
    desk = _desk(session)
    kept = _STATES.get(session.get_bind())
    if kept is not None and kept[0] == (desk.record, desk.version):
        return kept[1]
    connection = session.connection()
    rules = connection.execute(_RULES).scalars()
    stories = connection.execute(_STORIES).scalars()
    fit = session.execute(select(CalibrationFit.a, CalibrationFit.b)).first()
    state = State(
        version=desk.version,
        as_of=desk.as_of,
        rules=tuple(_rule(text) for text in rules),
        stories=tuple(_story(text) for text in stories),
        fit=(float(fit[0]), float(fit[1])) if fit is not None else None,
    )
    if _may_keep(session, desk):
        _STATES[session.get_bind()] = ((desk.record, desk.version), state)
    return state


# The state's rules and stories as their stored text: a cycle reads them every time and they
# seldom change, so each is parsed once per process, keyed by that text (never stale).
_RULES = select(cast(LearnedRuleRecord.payload, Text)).order_by(LearnedRuleRecord.position)
_STORIES = select(cast(StoryRecord.payload, Text)).order_by(StoryRecord.position)


@lru_cache(maxsize=256)
def _rule(text: str) -> LearnedRule:
    return LearnedRule.model_validate_json(text)


@lru_cache(maxsize=256)
def _story(text: str) -> Story:
    return Story.model_validate_json(text)


def save_state(
    session: Session,
    read: State,
    as_of: datetime,
    rules: Sequence[LearnedRule],
    stories: Sequence[Story],
    fit: tuple[float, float, int] | None,
) -> None:
    """Store the state a cycle leaves, if no other cycle stored one since `read` was loaded.

    Raises StateConflict otherwise (the caller's transaction then rolls back, cycle and all).
    """
    connection = session.connection()
    bumped = connection.execute(
        _BUMP, {"read": read.version, "to": read.version + 1, "as_of": as_of}
    )
    if bumped.rowcount != 1:
        raise StateConflict(f"the desk's state moved past version {read.version}")
    _forget(session)
    # The bump matched the version `read` was loaded at, so the tables hold read's rules and
    # stories (every state is stored with a bump): what changed is known without reading them.
    # Unchanged rules or stories (most cycles) need no write.
    if tuple(rules) != read.rules:
        _replace(connection, LearnedRuleRecord, "rule_id", read.rules, rules, as_of)
    if tuple(stories) != read.stories:
        _replace(connection, StoryRecord, "story_key", read.stories, stories, as_of)
    stored = (float(fit[0]), float(fit[1])) if fit is not None else read.fit
    session.info[_STATE_PENDING] = State(read.version + 1, as_of, tuple(rules), tuple(stories),
                                         stored)  # fmt: skip
    if fit is not None:
        a, b, n = fit
        stmt = _upsert(connection.dialect.name, CalibrationFit, ("name",), (), set_to=_FIT_COLUMNS)
        connection.execute(
            stmt, {"name": "synthesis", "a": a, "b": b, "n": n, "fitted_as_of": as_of}
        )


_FIT_COLUMNS = ("a", "b", "n", "fitted_as_of")
_BUMP = (
    update(DeskState)
    .where(DeskState.name == DESK, DeskState.version == bindparam("read"))
    .values(version=bindparam("to"), as_of=bindparam("as_of", type_=UtcDateTime()))
)


def _replace(
    connection: Connection,
    model: Any,
    key: str,
    held: Sequence[LearnedRule | Story],
    items: Sequence[LearnedRule | Story],
    when: datetime,
) -> None:
    """Make the table, holding `held` in its order, hold exactly these items, in this order (rows
    change only if they did)."""
    table = model.__table__
    was = {_name(item): (position, item) for position, item in enumerate(held)}
    added: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    for position, item in enumerate(items):
        name = _name(item)
        before = was.pop(name, None)
        if before != (position, item):
            row = {"position": position, "status": item.status,
                   "payload": item.model_dump(mode="json"), "updated_at": when}  # fmt: skip
            if before is None:
                added.append({key: name, **row})
            else:
                moved.append({"held_key": name, **row})
    if was:
        connection.execute(table.delete().where(table.c[key].in_(list(was))))
    if moved:
        connection.execute(table.update().where(table.c[key] == bindparam("held_key")), moved)
    if added:
        connection.execute(table.insert(), added)


def _name(item: LearnedRule | Story) -> str:
    return item.id if isinstance(item, LearnedRule) else item.key
