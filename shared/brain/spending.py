"""What the model API costs: tokens and dollars per call, summed per cycle and per UTC day; caps.

Every real request is one row (a cached reply is no request and costs nothing). Caps are checked
before a request is sent, against what is already spent plus the most the request could cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Date, Float, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from shared.contracts import TokenUsage
from shared.db.models import Base, UtcDateTime
from shared.db.session import session_scope

MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """Dollars per million tokens, by kind of token."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def dollars(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        total = (
            input_tokens * self.input
            + output_tokens * self.output
            + cache_read_tokens * self.cache_read
            + cache_write_tokens * self.cache_write
        )
        return round(total / MILLION, 8)


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


def spent_in_cycle(db_url: str, cycle_key: str) -> float:
    """Dollars spent on the model for one cycle."""
    with session_scope(db_url) as session:
        total = session.scalar(
            select(func.coalesce(func.sum(ModelSpend.dollars), 0.0)).where(
                ModelSpend.cycle_key == cycle_key
            )
        )
    return float(total or 0.0)


def spent_on_day(db_url: str, day: date) -> float:
    """Dollars spent on the model on one UTC day, across all cycles."""
    with session_scope(db_url) as session:
        total = session.scalar(
            select(func.coalesce(func.sum(ModelSpend.dollars), 0.0)).where(ModelSpend.day == day)
        )
    return float(total or 0.0)


def over_budget(
    db_url: str, *, cycle_key: str, at: datetime, caps: Caps, upcoming: float
) -> str | None:
    """Why a request costing at most `upcoming` dollars must not be sent, or None if it may.

    Concurrent minds each check before they spend, so a cycle may overshoot its cap by at most
    one request per mind running at the same moment; the ceiling stays bounded and predictable.
    """
    cycle = spent_in_cycle(db_url, cycle_key)
    if cycle + upcoming > caps.per_cycle:
        return (
            f"budget: cycle {cycle_key} has spent ${cycle:.4f} of its ${caps.per_cycle:.2f} cap "
            f"and the next request may cost up to ${upcoming:.4f}"
        )
    day = utc_day(at)
    daily = spent_on_day(db_url, day)
    if daily + upcoming > caps.per_day:
        return (
            f"budget: {day.isoformat()} has spent ${daily:.4f} of its ${caps.per_day:.2f} daily "
            f"cap and the next request may cost up to ${upcoming:.4f}"
        )
    return None
