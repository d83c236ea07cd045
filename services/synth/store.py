"""Storing a cycle's outcome in one transaction keyed by the cycle key: the dispatch, what each
mind said, every call (the synthesis' and the minds'), and every abstention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.synth.calibrate import BIN, History, logit
from services.synth.calls import mind_prediction, pooled_forecast
from shared.contracts import SYNTHESIS, CycleContext, Dispatch, MindOutput, Prediction
from shared.db import record
from shared.db.models import (
    AbstentionRecord,
    Cycle,
    DispatchRecord,
    ForecastRecord,
    MindRecord,
    PredictionRecord,
)
from shared.records import forecast_history


def _prediction_row(
    cycle_key: str, prediction: Prediction, withheld_by: str | None = None
) -> PredictionRecord:
    return PredictionRecord(
        cycle_key=cycle_key,
        source=prediction.source,
        target=prediction.target,
        direction=prediction.direction,
        horizon_hours=prediction.horizon_hours,
        reference_price=prediction.reference_price,
        threshold=prediction.threshold,
        confidence=prediction.confidence,
        made_at=prediction.made_at,
        matures_at=prediction.matures_at,
        regime=prediction.regime,
        topic=prediction.topic,
        asset_class=prediction.asset_class,
        base_rate=prediction.base_rate,
        kind=prediction.kind,
        range_pct=prediction.range_pct,
        naive_probability=prediction.naive_probability,
        call_key=prediction.identity,
        payload=prediction.model_dump(mode="json"),
        status="open",
        attempts=0,
        withheld_by=withheld_by,
    )


def history_at(session: Session, as_of: datetime) -> History:
    """The recalibration's history at as_of: its stored bins (constant time); for a cycle older
    than the newest settlement, the bins less the forecasts settled after as_of, or the forecasts
    settled by as_of when those are many."""
    if record.usable(session, as_of):
        held = record.bins(session)
    else:
        later = record.later_than(session, as_of)
        if later is None:  # a far backfill: the forecasts themselves
            return History.of(forecast_history(session, as_of))
        held = record.bins_before(session, later)
    history = History()
    for index, n, ups, base_logits in held:
        history.bins[index] = [logit(index * BIN), n, ups, base_logits]
        history.n += n
        history.ups += ups
    return history


def _on_record(session: Session, predictions: Sequence[Prediction]) -> set[str]:
    """Which of these calls (source, target, kind, horizon, made_at) are already on the record:
    another trigger of the same market moment made them, and they must not be scored twice.
    One query for the cycle's calls, before anything of it is added (no flush in between)."""
    keys = [p.identity for p in predictions]
    if not keys:
        return set()
    found = session.scalars(
        select(PredictionRecord.call_key).where(PredictionRecord.call_key.in_(keys))
    )
    return {key for key in found if key is not None}


def is_published(session: Session, cycle_key: str) -> bool:
    found = session.scalar(select(DispatchRecord.id).where(DispatchRecord.cycle_key == cycle_key))
    return found is not None


def store_cycle(
    session: Session,
    dispatch: Dispatch,
    outputs: Sequence[MindOutput],
    context: CycleContext,
    *,
    horizon_hours: int = 24,
) -> bool:
    """Write everything for the cycle; False (and nothing written) if it was already published."""
    key = dispatch.cycle_key
    if is_published(session, key):
        return False
    regime = dispatch.regime
    forecast = pooled_forecast(dispatch, context, horizon_hours)
    if forecast is not None and session.scalar(
        select(ForecastRecord.id).where(
            ForecastRecord.target == forecast.target,
            ForecastRecord.horizon_hours == forecast.horizon_hours,
            ForecastRecord.made_at == forecast.made_at,
        )
    ):
        # The same market moment's pooled forecast is already on the record (another trigger
        # of the same day): the recalibration must not learn from it twice.
        forecast = None
    # Every read before the first add: nothing pending, so no query flushes half a cycle.
    stopped = {w.prediction.source: w for w in dispatch.withheld}
    minds = [(o, mind_prediction(o, context)) for o in outputs]
    made = [w.prediction for w in stopped.values()]
    made += [dispatch.prediction] if dispatch.prediction is not None else []
    made += [p for o, p in minds if p is not None and o.mind not in stopped]
    on_record = _on_record(session, made)
    if forecast is not None:
        session.add(
            ForecastRecord(
                cycle_key=key,
                target=forecast.target,
                horizon_hours=forecast.horizon_hours,
                reference_price=forecast.reference_price,
                made_at=forecast.made_at,
                matures_at=forecast.matures_at,
                regime=forecast.regime,
                raw_probability_up=forecast.confidence,
                probability_up=dispatch.probability_up,
                base_rate_up=dispatch.base_rate_up,
                status="open",
                attempts=0,
            )
        )
    session.add(
        DispatchRecord(
            cycle_key=key,
            cycle_number=dispatch.cycle_number,
            as_of=dispatch.as_of,
            title=dispatch.title,
            body_md=dispatch.body_md,
            debate=dispatch.debate,
            conviction=dispatch.conviction,
            regime=regime,
            abstained=dispatch.prediction is None,
            abstention=dispatch.abstention,
            payload=dispatch.model_dump(mode="json"),
        )
    )
    # A call a learned rule stopped is an abstention on the scoreboard and a shadow row that
    # keeps the rule's evidence growing (so the rule can be retired when it stops holding).
    for item in stopped.values():
        if item.prediction.identity not in on_record:
            session.add(_prediction_row(key, item.prediction, withheld_by=item.rule))
    if dispatch.prediction is not None:
        if dispatch.prediction.identity not in on_record:
            session.add(_prediction_row(key, dispatch.prediction))
    else:
        session.add(
            AbstentionRecord(
                cycle_key=key,
                source=SYNTHESIS,
                regime=regime,
                reason=dispatch.abstention or "abstained",
                made_at=dispatch.as_of,
            )
        )
    for output, prediction in minds:
        session.add(
            MindRecord(
                cycle_key=key,
                mind=output.mind,
                status=output.status,
                stance=output.stance,
                confidence=output.confidence,
                reason=output.reason,
                regime=regime,
                payload=output.model_dump(mode="json"),
            )
        )
        if prediction is not None and output.mind not in stopped:
            if prediction.identity not in on_record:
                session.add(_prediction_row(key, prediction))
        else:
            reason = output.reason or f"{output.stance}: no call"
            if output.mind in stopped:
                reason = f"call stopped by learned rule {stopped[output.mind].rule}"
            session.add(
                AbstentionRecord(
                    cycle_key=key,
                    source=output.mind,
                    regime=regime,
                    reason=reason,
                    made_at=dispatch.as_of,
                )
            )
    try:
        session.flush()
    except IntegrityError:
        # A concurrent delivery of the same body won the race: its rows stand, ours are dropped.
        session.rollback()
        return False
    session.execute(update(Cycle).where(Cycle.cycle_key == key).values(status="published"))
    return True
