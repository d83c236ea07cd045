"""Settling every matured open call; settling twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.resolver.settle import judge
from shared.contracts import Resolution
from shared.db.models import Cycle, PredictionRecord
from shared.errors import BadInputError
from shared.ports import SettlementPrices

MarketFor = Callable[[str, str | None], SettlementPrices]


@dataclass
class SettleReport:
    resolutions: list[Resolution] = field(default_factory=list)
    waiting: int = 0
    errors: list[str] = field(default_factory=list)


def settle_matured(
    session: Session, market_for: MarketFor, now: datetime, *, max_attempts: int
) -> SettleReport:
    """Judge each open call with matures_at <= now against the market its cycle read."""
    report = SettleReport()
    rows = session.execute(
        select(PredictionRecord, Cycle.mode, Cycle.data_dir)
        .join(Cycle, Cycle.cycle_key == PredictionRecord.cycle_key)
        .where(PredictionRecord.status == "open", PredictionRecord.matures_at <= now)
        .order_by(PredictionRecord.matures_at, PredictionRecord.id)
    ).all()
    for row, mode, data_dir in rows:
        try:
            market = market_for(mode, data_dir)
        except BadInputError as error:
            report.errors.append(f"{row.cycle_key}: {error}")
            continue
        quote = market.settlement_quote(row.target, row.matures_at, now)
        line = row.threshold if row.threshold is not None else row.reference_price
        verdict = judge(
            row.direction,
            row.reference_price,
            line,
            quote,
            matures_at=row.matures_at,
            now=now,
            attempts=row.attempts,
            max_attempts=max_attempts,
            kind=row.kind,
            range_pct=row.range_pct,
        )
        if verdict.outcome is None:
            if verdict.spent_attempt:
                row.attempts += 1
            report.waiting += 1
            continue
        row.status = verdict.outcome
        # A replay's call is settled on the replay's clock, whichever clock ran this pass.
        settled_at = verdict.settled_at(mode, now, row.matures_at)
        row.settled_at = settled_at
        row.settle_price = verdict.settle_price
        row.realized_move_pct = verdict.realized_move_pct
        row.settle_reason = verdict.reason
        report.resolutions.append(
            Resolution(
                prediction_id=row.id,
                cycle_key=row.cycle_key,
                source=row.source,
                outcome=verdict.outcome,
                settled_at=settled_at,
                settle_price=verdict.settle_price,
                realized_move_pct=verdict.realized_move_pct,
                reason=verdict.reason,
            )
        )
    return report
