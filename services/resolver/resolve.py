"""Settling every matured open call; settling twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.resolver.batch import OPEN_SCHEMA, micros, settle_frame, settlement_frame
from services.resolver.settle import judge
from shared.contracts import Resolution
from shared.db.models import Cycle, PredictionRecord
from shared.errors import BadInputError
from shared.market.replay import ReplayMarket
from shared.ports import SettlementPrices

MarketFor = Callable[[str, str | None], SettlementPrices]
# A pass with fewer matured calls than this judges them one by one: building the frames and the
# plan costs a few milliseconds, more than judging a handful (a pass every few minutes finds a
# handful). From here on the batch judge is the cheaper, and the two give the same verdicts.
BATCH_FROM = 64


@dataclass
class SettleReport:
    resolutions: list[Resolution] = field(default_factory=list)
    waiting: int = 0
    errors: list[str] = field(default_factory=list)


def settle_matured(
    session: Session, market_for: MarketFor, now: datetime, *, max_attempts: int
) -> SettleReport:
    """Judge each open call with matures_at <= now against the market its cycle read.

    A replay's calls, when there are BATCH_FROM or more, are judged together as one polars plan
    (services.resolver.batch), and only those that settle are worded by judge(); fewer, or a live
    market's, are judged one by one."""
    report = SettleReport()
    rows = session.execute(
        select(PredictionRecord, Cycle.mode, Cycle.data_dir)
        .join(Cycle, Cycle.cycle_key == PredictionRecord.cycle_key)
        .where(PredictionRecord.status == "open", PredictionRecord.matures_at <= now)
        .order_by(PredictionRecord.matures_at, PredictionRecord.id)
    ).all()
    groups: dict[tuple[str, str | None], list[PredictionRecord]] = {}
    for row, mode, data_dir in rows:
        groups.setdefault((mode, data_dir), []).append(row)
    for (mode, data_dir), calls in groups.items():
        try:
            market = market_for(mode, data_dir)
        except BadInputError as error:
            report.errors += [f"{row.cycle_key}: {error}" for row in calls]
            continue
        due = (
            _batch(calls, market, now, max_attempts)
            if isinstance(market, ReplayMarket) and len(calls) >= BATCH_FROM
            else dict.fromkeys((row.id for row in calls), (True, False))
        )
        for row in calls:
            settles, spent = due[row.id]
            if not settles:  # waiting: the batch already knows, judge() need not say so
                row.attempts += int(spent)
                report.waiting += 1
                continue
            _settle(row, mode, market, now, max_attempts, report)
    return report


def _settle(
    row: PredictionRecord, mode: str, market: SettlementPrices, now: datetime,
    max_attempts: int, report: SettleReport,
) -> None:  # fmt: skip
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
        return
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


# The settlement bars of each replay market, built once per market object.
_BARS: dict[int, tuple[ReplayMarket, pl.DataFrame]] = {}


def _bars(market: ReplayMarket) -> pl.DataFrame:
    held = _BARS.get(id(market))
    if held is None or held[0] is not market:
        if len(_BARS) >= 8:
            _BARS.clear()
        held = _BARS[id(market)] = (market, settlement_frame(market.data.prices))
    return held[1]


def _batch(
    calls: list[PredictionRecord], market: ReplayMarket, now: datetime, max_attempts: int
) -> dict[int, tuple[bool, bool]]:
    """For each call: whether it settles in this pass, and whether a waiting one spends an
    attempt, from the batch judge over the replay's bars."""
    frame = pl.DataFrame(
        {
            "id": [r.id for r in calls],
            "target": [r.target for r in calls],
            "direction": [r.direction for r in calls],
            "reference_price": [r.reference_price for r in calls],
            "line": [r.threshold if r.threshold is not None else r.reference_price for r in calls],
            "matures_us": [micros(r.matures_at) for r in calls],
            "attempts": [r.attempts for r in calls],
            "kind": [r.kind for r in calls],
            "range_pct": [r.range_pct for r in calls],
        },
        schema=OPEN_SCHEMA,
    )
    judged = settle_frame(frame, _bars(market), now, max_attempts=max_attempts)
    return {
        int(i): (outcome is not None, bool(spent))
        for i, outcome, spent in judged.select("id", "outcome", "spent_attempt").iter_rows()
    }
