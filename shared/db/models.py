"""The desk's tables. Every row that a task writes has a natural key, so a redelivered task
or a repeated trigger changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from shared.calendar import utc_now

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import UTC

        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Cycle(Base):
    """One claimed cycle key; its id is the cycle number the dispatch shows."""

    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(String(128), unique=True)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    mode: Mapped[str] = mapped_column(String(16))
    data_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    launched_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The cycle's two largest columns are loaded only by the readers that want them (the
    # synthesis, a re-drive): claiming, launching and publishing touch the row without them.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, deferred=True)
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, deferred=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A stuck cycle is re-driven a bounded number of times, then closed (services.ingest.sweep).
    redrives: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    redriven_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class MindRecord(Base):
    """What one mind said in one cycle."""

    __tablename__ = "mind_outputs"
    __table_args__ = (UniqueConstraint("cycle_key", "mind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(ForeignKey("cycles.cycle_key"), index=True)
    mind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    stance: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    regime: Mapped[str] = mapped_column(String(16), default="unknown")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class DispatchRecord(Base):
    """The published dispatch of a cycle: exactly one per cycle key."""

    __tablename__ = "dispatches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(ForeignKey("cycles.cycle_key"), unique=True)
    cycle_number: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    title: Mapped[str] = mapped_column(String(200))
    body_md: Mapped[str] = mapped_column(Text)
    debate: Mapped[str] = mapped_column(String(32))
    conviction: Mapped[float] = mapped_column(Float)
    regime: Mapped[str] = mapped_column(String(16))
    abstained: Mapped[bool] = mapped_column(Boolean)
    abstention: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class PredictionRecord(Base):
    """A call (the synthesis' or a mind's) and, once matured, how it settled."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("cycle_key", "source"), UniqueConstraint("call_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(ForeignKey("cycles.cycle_key"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    horizon_hours: Mapped[int] = mapped_column(Integer)
    reference_price: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    made_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    matures_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    regime: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(32))
    asset_class: Mapped[str] = mapped_column(String(32))
    # How often the called outcome happened in the history known at made_at: the reference of
    # the call's Brier skill, fixed when the call is made so that later data cannot move it.
    base_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    # direction | threshold | range, and a range call's half-width in percent of the reference.
    kind: Mapped[str] = mapped_column(String(16), default="direction", server_default="direction")
    range_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The called outcome's probability under a driftless random walk at trailing volatility.
    naive_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What the call is (source, target, kind, horizon, made_at): the same call reached by two
    # triggers of the same market moment (a cycle and a replay) is stored and scored once.
    call_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    settle_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    realized_move_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    settle_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set when a learned rule stopped the call: never published or in the scoreboard, but
    # settled like any call so the rule's evidence keeps growing.
    withheld_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    # The status is checked by every UPDATE (`... WHERE id = ? AND status = <as read>`): of two
    # settle passes that judged the same open call, the second matches no row and rolls back,
    # so a call is settled, and counted in the record's aggregates, once.
    __mapper_args__ = {"version_id_col": status, "version_id_generator": False}  # noqa: RUF012


class ForecastRecord(Base):
    """A cycle's pooled p(up), called or not, and whether the target then closed up.

    The synthesis recalibrates its pool from these, so every cycle stores one, abstentions too.
    """

    __tablename__ = "forecasts"
    # A cycle's store looks for its market moment's pooled forecast (one per moment).
    __table_args__ = (Index("ix_forecasts_moment", "target", "horizon_hours", "made_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(ForeignKey("cycles.cycle_key"), unique=True)
    target: Mapped[str] = mapped_column(String(32))
    horizon_hours: Mapped[int] = mapped_column(Integer)
    reference_price: Mapped[float] = mapped_column(Float)
    made_at: Mapped[datetime] = mapped_column(UtcDateTime)
    matures_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    regime: Mapped[str] = mapped_column(String(16))
    raw_probability_up: Mapped[float] = mapped_column(Float)
    probability_up: Mapped[float | None] = mapped_column(Float, nullable=True)
    base_rate_up: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    went_up: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    settle_price: Mapped[float | None] = mapped_column(Float, nullable=True)

    # As for calls: a forecast settles once (its bin of the recalibration counts it once).
    __mapper_args__ = {"version_id_col": status, "version_id_generator": False}  # noqa: RUF012


class LessonRecord(Base):
    """What a settled call (or pooled forecast) taught, kept for later cycles to recall.

    The grid cell of the tape it was made on is a column, so a cycle can fetch its neighbours.
    """

    __tablename__ = "lessons"
    __table_args__ = (UniqueConstraint("cycle_key", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(ForeignKey("cycles.cycle_key"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(32))
    regime: Mapped[str] = mapped_column(String(16))
    made_at: Mapped[datetime] = mapped_column(UtcDateTime)
    settled_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    r5_cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vol_cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AbstentionRecord(Base):
    """A source that declined to call in a cycle: counted and shown, never as a hit."""

    __tablename__ = "abstentions"
    __table_args__ = (UniqueConstraint("cycle_key", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_key: Mapped[str] = mapped_column(ForeignKey("cycles.cycle_key"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    regime: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    made_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class NoteRecord(Base):
    """An operator's note for the desk, read by the next snapshot as untrusted input."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    author: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    text: Mapped[str] = mapped_column(Text)
