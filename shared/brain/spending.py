"""What the model API costs: tokens and dollars per call, summed per cycle and per UTC day; caps.

Every real request is one row (a cached reply is no request and costs nothing). Before a request
is sent, the most it could cost is reserved as a row of its own, in one transaction that first
takes the ledger's lock and then checks the caps against everything spent or reserved; after the
reply the row is settled to what the call really cost (or released if nothing was spent). Minds
running in parallel therefore cannot together overshoot a cap: the second one sees the first
one's reservation. A reservation left by a process that died mid-call keeps counting, which errs
on the side of the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Date, Float, Integer, String, delete, func, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.brain.models import Prices
from shared.contracts import TokenUsage
from shared.db.models import Base, UtcDateTime
from shared.db.session import session_scope

__all__ = [
    "Caps",
    "ModelSpend",
    "Prices",
    "cycle_usage",
    "over_budget",
    "record_spend",
    "release",
    "reserve",
    "settle",
    "spent_in_cycle",
    "spent_on_day",
]


@dataclass(frozen=True)
class Caps:
    """Most the desk may spend on the model per cycle and per UTC day, in dollars."""

    per_cycle: float
    per_day: float


class ModelSpend(Base):
    """One request to the model API: who asked, for which cycle, and what it cost."""

    __tablename__ = "model_spend"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(String(128), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    purpose: Mapped[str] = mapped_column(String(64), doc="The mind, or 'synthesis'.")
    model: Mapped[str] = mapped_column(String(128))
    request_key: Mapped[str] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    dollars: Mapped[float] = mapped_column(Float, default=0.0)


def record_spend(
    db_url: str,
    *,
    cycle_key: str,
    purpose: str,
    model: str,
    request_key: str,
    usage: TokenUsage,
    at: datetime,
) -> None:
    """Add one request's tokens and dollars to the ledger (at is aware; its UTC date is the day)."""
    with session_scope(db_url) as session:
        session.add(
            ModelSpend(
                cycle_key=cycle_key,
                day=utc_day(at),
                at=at,
                purpose=purpose,
                model=model,
                request_key=request_key,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                dollars=usage.dollars,
            )
        )


def utc_day(at: datetime) -> date:
    """The UTC calendar day of an aware moment: the daily cap resets at midnight UTC."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the spend ledger")
    return at.astimezone(UTC).date()


def cycle_usage(db_url: str, cycle_key: str) -> TokenUsage:
    """Everything the model API cost for one cycle so far."""
    with session_scope(db_url) as session:
        row = session.execute(
            select(
                func.coalesce(func.sum(ModelSpend.input_tokens), 0),
                func.coalesce(func.sum(ModelSpend.output_tokens), 0),
                func.coalesce(func.sum(ModelSpend.cache_read_tokens), 0),
                func.coalesce(func.sum(ModelSpend.cache_write_tokens), 0),
                func.coalesce(func.sum(ModelSpend.dollars), 0.0),
            ).where(ModelSpend.cycle_key == cycle_key)
        ).one()
    return TokenUsage(
        input_tokens=int(row[0]),
        output_tokens=int(row[1]),
        cache_read_tokens=int(row[2]),
        cache_write_tokens=int(row[3]),
        dollars=round(float(row[4]), 8),
    )


def _spent_in_cycle(session: Session, cycle_key: str) -> float:
    total = session.scalar(
        select(func.coalesce(func.sum(ModelSpend.dollars), 0.0)).where(
            ModelSpend.cycle_key == cycle_key
        )
    )
    return float(total or 0.0)


def _spent_on_day(session: Session, day: date) -> float:
    total = session.scalar(
        select(func.coalesce(func.sum(ModelSpend.dollars), 0.0)).where(ModelSpend.day == day)
    )
    return float(total or 0.0)


def spent_in_cycle(db_url: str, cycle_key: str) -> float:
    """Dollars spent (or reserved) on the model for one cycle."""
    with session_scope(db_url) as session:
        return _spent_in_cycle(session, cycle_key)


def spent_on_day(db_url: str, day: date) -> float:
    """Dollars spent (or reserved) on the model on one UTC day, across all cycles."""
    with session_scope(db_url) as session:
        return _spent_on_day(session, day)


def _refusal(
    session: Session, *, cycle_key: str, at: datetime, caps: Caps, upcoming: float, mine: float
) -> str | None:
    # `mine` is a reservation already added in this transaction: it is in the sums, so the
    # others' spend is the sum without it.
    cycle = _spent_in_cycle(session, cycle_key) - mine
    if cycle + upcoming > caps.per_cycle + 1e-12:
        return (
            f"budget: cycle {cycle_key} has spent ${cycle:.4f} of its ${caps.per_cycle:.2f} cap "
            f"and the next request may cost up to ${upcoming:.4f}"
        )
    day = utc_day(at)
    daily = _spent_on_day(session, day) - mine
    if daily + upcoming > caps.per_day + 1e-12:
        return (
            f"budget: {day.isoformat()} has spent ${daily:.4f} of its ${caps.per_day:.2f} daily "
            f"cap and the next request may cost up to ${upcoming:.4f}"
        )
    return None


def over_budget(
    db_url: str, *, cycle_key: str, at: datetime, caps: Caps, upcoming: float
) -> str | None:
    """Why a request costing at most `upcoming` dollars must not be sent, or None if it may.

    A read-only check: to send a request, reserve() instead, which checks and books at once.
    """
    with session_scope(db_url) as session:
        return _refusal(session, cycle_key=cycle_key, at=at, caps=caps, upcoming=upcoming, mine=0)


def _lock_ledger(session: Session) -> None:
    """Serialise reservations. SQLite: the reservation's INSERT, made first, takes the single
    writer lock, so a second reserver waits for this transaction to end. PostgreSQL: an inserted
    row locks nothing the others read, so a transaction-scoped advisory lock does it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('model_spend'))"))


def reserve(
    db_url: str,
    *,
    cycle_key: str,
    purpose: str,
    model: str,
    request_key: str,
    at: datetime,
    caps: Caps,
    upcoming: float,
) -> int | str:
    """Book the most a request may cost before it is sent: the reservation's id, or (when it
    would break a cap) the reason why not, with nothing booked. One transaction, so two minds
    reserving at the same moment see each other."""
    with session_scope(db_url) as session:
        _lock_ledger(session)
        row = ModelSpend(
            cycle_key=cycle_key,
            day=utc_day(at),
            at=at,
            purpose=purpose,
            model=model,
            request_key=request_key,
            dollars=upcoming,
        )
        session.add(row)
        session.flush()
        refusal = _refusal(
            session, cycle_key=cycle_key, at=at, caps=caps, upcoming=upcoming, mine=upcoming
        )
        if refusal is not None:
            session.delete(row)
            return refusal
        return int(row.id)


def settle(db_url: str, reservation: int, usage: TokenUsage) -> None:
    """Replace a reservation by what the call really cost."""
    with session_scope(db_url) as session:
        session.execute(
            update(ModelSpend)
            .where(ModelSpend.id == reservation)
            .values(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                dollars=usage.dollars,
            )
        )


def release(db_url: str, reservation: int) -> None:
    """Drop a reservation whose request cost nothing (refused, timed out, never answered)."""
    with session_scope(db_url) as session:
        session.execute(delete(ModelSpend).where(ModelSpend.id == reservation))
