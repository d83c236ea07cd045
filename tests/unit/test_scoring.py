"""Scoring arithmetic on hand-computed cases: Wilson, Brier, log score, ECE, base rate, skill."""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl
import pytest

from shared.calendar import END_OF_DAY_KNOWN
from shared.features import compute_features, features_from_row, new_york_instant
from shared.scoring import (
    Abstained,
    CallOutcome,
    brier,
    brier_skill,
    calibration,
    ece,
    log_score,
    score_line,
    score_lines,
    wilson,
)


def test_wilson_interval_matches_the_textbook_values() -> None:
    """8 of 10 gives (0.4902, 0.9433); 0 of 10 gives (0, 0.2775); nothing settled gives None."""
    low, high = wilson(8, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    zero = wilson(0, 10)
    assert zero is not None
    assert zero[0] == 0.0
    assert zero[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0) is None


def test_brier_and_log_score_by_hand() -> None:
    """(0.6, hit) and (0.7, miss): Brier (0.16 + 0.49) / 2; log score (ln 0.6 + ln 0.3) / 2."""
    pairs = [(0.6, True), (0.7, False)]
    assert brier(pairs) == pytest.approx(0.325)
    assert log_score(pairs) == pytest.approx((math.log(0.6) + math.log(0.3)) / 2)
    assert brier([]) is None
    assert log_score([]) is None


def test_calibration_buckets_and_ece_by_hand() -> None:
    """Three calls at 0.55 (2 hits) and two at 0.75 (1 hit): ECE (3 x 0.1167 + 2 x 0.25) / 5."""
    pairs = [(0.55, True), (0.55, False), (0.55, True), (0.75, True), (0.75, False)]
    buckets = calibration(pairs)
    assert [(b.low, b.count) for b in buckets] == [(0.5, 3), (0.7, 2)]
    assert buckets[0].mean_confidence == pytest.approx(0.55)
    assert buckets[0].hit_rate == pytest.approx(2 / 3)
    assert ece(buckets) == pytest.approx(0.17)
    assert ece(()) is None


def test_brier_skill_against_the_base_rate_by_hand() -> None:
    """Two 0.6 calls, one hit, base rate 0.5: Brier 0.26 vs 0.25, skill 1 - 0.26 / 0.25 = -0.04."""
    calls = [
        CallOutcome("macro", "chop", "hit", 0.6, base_rate=0.5),
        CallOutcome("macro", "chop", "miss", 0.6, base_rate=0.5),
    ]
    line = score_line("macro", "all", calls, 0)
    assert line.brier == pytest.approx(0.26)
    assert line.base_rate_brier == pytest.approx(0.25)
    assert line.brier_skill == pytest.approx(-0.04)
    assert brier_skill(0.2, 0.25) == pytest.approx(0.2)
    assert brier_skill(0.2, None) is None


def test_abstentions_and_inconclusive_calls_never_enter_the_hit_rate() -> None:
    """2 hits, 1 miss, 1 inconclusive, 1 open and 5 abstentions: hit rate 2/3, all counted."""
    calls = [
        CallOutcome("synthesis", "chop", "hit", 0.6),
        CallOutcome("synthesis", "chop", "hit", 0.6),
        CallOutcome("synthesis", "chop", "miss", 0.6),
        CallOutcome("synthesis", "chop", "inconclusive", 0.6),
        CallOutcome("synthesis", "chop", "open", 0.6),
    ]
    skipped = [Abstained("synthesis", "chop")] * 5
    overall = next(x for x in score_lines(calls, skipped) if x.regime == "all" and x.is_overall())
    assert (overall.calls, overall.hits, overall.misses) == (5, 2, 1)
    assert (overall.inconclusive, overall.open, overall.abstentions) == (1, 1, 5)
    assert overall.hit_rate == pytest.approx(2 / 3)
    assert overall.brier == pytest.approx((0.16 + 0.16 + 0.36) / 3)


def test_lines_cut_by_regime_asset_class_horizon_and_topic() -> None:
    """Each call counts in its regime, asset class, horizon, topic and asset x horizon lines."""
    calls = [
        CallOutcome("flow", "chop", "hit", 0.6, horizon_hours=24, topic="breadth"),
        CallOutcome("flow", "risk_off", "miss", 0.6, horizon_hours=48, topic="breadth"),
    ]
    keys = {(x.regime, x.asset_class, x.horizon, x.topic): x.calls for x in score_lines(calls, [])}
    assert keys[("all", "all", "all", "all")] == 2
    assert keys[("chop", "all", "all", "all")] == 1
    assert keys[("all", "equity_index", "all", "all")] == 2
    assert keys[("all", "all", "48h", "all")] == 1
    assert keys[("all", "all", "all", "breadth")] == 2
    assert keys[("all", "equity_index", "24h", "all")] == 1


def _tiny_prices(closes: list[float]) -> pl.DataFrame:
    start = date(2016, 1, 4)
    days = [start + timedelta(days=i) for i in range(len(closes))]
    frame = pl.DataFrame(
        {
            "date": days,
            "symbol": ["^GSPC"] * len(closes),
            "open": [None] * len(closes),
            "high": [None] * len(closes),
            "low": [None] * len(closes),
            "close": closes,
            "volume": [None] * len(closes),
        },
        schema_overrides=dict.fromkeys(("open", "high", "low", "volume"), pl.Float64),
    )
    return frame.with_columns(new_york_instant(pl.col("date"), END_OF_DAY_KNOWN).alias("known_at"))


def _empty_macro() -> pl.DataFrame:
    schema = {"date": pl.Date, "series": pl.String, "value": pl.Float64, "released": pl.Date}
    frame = pl.DataFrame(schema=schema)
    return frame.with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("known_at"))


def test_base_rate_counts_only_outcomes_known_at_each_session() -> None:
    """Alternating up/down closes: after 21 sessions, 20 one-day outcomes known, 10 up, 10 down;
    a later crash does not change what the earlier row knew."""
    closes = [100.0 + (i % 2) for i in range(21)]  # 100, 101, 100, ... : up, down, up, ...
    crash = [*closes, 80.0, 70.0]  # a 20% fall, then 12%: large but within sanity bounds
    for prices in (_tiny_prices(closes), _tiny_prices(crash)):
        frame = compute_features(prices, _empty_macro())
        row = features_from_row(frame.row(20, named=True), frame["known_at"][20])
        rate = row.base_rates["^GSPC|1"]
        assert (rate.up, rate.down, rate.n) == (0.5, 0.5, 20)
        assert row.base_rate("^GSPC", 24, "down") == 0.5
        early = features_from_row(frame.row(19, named=True), frame["known_at"][19])
        assert early.base_rate("^GSPC", 24, "up") is None  # 19 outcomes: too few to quote
    frame = compute_features(_tiny_prices(crash), _empty_macro())
    last = features_from_row(frame.row(22, named=True), frame["known_at"][22])
    assert last.base_rates["^GSPC|1"].down == pytest.approx(12 / 22)
    assert last.base_rates["^GSPC|2"].n == 21


@pytest.mark.parametrize("detail", [False, True])
def test_a_trusted_line_is_the_validated_line_field_for_field(detail: bool) -> None:
    """A line built without validation (the backtest's book) has the fields, order, types and
    values validation gives, for a tally with settled, open and inconclusive calls and for an
    empty one, and it stays frozen."""
    from shared.scoring import Tally

    busy = Tally(abstentions=2)
    for i, status in enumerate(["hit", "miss", "hit", "open", "inconclusive", "hit"]):
        busy.add(CallOutcome("macro", "risk_on", status, 0.55 + i / 50, base_rate=0.52))
    busy.add(CallOutcome("macro", "risk_on", "miss", 0.7, withheld=True))
    for tally in (busy, Tally()):
        fast = tally.line("macro", "risk_on", horizon="24h", detail=detail, trusted=True)
        slow = tally.line("macro", "risk_on", horizon="24h", detail=detail)
        assert fast == slow
        assert list(fast.__dict__) == list(slow.__dict__) == list(type(slow).model_fields)
        assert [type(v) for v in fast.__dict__.values()] == [
            type(v) for v in slow.__dict__.values()
        ]
        assert fast.model_dump() == slow.model_dump()
        with pytest.raises(ValueError, match="frozen"):
            fast.hits = 0  # type: ignore[misc]
