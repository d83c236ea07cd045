"""The recorder writes a live run into the replay format, and the replay loader reads it back."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from shared.calendar import end_of_day_known, release_known
from shared.contracts import Bar, FeedHealth, MacroValue, NewsItem, SourceResult
from shared.market.live.recorder import plain, record
from shared.market.replay import MACRO_HEADER, NEWS_HEADER, PRICES_HEADER, load_replay


def _result(bars: list[Bar], macro: list[MacroValue], news: list[NewsItem]) -> SourceResult:
    health = FeedHealth(source="prices", status="ok")
    return SourceResult(
        source="prices", health=health, bars=tuple(bars), macro=tuple(macro), news=tuple(news)
    )


BARS = [
    Bar(session=date(2026, 1, 9), symbol="^VIX", close=15.5),
    Bar(session=date(2026, 1, 9), symbol="SPY", close=600.25, open=598.0, volume=5e7),
    Bar(session=date(2026, 1, 8), symbol="SPY", close=599.0, open=597.5, high=601, low=596),
]
MACRO = [
    MacroValue(
        series="DGS10",
        value=4.15,
        observed=date(2026, 1, 8),
        released_at=end_of_day_known(date(2026, 1, 8)),
    ),
    MacroValue(
        series="CPIAUCSL",
        value=321.5,
        observed=date(2025, 12, 1),
        released_at=release_known(date(2026, 1, 13)),
    ),
    MacroValue(
        series="FEDFUNDS",
        value=3.64,
        observed=date(2025, 12, 1),
        released_at=end_of_day_known(date(2026, 1, 2)),
    ),
]
NEWS = [
    NewsItem(
        published_at=datetime(2026, 1, 9, 14, 0, tzinfo=UTC),
        source="wire",
        title='Stocks, "bonds" and\nnewlines',
        summary="a, b",
        url="http://wire.example/a",
    )
]


def test_round_trip_with_documented_headers(tmp_path: Path) -> None:
    """Written files have the documented headers and order, and polars reads the values back."""
    counts = record(tmp_path, [_result(BARS, MACRO, NEWS)])
    assert (counts.prices, counts.macro, counts.news) == (3, 3, 1)
    prices = pl.read_csv(tmp_path / "prices.csv", try_parse_dates=True)
    assert tuple(prices.columns) == PRICES_HEADER
    assert prices.select("date", "symbol").rows() == [
        (date(2026, 1, 8), "SPY"),
        (date(2026, 1, 9), "SPY"),
        (date(2026, 1, 9), "^VIX"),
    ]
    assert prices["volume"].to_list() == [None, 50000000, None]
    assert "e+" not in (tmp_path / "prices.csv").read_text()
    macro = pl.read_csv(tmp_path / "macro.csv", try_parse_dates=True)
    assert tuple(macro.columns) == MACRO_HEADER
    rows = {r["series"]: r for r in macro.to_dicts()}
    assert rows["DGS10"]["released"] == date(2026, 1, 8)  # a daily fixing: its own date
    assert rows["CPIAUCSL"]["released"] == date(2026, 1, 13)  # 08:30 release: that day
    # Known only after the close on 2 Jan: a replay reading 08:30 must see it on the 3rd.
    assert rows["FEDFUNDS"]["released"] == date(2026, 1, 3)
    news = pl.read_csv(tmp_path / "news.csv")
    assert tuple(news.columns) == NEWS_HEADER
    assert news["title"].to_list() == ['Stocks, "bonds" and\nnewlines']
    assert news["published_at"].to_list() == ["2026-01-09T14:00:00Z"]


def test_rerecording_deduplicates_and_newer_wins(tmp_path: Path) -> None:
    """Recording twice keeps one row per key, the later fetch's values winning."""
    record(tmp_path, [_result(BARS, MACRO, NEWS)])
    final = Bar(session=date(2026, 1, 9), symbol="SPY", close=601.0, volume=6e7)
    counts = record(tmp_path, [_result([final], MACRO, NEWS)])
    assert (counts.prices, counts.macro, counts.news) == (3, 3, 1)
    prices = pl.read_csv(tmp_path / "prices.csv", try_parse_dates=True)
    spy = prices.filter((pl.col("symbol") == "SPY") & (pl.col("date") == date(2026, 1, 9)))
    assert spy["close"].to_list() == [601.0]


def test_replay_loader_accepts_the_recording(tmp_path: Path) -> None:
    """The replay port loads what the recorder wrote, without a format error."""
    record(tmp_path, [_result(BARS, MACRO, NEWS)])
    data = load_replay(tmp_path)
    assert data.prices.height == 3


def test_plain_numbers() -> None:
    """Numbers are plain decimals: no exponent, no trailing zeros, empty for unknown."""
    assert plain(1e-7) == "0.0000001"
    assert plain(5e7) == "50000000"
    assert plain(0.1 + 0.2) == "0.30000000000000004"
    assert plain(None) == ""
