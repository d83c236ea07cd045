"""Tables of the record kept incrementally (shared.tallies) and of the desk's own state.

score_tallies / score_cells: one row per scoreboard line (and calibration bucket) of each book,
updated by additive upserts when a call is made, an abstention stored or a call settled.
calibration_bins: the synthesis' recalibration history, one row per bin of the pooled p(up).
desk_state: the version every cycle that changes the desk's state checks and bumps in the
transaction that stores it (so two cycles cannot both build on the same state), and how far the
aggregates reach (record_through: the newest event folded in; a cycle before it reads rows).
learned_rules / stories / calibration_fits: the state itself, a row per rule, per story, and the
last fit, instead of riding on the previous dispatch's payload.
replay_moments: each replay's distinct market moments with their numbers in as_of order, kept as
cycles are claimed (shared.db.moments), so a replay cycle's number is one lookup.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.models import Base, LessonRecord, UtcDateTime


def fresh_record_version() -> int:
    """A record_version to start from: random, well inside a signed 64-bit integer."""
    return secrets.randbits(62)


class ScoreTally(Base):
    """Running sums of one scoreboard line of one book (see shared.scoring.Tally)."""

    __tablename__ = "score_tallies"
    __table_args__ = (UniqueConstraint("book", "cut"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(16))
    cut: Mapped[str] = mapped_column(String(255))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    misses: Mapped[int] = mapped_column(Integer, default=0)
    inconclusive: Mapped[int] = mapped_column(Integer, default=0)
    open: Mapped[int] = mapped_column(Integer, default=0)
    abstentions: Mapped[int] = mapped_column(Integer, default=0)
    withheld: Mapped[int] = mapped_column(Integer, default=0)
    squared: Mapped[float] = mapped_column(Float, default=0.0)
    log: Mapped[float] = mapped_column(Float, default=0.0)
    rated: Mapped[int] = mapped_column(Integer, default=0)
    rated_squared: Mapped[float] = mapped_column(Float, default=0.0)
    base_squared: Mapped[float] = mapped_column(Float, default=0.0)
    base_sum: Mapped[float] = mapped_column(Float, default=0.0)


class ScoreCell(Base):
    """One calibration bucket of one line: count, sum of stated probabilities, hits."""

    __tablename__ = "score_cells"
    __table_args__ = (UniqueConstraint("book", "cut", "bucket"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    book: Mapped[str] = mapped_column(String(16))
    cut: Mapped[str] = mapped_column(String(255))
    bucket: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer, default=0)
    stated: Mapped[float] = mapped_column(Float, default=0.0)
    hits: Mapped[float] = mapped_column(Float, default=0.0)


class CalibrationBin(Base):
    """Settled pooled forecasts in one bin of the pooled p(up) (services.synth.calibrate)."""

    __tablename__ = "calibration_bins"

    bin: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer, default=0)
    ups: Mapped[int] = mapped_column(Integer, default=0)
    base_logit_sum: Mapped[float] = mapped_column(Float, default=0.0)


class DeskState(Base):
    """The version and reach of the desk's state: one row, named "desk"."""

    __tablename__ = "desk_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # False on a database that held calls before the aggregates existed: the first reader
    # builds them from the rows (shared.db.record.rebuild).
    built: Mapped[bool] = mapped_column(Boolean, default=True)
    as_of: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    record_through: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Bumped by every transaction that writes the aggregates (shared.db.record keeps a copy in
    # each process while it is unchanged); from a random start, so that a database recreated at
    # the same address never shows the number another one held.
    record_version: Mapped[int] = mapped_column(
        BigInteger, default=fresh_record_version, server_default="0"
    )


class LearnedRuleRecord(Base):
    """One learned rule as the latest cycle left it (shared.contracts.LearnedRule)."""

    __tablename__ = "learned_rules"

    rule_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # the book's order: the first rule stops
    status: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StoryRecord(Base):
    """One story followed across cycles as the latest cycle left it (shared.contracts.Story)."""

    __tablename__ = "stories"

    story_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CalibrationFit(Base):
    """The synthesis' last recalibration fit: the next cycle's starting point."""

    __tablename__ = "calibration_fits"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    a: Mapped[float] = mapped_column(Float)
    b: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    fitted_as_of: Mapped[datetime] = mapped_column(UtcDateTime)


class ReplayMoment(Base):
    """One market moment of one replay (its data directory; NULL: the bundled replay) and its
    number: 1 + the replay's distinct moments before it, whatever order its days were run in."""

    __tablename__ = "replay_moments"
    __table_args__ = (Index("ix_replay_moments_moment", "data_dir", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    data_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    number: Mapped[int] = mapped_column(Integer)


# Recall reads the newest lessons of a few grid cells of one target and regime: this index makes
# that a short range scan however many lessons are stored.
Index(
    "ix_lessons_recall",
    LessonRecord.target,
    LessonRecord.regime,
    LessonRecord.r5_cell,
    LessonRecord.vol_cell,
    LessonRecord.settled_at,
)
