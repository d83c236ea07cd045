"""Storing a cycle's outcome in one transaction keyed by the cycle key: the dispatch, what each
mind said, every call (the synthesis' and the minds'), and every abstention."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.calendar import maturity
from shared.contracts import SYNTHESIS, CycleContext, Dispatch, MindOutput, Prediction
from shared.db.models import (
    AbstentionRecord,
    Cycle,
    DispatchRecord,
    ForecastRecord,
    MindRecord,
    PredictionRecord,
)


def mind_prediction(output: MindOutput, context: CycleContext) -> Prediction | None:
    """A mind's own call as a scorable prediction on the same terms as the synthesis' calls."""
    call = output.call
    if output.status != "ok" or call is None:
        return None
    features = context.features
    quote = context.snapshot.quote(call.target)
    reference = quote.price if quote else features.last_close.get(call.target)
    if reference is None or reference <= 0:
        return None
    session = quote.session if quote else features.session
    as_of = context.snapshot.as_of
    word = "above" if call.direction == "up" else "below"
    return Prediction(
        source=output.mind,
        target=call.target,
        direction=call.direction,
        horizon_hours=call.horizon_hours,
        reference_price=reference,
        confidence=call.probability,
        falsifier=f"{call.target} does not close {word} {reference:.2f} at maturity",
        made_at=as_of,
        matures_at=maturity(as_of, session, call.horizon_hours),
        regime=features.regime,
        topic=output.topics[0] if output.topics else "index",
        base_rate=features.base_rate(call.target, call.horizon_hours, call.direction),
    )


POOL = "pool"


def pooled_forecast(
    dispatch: Dispatch, context: CycleContext, horizon_hours: int
) -> Prediction | None:
    """The cycle's pooled p(up) as a forecast to settle, whether the desk called or abstained.

    The recalibration learns from these: every cycle's raw pool against whether the target then
    closed up. Carried as an 'up' Prediction whose confidence is the raw pool, so that the
    resolver's own judge settles it (a hit means the target closed above the reference).
    """
    target, raw = dispatch.target, dispatch.raw_probability_up
    if target is None or raw is None:
        return None
    features = context.features
    quote = context.snapshot.quote(target)
    reference = quote.price if quote else features.last_close.get(target)
    if reference is None or reference <= 0:
        return None
    session = quote.session if quote else features.session
    as_of = context.snapshot.as_of
    return Prediction(
        source=POOL,
        target=target,
        direction="up",
        horizon_hours=horizon_hours,
        reference_price=reference,
        confidence=raw,
        falsifier=f"{target} closes above {reference:.2f} or not",
        made_at=as_of,
        matures_at=maturity(as_of, session, horizon_hours),
        regime=features.regime,
        base_rate=dispatch.base_rate_up,
    )


def _prediction_row(cycle_key: str, prediction: Prediction) -> PredictionRecord:
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
        payload=prediction.model_dump(mode="json"),
        status="open",
        attempts=0,
    )


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
    if dispatch.prediction is not None:
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
    for output in outputs:
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
        prediction = mind_prediction(output, context)
        if prediction is not None:
            session.add(_prediction_row(key, prediction))
        else:
            session.add(
                AbstentionRecord(
                    cycle_key=key,
                    source=output.mind,
                    regime=regime,
                    reason=output.reason or f"{output.stance}: no call",
                    made_at=dispatch.as_of,
                )
            )
    cycle = session.scalar(select(Cycle).where(Cycle.cycle_key == key))
    if cycle is not None:
        cycle.status = "published"
    try:
        session.flush()
    except IntegrityError:
        # A concurrent delivery of the same body won the race: its rows stand, ours are dropped.
        session.rollback()
        return False
    return True
