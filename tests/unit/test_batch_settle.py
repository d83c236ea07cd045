"""The resolver's batch judge agrees with the one-call judge over the real price history."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import polars as pl

from services.resolver.batch import OPEN_SCHEMA, micros, settle_frame, settlement_frame
from services.resolver.settle import GRACE, judge
from shared.market import ReplayData, ReplayMarket


def _calls(market: ReplayMarket, n: int) -> list[dict[str, object]]:
    """Calls on every symbol, some maturing on a session's close, some between sessions, some
    after the data ends (no price ever), with spent attempts of 0 to 2."""
    rng = random.Random(7)
    symbols = sorted(market.data.prices["symbol"].unique().to_list())
    days = market.sessions(date(2000, 1, 1), date(2100, 1, 1))
    last = days[-1]
    rows: list[dict[str, object]] = []
    for i in range(n):
        day = rng.choice(days[-400:])
        matures = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
            hours=rng.choice([13, 20, 21, 23, 45])
        )
        if i % 17 == 0:
            matures = datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=3)
        reference = rng.uniform(1.0, 5000.0)
        target = rng.choice(symbols)
        flat = market.settlement_quote(target, matures, matures + timedelta(days=30))
        if i % 5 == 0 and flat is not None:
            reference = flat.price  # a close exactly on the line: flat is a miss either way
        kind = ("direction", "threshold", "range")[i % 3]
        range_pct = None
        if kind == "range":
            range_pct = rng.choice([0.5, 1.0, 2.0])
            if flat is not None and i % 2 == 0:
                # A close exactly on the band's edge: the band is inclusive.
                range_pct = abs(flat.price / reference - 1.0) * 100.0
        rows.append(
            {
                "id": i,
                "target": target,
                "direction": rng.choice(
                    ["inside", "outside"] if kind == "range" else ["up", "down"]
                ),
                "reference_price": reference,
                "line": reference * (1.0 if i % 5 == 0 else rng.choice([1.0, 1.01, 0.99])),
                "matures_at": matures,
                "attempts": rng.choice([0, 1, 2]),
                "kind": kind,
                "range_pct": range_pct,
            }
        )
    return rows


def test_batch_matches_the_judge_call_by_call(sample: ReplayData, market: ReplayMarket) -> None:
    """Every outcome, spent attempt, price and move of the batch equals judge() on the quote
    the replay market gives, at several moments (before and long after the grace period)."""
    calls = _calls(market, 600)
    bars = settlement_frame(sample.prices)
    frame = pl.DataFrame(
        [{**{k: v for k, v in c.items() if k != "matures_at"},
          "matures_us": micros(c["matures_at"])} for c in calls],  # type: ignore[arg-type]
        schema=OPEN_SCHEMA,
    )  # fmt: skip
    last = max(market.sessions(date(2000, 1, 1), date(2100, 1, 1)))
    moments = [
        datetime.combine(last, datetime.min.time(), UTC) - timedelta(days=30),
        datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=2),
        datetime.combine(last, datetime.min.time(), UTC) + GRACE + timedelta(days=5),
    ]
    checked = {"hit": 0, "miss": 0, "inconclusive": 0, None: 0}
    for now in moments:
        got = {
            row["id"]: row
            for row in settle_frame(frame, bars, now, max_attempts=3).rows(named=True)
        }
        for call in calls:
            matures = call["matures_at"]
            assert isinstance(matures, datetime)
            if matures > now:
                assert call["id"] not in got
                continue
            quote = market.settlement_quote(str(call["target"]), matures, now)
            want = judge(
                str(call["direction"]), float(call["reference_price"]),  # type: ignore[arg-type]
                float(call["line"]), quote, matures_at=matures, now=now,  # type: ignore[arg-type]
                attempts=int(call["attempts"]), max_attempts=3,  # type: ignore[call-overload]
                kind=str(call["kind"]), range_pct=call["range_pct"],  # type: ignore[arg-type]
            )  # fmt: skip
            row = got[call["id"]]
            assert row["outcome"] == want.outcome, (call, now, want)
            assert row["spent_attempt"] == want.spent_attempt, (call, now, want)
            assert row["settle_price"] == want.settle_price
            assert row["realized_move_pct"] == want.realized_move_pct
            if quote is not None:
                assert row["session"] == quote.session
            checked[want.outcome] += 1
    # The comparison covered every kind of verdict, not only the common one.
    assert all(count > 0 for count in checked.values()), checked


def test_a_close_after_a_gap_settles_nothing_in_the_batch_as_in_the_judge(
    sample: ReplayData,
) -> None:
    """Two weeks of one symbol's prices missing: a call maturing inside the hole is judged
    inconclusive by both (its first close is later than the grace period), never hit or miss."""
    import dataclasses

    symbol = "^GSPC"
    hole = (date(2018, 3, 1), date(2018, 3, 16))
    prices = sample.prices.filter(
        ~((pl.col("symbol") == symbol) & pl.col("date").is_between(*hole))
    )
    holed = dataclasses.replace(sample, prices=prices)
    market = ReplayMarket(holed)
    bars = settlement_frame(holed.prices)
    matures = datetime(2018, 3, 2, 21, tzinfo=UTC)
    now = datetime(2018, 6, 1, tzinfo=UTC)
    quote = market.settlement_quote(symbol, matures, now)
    assert quote is not None
    assert quote.session > hole[1]
    frame = pl.DataFrame(
        [{"id": i, "target": symbol, "direction": side, "reference_price": 2700.0,
          "line": 2700.0, "matures_us": micros(matures), "attempts": 0, "kind": kind,
          "range_pct": 1.0 if kind == "range" else None}
         for i, (kind, side) in enumerate([("direction", "up"), ("threshold", "down"),
                                           ("range", "inside"), ("range", "outside")])],
        schema=OPEN_SCHEMA,
    )  # fmt: skip
    got = settle_frame(frame, bars, now, max_attempts=3).sort("id")
    for row, (kind, side) in zip(
        got.rows(named=True),
        [("direction", "up"), ("threshold", "down"), ("range", "inside"), ("range", "outside")],
        strict=True,
    ):
        pct = 1.0 if kind == "range" else None
        want = judge(side, 2700.0, 2700.0, quote, matures_at=matures, now=now, attempts=0,
                     max_attempts=3, kind=kind, range_pct=pct)  # fmt: skip
        assert want.outcome == "inconclusive"
        assert row["outcome"] == want.outcome
        assert row["settle_price"] == want.settle_price
