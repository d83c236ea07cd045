"""Storing a cycle's outcome in one transaction keyed by the cycle key: the dispatch, what each
mind said, every call (the synthesis' and the minds'), and every abstention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
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
) -> dict[str, Any]:
    return {
        "cycle_key": cycle_key,
        "source": prediction.source,
        "target": prediction.target,
        "direction": prediction.direction,
        "horizon_hours": prediction.horizon_hours,
        "reference_price": prediction.reference_price,
        "threshold": prediction.threshold,
        "confidence": prediction.confidence,
        "made_at": prediction.made_at,
        "matures_at": prediction.matures_at,
        "regime": prediction.regime,
        "topic": prediction.topic,
        "asset_class": prediction.asset_class,
        "base_rate": prediction.base_rate,
        "kind": prediction.kind,
        "range_pct": prediction.range_pct,
        "naive_probability": prediction.naive_probability,
        "call_key": prediction.identity,
        "payload": prediction.model_dump(mode="json"),
        "status": "open",
        "attempts": 0,
        "withheld_by": withheld_by,
    }


def _abstention_row(
    cycle_key: str, source: str, regime: str, reason: str, made_at: datetime
) -> dict[str, Any]:
    return {"cycle_key": cycle_key, "source": source, "regime": regime, "reason": reason,
            "made_at": made_at}  # fmt: skip


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
    found = session.connection().execute(_ON_RECORD, {"keys": keys}).scalars()
    return {key for key in found if key is not None}


# The store's statements, built once (building one costs more than running it), run on the
# session's connection: plain rows, without the ORM's per-statement work.
_ON_RECORD = select(PredictionRecord.call_key).where(
    PredictionRecord.call_key.in_(bindparam("keys", expanding=True))
)
_F = ForecastRecord
_MOMENT_FORECAST = select(_F.id).where(
    _F.target == bindparam("target"),
    _F.horizon_hours == bindparam("horizon"),
    _F.made_at == bindparam("made_at", type_=_F.made_at.type),
)


_PUBLISHED = update(Cycle).where(Cycle.cycle_key == bindparam("key")).values(status="published")


def store_cycle(
    session: Session,
    dispatch: Dispatch,
    outputs: Sequence[MindOutput],
    context: CycleContext,
    *,
    horizon_hours: int = 24,
) -> bool:
    """Write everything for the cycle; False (and nothing written) if it was already published.

    The caller looked for the dispatch in an earlier transaction (read_cycle); the dispatch's
    unique cycle key is what decides here, without a second look."""
    key = dispatch.cycle_key
    regime = dispatch.regime
    forecast = pooled_forecast(dispatch, context, horizon_hours)
    moment = {"target": forecast.target, "horizon": forecast.horizon_hours,
              "made_at": forecast.made_at} if forecast is not None else None  # fmt: skip
    if moment is not None and session.connection().execute(_MOMENT_FORECAST, moment).first():
        # The same market moment's pooled forecast is already on the record (another trigger
        # of the same day): the recalibration must not learn from it twice.
        forecast = None
    stopped = {w.prediction.source: w for w in dispatch.withheld}
    minds = [(o, mind_prediction(o, context)) for o in outputs]
    made = [w.prediction for w in stopped.values()]
    made += [dispatch.prediction] if dispatch.prediction is not None else []
    made += [p for o, p in minds if p is not None and o.mind not in stopped]
    on_record = _on_record(session, made)
    forecasts: list[dict[str, Any]] = []
    if forecast is not None:
        forecasts.append({
            "cycle_key": key,
            "target": forecast.target,
            "horizon_hours": forecast.horizon_hours,
            "reference_price": forecast.reference_price,
            "made_at": forecast.made_at,
            "matures_at": forecast.matures_at,
            "regime": forecast.regime,
            "raw_probability_up": forecast.confidence,
            "probability_up": dispatch.probability_up,
            "base_rate_up": dispatch.base_rate_up,
            "status": "open",
            "attempts": 0,
        })  # fmt: skip
    published = {
        "cycle_key": key,
        "cycle_number": dispatch.cycle_number,
        "as_of": dispatch.as_of,
        "title": dispatch.title,
        "body_md": dispatch.body_md,
        "debate": dispatch.debate,
        "conviction": dispatch.conviction,
        "regime": regime,
        "abstained": dispatch.prediction is None,
        "abstention": dispatch.abstention,
        "payload": dispatch.model_dump(mode="json"),
    }
    calls: list[dict[str, Any]] = []
    abstentions: list[dict[str, Any]] = []
    # A call a learned rule stopped is an abstention on the scoreboard and a shadow row that
    # keeps the rule's evidence growing (so the rule can be retired when it stops holding).
    for item in stopped.values():
        if item.prediction.identity not in on_record:
            calls.append(_prediction_row(key, item.prediction, withheld_by=item.rule))
    if dispatch.prediction is not None:
        if dispatch.prediction.identity not in on_record:
            calls.append(_prediction_row(key, dispatch.prediction))
    else:
        reason = dispatch.abstention or "abstained"
        abstentions.append(_abstention_row(key, SYNTHESIS, regime, reason, dispatch.as_of))
    said: list[dict[str, Any]] = []
    for output, prediction in minds:
        said.append({
            "cycle_key": key,
            "mind": output.mind,
            "status": output.status,
            "stance": output.stance,
            "confidence": output.confidence,
            "reason": output.reason,
            "regime": regime,
            "payload": output.model_dump(mode="json"),
        })  # fmt: skip
        if prediction is not None and output.mind not in stopped:
            if prediction.identity not in on_record:
                calls.append(_prediction_row(key, prediction))
        else:
            reason = output.reason or f"{output.stance}: no call"
            if output.mind in stopped:
                reason = f"call stopped by learned rule {stopped[output.mind].rule}"
            abstentions.append(_abstention_row(key, output.mind, regime, reason, dispatch.as_of))
    try:
        # The dispatch first: its cycle key is unique, so a cycle already published stops here.
        record.add_rows(session, [(DispatchRecord, [published]), (ForecastRecord, forecasts),
                                  (PredictionRecord, calls), (AbstentionRecord, abstentions),
                                  (MindRecord, said)])  # fmt: skip
    except IntegrityError:
        # Published already, or a concurrent delivery of the same body won the race: its rows
        # stand, ours are dropped.
        session.rollback()
        return False
    session.connection().execute(_PUBLISHED, {"key": key})
    return True
