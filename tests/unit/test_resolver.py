"""Settling calls from prices on the real sample data, and the scoreboard they feed."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from services.resolver.resolve import settle_matured
from services.resolver.settle import GRACE, judge
from shared.calendar import end_of_day_known, maturity, replay_as_of, session_close, utc_now
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
    due, now = session_close(TUESDAY), replay_as_of(TUESDAY)
    up_hit = judge("up", 100.0, 100.0, _quote(101.0), matures_at=due, now=now, attempts=0,
                   max_attempts=3)  # fmt: skip
    down_miss = judge("down", 100.0, 100.0, _quote(101.0), matures_at=due, now=now, attempts=0,
                      max_attempts=3)  # fmt: skip
    flat = judge("up", 100.0, 100.0, _quote(100.0), matures_at=due, now=now, attempts=0,
                 max_attempts=3)  # fmt: skip
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
    """A 24 h call on Monday's close matures at Tuesday's close; Friday's at Monday's."""
    assert maturity(replay_as_of(MONDAY), MONDAY, 24) == session_close(TUESDAY)
    friday = maturity(replay_as_of(FRIDAY), FRIDAY, 24)
    assert friday == session_close(MONDAY)
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
    # Settled on the replay's clock: when Tuesday's close became known.
    assert rows["down-call"].settled_at == end_of_day_known(TUESDAY)


def test_a_replay_call_settled_by_the_wall_clock_keeps_the_replay_clock(tmp_path: Path) -> None:
    """A beat pass on today's wall clock settles a 2016 replay call as of its 2016 close, so
    its lesson and the record never say it was settled in the resolver's present."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    _store_call(url, "down-call", "down", MONDAY)
    with session_scope(url) as session:
        report = settle_matured(session, _markets, utc_now(), max_attempts=3)
    assert [r.settled_at for r in report.resolutions] == [end_of_day_known(TUESDAY)]


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


def _settle(kind: str, side: str, line: float, close: float, range_pct: float | None = None) -> str:
    due, now = session_close(TUESDAY), replay_as_of(TUESDAY)
    verdict = judge(side, 100.0, line, _quote(close), matures_at=due, now=now, attempts=0,
                    max_attempts=3, kind=kind, range_pct=range_pct)  # fmt: skip
    assert verdict.outcome is not None
    return verdict.outcome


def test_threshold_calls_settle_strictly_beyond_their_level() -> None:
    """'Closes below 26' is a hit at 25.9, a miss at 26 and above; 'above 4.5' a hit at 4.51."""
    assert _settle("threshold", "down", 26.0, 25.9) == "hit"
    assert _settle("threshold", "down", 26.0, 26.0) == "miss"
    assert _settle("threshold", "down", 26.0, 30.0) == "miss"
    assert _settle("threshold", "up", 104.5, 104.51) == "hit"
    assert _settle("threshold", "up", 104.5, 103.0) == "miss"


def test_range_calls_settle_inside_or_outside_the_band() -> None:
    """'Within ±1%' holds from 99 to 101 inclusive; 'outside ±1%' is its exact complement."""
    for close, inside in ((100.5, True), (101.0, True), (99.0, True), (101.2, False),
                          (98.7, False)):  # fmt: skip
        assert _settle("range", "inside", 100.0, close, 1.0) == ("hit" if inside else "miss")
        assert _settle("range", "outside", 100.0, close, 1.0) == ("miss" if inside else "hit")


def test_a_close_later_than_the_grace_period_is_inconclusive() -> None:
    """A gap in the prices (the first close after maturity is weeks late) settles nothing."""
    due = session_close(TUESDAY)
    late_day = date(2016, 4, 5)
    verdict = judge("up", 100.0, 100.0, _quote(120.0, late_day), matures_at=due,
                    now=replay_as_of(late_day), attempts=0, max_attempts=3)  # fmt: skip
    assert verdict.outcome == "inconclusive"
    assert "late" in verdict.reason
    on_time = judge("up", 100.0, 100.0, _quote(120.0, date(2016, 3, 9)), matures_at=due,
                    now=replay_as_of(late_day), attempts=0, max_attempts=3)  # fmt: skip
    assert on_time.outcome == "hit"


def test_horizons_count_sessions_from_the_reference_close() -> None:
    """48 h on Friday's close is Tuesday's close and 5 sessions (120 h) the next Friday's."""
    assert maturity(replay_as_of(FRIDAY), FRIDAY, 48) == session_close(TUESDAY)
    assert maturity(replay_as_of(FRIDAY), FRIDAY, 120) == session_close(date(2016, 3, 11))
    assert maturity(replay_as_of(MONDAY), MONDAY, 48) == session_close(date(2016, 3, 9))


def test_the_pass_settles_the_same_with_the_batch_judge_and_one_by_one(tmp_path: Path) -> None:
    """The same stored calls of every kind (direction, threshold, range inside and outside, some
    never priced), settled by a pass through the batch judge and by a pass judging one by one,
    end with the same status, price, move, reason, settle time and attempts, at two moments."""
    import shutil
    from unittest.mock import patch

    from services.resolver import resolve

    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate(url)
    market = replay_market(None)
    days = market.sessions(date(2016, 2, 1), date(2016, 4, 29))
    kinds = [("direction", "up", None, 1.0), ("threshold", "down", None, 0.99),
             ("range", "inside", 1.0, 1.0), ("range", "outside", 0.5, 1.0)]  # fmt: skip
    with session_scope(url) as session:
        for n, day in enumerate(days):
            as_of = replay_as_of(day)
            key = f"call-{n}"
            session.add(Cycle(cycle_key=key, as_of=as_of, mode="replay", status="published"))
            session.flush()
            reference = market.settlement_quote("^GSPC", session_close(day), as_of)
            assert reference is not None
            kind, side, pct, scale = kinds[n % len(kinds)]
            session.add(
                PredictionRecord(
                    cycle_key=key, source="synthesis", target="^GSPC", direction=side,
                    horizon_hours=24, reference_price=reference.price,
                    threshold=reference.price * scale if kind == "threshold" else None,
                    kind=kind, range_pct=pct, confidence=0.6, made_at=as_of,
                    matures_at=maturity(as_of, day, 24), regime="chop", topic="index",
                    asset_class="equity_index", payload={},
                )
            )  # fmt: skip
    shutil.copy(tmp_path / "a.db", tmp_path / "b.db")
    ended: dict[str, list[tuple[object, ...]]] = {}
    for name, threshold in (("a", 1), ("b", 10**9)):
        where = f"sqlite:///{tmp_path / f'{name}.db'}"
        with patch.object(resolve, "BATCH_FROM", threshold):
            for moment in (replay_as_of(days[30]), replay_as_of(days[-1])):
                with session_scope(where) as session:
                    settle_matured(session, _markets, moment, max_attempts=3)
        with session_scope(where) as session:
            ended[name] = [
                (r.cycle_key, r.status, r.settle_price, r.realized_move_pct, r.settle_reason,
                 r.settled_at, r.attempts)
                for r in session.scalars(select(PredictionRecord).order_by(PredictionRecord.id))
            ]  # fmt: skip
    assert ended["a"] == ended["b"]
    statuses = {row[1] for row in ended["a"]}
    assert {"hit", "miss", "open"} <= statuses
