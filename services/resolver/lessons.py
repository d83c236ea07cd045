"""Writing a lesson for every call and pooled forecast the resolver settles.

The lesson rests on the call's own basis and the tape of the cycle that made it; later cycles
recall it (shared.memory). Writing twice changes nothing: one lesson per cycle and source.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.contracts import NO_TAPE, Features, Fingerprint, Outcome, Prediction, Regime, Resolution
from shared.db.models import Cycle, ForecastRecord, LessonRecord, PredictionRecord
from shared.memory import fingerprint, write_lesson

POOL = "pool"


def _forecast_prediction(row: ForecastRecord) -> Prediction:
    return Prediction(
        source=POOL,
        target=row.target,
        direction="up",
        horizon_hours=row.horizon_hours,
        reference_price=row.reference_price,
        confidence=row.raw_probability_up,
        falsifier=f"{row.target} closes above {row.reference_price:.2f} or not",
        made_at=row.made_at,
        matures_at=row.matures_at,
        regime=cast(Regime, row.regime),
        base_rate=row.base_rate_up,
    )


def record_lessons(
    session: Session, resolutions: Sequence[Resolution], forecasts: Sequence[ForecastRecord]
) -> int:
    """Store the lesson of each settled call and forecast; returns how many were new."""
    tapes: dict[str, Fingerprint] = {}

    def tape(cycle_key: str) -> Fingerprint:
        if cycle_key not in tapes:
            stored = session.scalar(select(Cycle.features).where(Cycle.cycle_key == cycle_key))
            tapes[cycle_key] = fingerprint(Features.model_validate(stored)) if stored else NO_TAPE
        return tapes[cycle_key]

    items: list[tuple[str, Prediction, Outcome, float | None, datetime]] = []
    for resolution in resolutions:
        row = session.get(PredictionRecord, resolution.prediction_id)
        if row is not None:
            prediction = Prediction.model_validate(row.payload)
            items.append(
                (row.cycle_key, prediction, resolution.outcome, resolution.settle_price,
                 resolution.settled_at)
            )  # fmt: skip
    for forecast in forecasts:
        if forecast.settled_at is None:
            continue
        outcome: Outcome = (
            "inconclusive" if forecast.went_up is None else "hit" if forecast.went_up else "miss"
        )
        items.append(
            (forecast.cycle_key, _forecast_prediction(forecast), outcome, forecast.settle_price,
             forecast.settled_at)
        )  # fmt: skip
    added = 0
    for cycle_key, prediction, outcome, price, settled_at in items:
        exists = session.scalar(
            select(LessonRecord.id).where(
                LessonRecord.cycle_key == cycle_key, LessonRecord.source == prediction.source
            )
        )
        if exists is not None:
            continue
        lesson = write_lesson(cycle_key, prediction, outcome, price, settled_at, tape(cycle_key))
        session.add(
            LessonRecord(
                cycle_key=cycle_key,
                source=lesson.source,
                target=lesson.target,
                regime=lesson.regime,
                made_at=lesson.made_at,
                settled_at=lesson.settled_at,
                outcome=lesson.outcome,
                r5_cell=lesson.fingerprint.r5_cell,
                vol_cell=lesson.fingerprint.vol_cell,
                payload=lesson.model_dump(mode="json"),
            )
        )
        added += 1
    return added
