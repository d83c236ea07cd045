"""Point-in-time track records read from the database: only what was settled by as_of counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.contracts import Dispatch, Fingerprint, Lesson, TrackRecord
from shared.db.models import (
    AbstentionRecord,
    DispatchRecord,
    ForecastRecord,
    LessonRecord,
    PredictionRecord,
)
from shared.memory import near_cells
from shared.scoring import Abstained, CallOutcome, score_lines


def track_record(
    session: Session,
    as_of: datetime | None = None,
    *,
    detail: bool = False,
    include_withheld: bool = False,
) -> TrackRecord:
    """Every source's record as it stood at as_of (None: everything stored).

    detail adds each line's calibration buckets (the scoreboard's plots); a cycle's context leaves
    them out to stay small on the wire. include_withheld counts the calls learned rules stopped
    (the evidence rules are judged on); the scoreboard never does.
    """
    query = select(PredictionRecord)
    skipped = select(AbstentionRecord)
    if as_of is not None:
        query = query.where(PredictionRecord.made_at <= as_of)
        skipped = skipped.where(AbstentionRecord.made_at <= as_of)
    calls = []
    for row in session.scalars(query):
        status = row.status
        # A call settled after as_of was still open then: the record must not know its outcome.
        if as_of is not None and row.settled_at is not None and row.settled_at > as_of:
            status = "open"
        calls.append(
            CallOutcome(
                row.source,
                row.regime,
                status,
                row.confidence,
                asset_class=row.asset_class,
                horizon_hours=row.horizon_hours,
                topic=row.topic,
                base_rate=row.base_rate,
                withheld=row.withheld_by is not None,
            )
        )
    abstentions = [Abstained(a.source, a.regime) for a in session.scalars(skipped)]
    lines = score_lines(calls, abstentions, detail=detail, include_withheld=include_withheld)
    return TrackRecord(as_of=as_of, lines=lines)


def previous_dispatch(session: Session, as_of: datetime) -> Dispatch | None:
    """The last dispatch published for a cycle before as_of: what the desk carried forward
    (its rule book, its stories)."""
    row = session.scalar(
        select(DispatchRecord)
        .where(DispatchRecord.as_of < as_of)
        .order_by(DispatchRecord.as_of.desc(), DispatchRecord.id.desc())
        .limit(1)
    )
    return Dispatch.model_validate(row.payload) if row is not None else None


def forecast_history(session: Session, as_of: datetime) -> list[tuple[float, bool, float | None]]:
    """(raw pooled p(up), went up, base rate of up then) of every pooled forecast settled by
    as_of, oldest first.

    What the synthesis' recalibration is fitted on: never a forecast settled after as_of.
    """
    query = (
        select(
            ForecastRecord.raw_probability_up, ForecastRecord.went_up, ForecastRecord.base_rate_up
        )
        .where(
            ForecastRecord.status == "settled",
            ForecastRecord.settled_at <= as_of,
            ForecastRecord.went_up.is_not(None),
        )
        .order_by(ForecastRecord.settled_at, ForecastRecord.id)
    )
    return [(float(p), bool(up), base) for p, up, base in session.execute(query)]


def lessons_near(
    session: Session, target: str, regime: str, tape: Fingerprint, as_of: datetime
) -> list[Lesson]:
    """Lessons a cycle may recall: same target and regime, a tape in today's grid cell or a
    neighbouring one, settled by as_of (shared.memory.recall_from ranks them)."""
    cells = near_cells(tape)
    query = select(LessonRecord.payload).where(
        LessonRecord.target == target,
        LessonRecord.regime == regime,
        LessonRecord.settled_at <= as_of,
        LessonRecord.made_at < as_of,
    )
    r5 = {c[0] for c in cells}
    vol = {c[1] for c in cells}
    if None not in r5 and None not in vol:
        query = query.where(LessonRecord.r5_cell.in_(r5), LessonRecord.vol_cell.in_(vol))
    return [Lesson.model_validate(payload) for payload in session.scalars(query)]
