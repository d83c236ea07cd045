"""Settling calls from prices on the real sample data, and the scoreboard they feed."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.resolver.resolve import settle_matured
from services.resolver.settle import GRACE, judge
from shared.calendar import maturity, replay_as_of, session_close
from shared.contracts import Quote
from shared.db.models import Cycle, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.market.opening import replay_market
from shared.ports import SettlementPrices
from shared.records import track_record

MONDAY = date(2016, 3, 7)
TUESDAY = date(2016, 3, 8)
FRIDAY = date(2016, 3, 4)


def _quote(price: float, day: date = TUESDAY) -> Quote:
    return Quote(symbol="^GSPC", price=price, session=day, observed_at=session_close(day))


def test_judge_hit_miss_and_flat() -> None:
    """A close beyond the line in the called direction is a hit; flat or the other way a miss."""
    common = {"matures_at": session_close(TUESDAY), "now": replay_as_of(TUESDAY)}
    up_hit = judge("up", 100.0, 100.0, _quote(101.0), attempts=0, max_attempts=3, **common)
    down_miss = judge("down", 100.0, 100.0, _quote(101.0), attempts=0, max_attempts=3, **common)
    flat = judge("up", 100.0, 100.0, _quote(100.0), attempts=0, max_attempts=3, **common)
    assert (up_hit.outcome, down_miss.outcome, flat.outcome) == ("hit", "miss", "miss")
    assert up_hit.realized_move_pct == pytest.approx(1.0)
    assert up_hit.settle_price == 101.0


def test_judge_waits_through_grace_then_counts_attempts() -> None:
    """Without a price a call waits through the grace period, then turns inconclusive."""
    due = session_close(TUESDAY)
    early = judge("up", 100.0, 100.0, None, matures_at=due, now=due, attempts=0, max_attempts=3)
    assert early.outcome is None
    assert "waiting" in early.reason
    assert not early.spent_attempt
    late = due + GRACE + timedelta(hours=1)
    retry = judge("up", 100.0, 100.0, None, matures_at=due, now=late, attempts=0, max_attempts=3)
    assert retry.outcome is None
    assert "attempt 1" in retry.reason
    assert retry.spent_attempt
    final = judge("up", 100.0, 100.0, None, matures_at=due, now=late, attempts=2, max_attempts=3)
    assert final.outcome == "inconclusive"


def test_maturity_runs_from_the_reference_close() -> None:
    """A 24 h call on Monday's close matures at Tuesday's close; Friday's over the weekend."""
    assert maturity(replay_as_of(MONDAY), MONDAY, 24) == session_close(TUESDAY)
    friday = maturity(replay_as_of(FRIDAY), FRIDAY, 24)
    assert friday == session_close(FRIDAY) + timedelta(hours=24)
    market = replay_market(None)
    quote = market.settlement_quote("^GSPC", friday, replay_as_of(MONDAY))
    assert quote is not None
    assert quote.session == MONDAY


def _store_call(url: str, key: str, direction: str, made: date, horizon: int = 24) -> None:
    as_of = replay_as_of(made)
    market = replay_market(None)
    reference = market.settlement_quote("^GSPC", session_close(made), as_of)
    assert reference is not None
    assert reference.session == made
    with session_scope(url) as session:
        session.add(Cycle(cycle_key=key, as_of=as_of, mode="replay", status="published"))
        session.flush()
        session.add(
            PredictionRecord(
                cycle_key=key,
                source="synthesis",
                target="^GSPC",
                direction=direction,
                horizon_hours=horizon,
                reference_price=reference.price,
                confidence=0.6,
                made_at=as_of,
                matures_at=maturity(as_of, made, horizon),
                regime="chop",
                topic="index",
                asset_class="equity_index",
                payload={},
            )
        )


def _markets(mode: str, data_dir: str | None) -> SettlementPrices:
    return replay_market(data_dir)


def test_settle_matured_on_real_prices_is_idempotent(tmp_path: Path) -> None:
    """Calls settle against the real closes once matured; a second pass changes nothing."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    # ^GSPC closed 2001.76 on 2016-03-07 and 1979.26 on 2016-03-08 (prices.csv): down.
    _store_call(url, "up-call", "up", MONDAY)
    _store_call(url, "down-call", "down", MONDAY)
    _store_call(url, "not-yet", "up", TUESDAY)
    with session_scope(url) as session:
        first = settle_matured(session, _markets, replay_as_of(TUESDAY), max_attempts=3)
    assert {(r.cycle_key, r.outcome) for r in first.resolutions} == {
        ("up-call", "miss"),
        ("down-call", "hit"),
    }
    with session_scope(url) as session:
        again = settle_matured(session, _markets, replay_as_of(TUESDAY), max_attempts=3)
        rows = {r.cycle_key: r for r in session.scalars(select(PredictionRecord))}
    assert again.resolutions == []
    assert rows["not-yet"].status == "open"
    assert rows["down-call"].settle_price == pytest.approx(1979.26)
    assert rows["down-call"].realized_move_pct == pytest.approx((1979.26 / 2001.76 - 1) * 100)
    assert rows["down-call"].settled_at == replay_as_of(TUESDAY)


def test_track_record_is_point_in_time(tmp_path: Path) -> None:
    """A call settled after as_of counts as open in the record as of then, never as a hit."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    _store_call(url, "down-call", "down", MONDAY)
    with session_scope(url) as session:
        settle_matured(session, _markets, replay_as_of(TUESDAY), max_attempts=3)
    with session_scope(url) as session:
        before = track_record(session, replay_as_of(MONDAY) + timedelta(hours=1))
        after = track_record(session, replay_as_of(TUESDAY))
    early, late = before.line("synthesis"), after.line("synthesis")
    assert early is not None
    assert late is not None
    assert (early.open, early.hits, early.hit_rate) == (1, 0, None)
    assert (late.open, late.hits, late.hit_rate) == (0, 1, 1.0)
    assert late.brier == pytest.approx((0.6 - 1.0) ** 2)
