"""Settling the synthesis' pooled forecasts: did the target close up over the horizon?

The same judge as the calls (an 'up' call struck at the reference): the recalibration learns
from prices, never from a model's opinion. Settling twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.resolver.resolve import MarketFor
from services.resolver.settle import judge
from shared.db.models import Cycle, ForecastRecord
from shared.errors import BadInputError


def settle_forecasts(
    session: Session, market_for: MarketFor, now: datetime, *, max_attempts: int
) -> list[ForecastRecord]:
    """Judge every open forecast matured by now; returns those settled (inconclusive too)."""
    rows = session.execute(
        select(ForecastRecord, Cycle.mode, Cycle.data_dir)
        .join(Cycle, Cycle.cycle_key == ForecastRecord.cycle_key)
        .where(ForecastRecord.status == "open", ForecastRecord.matures_at <= now)
        .order_by(ForecastRecord.matures_at, ForecastRecord.id)
    ).all()
    settled: list[ForecastRecord] = []
    for row, mode, data_dir in rows:
        try:
            market = market_for(mode, data_dir)
        except BadInputError:
            continue
        verdict = judge(
            "up",
            row.reference_price,
            row.reference_price,
            market.settlement_quote(row.target, row.matures_at, now),
            matures_at=row.matures_at,
            now=now,
            attempts=row.attempts,
            max_attempts=max_attempts,
        )
        if verdict.outcome is None:
            if verdict.spent_attempt:
                row.attempts += 1
            continue
        row.status = "inconclusive" if verdict.outcome == "inconclusive" else "settled"
        row.went_up = None if verdict.outcome == "inconclusive" else verdict.outcome == "hit"
        row.settled_at = verdict.settled_at(mode, now, row.matures_at)
        row.settle_price = verdict.settle_price
        settled.append(row)
    return settled
