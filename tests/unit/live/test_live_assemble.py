"""assemble_live: the sources' results merged into one point-in-time Snapshot and its Features."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.ingest.live import NO_ANSWER, assemble_live, macro_frame, prices_frame
from shared.calendar import end_of_day_known
from shared.contracts import (
    Bar,
    CycleTrigger,
    DataFlag,
    FeedHealth,
    MacroValue,
    NewsItem,
    Quote,
    SourceResult,
)
from tests.fakes.yahoo import weekdays

AS_OF = datetime(2026, 1, 9, 22, 30, tzinfo=UTC)
TRIGGER = CycleTrigger(cycle_key="live-2026-01-09T2230", as_of=AS_OF, mode="live")
SESSIONS = weekdays(date(2026, 1, 9), 30)
KNOWN_8TH = end_of_day_known(date(2026, 1, 8))


def _bars(symbol: str, start: float, step: float) -> list[Bar]:
    return [
        Bar(session=d, symbol=symbol, close=start + step * i, volume=1e6)
        for i, d in enumerate(SESSIONS)
    ]


def _prices_result() -> SourceResult:
    bars = _bars("SPY", 600, 1) + _bars("QQQ", 500, -1) + _bars("IWM", 200, 0.5)
    quote = Quote(
        symbol="SPY",
        price=629,
        session=SESSIONS[-1],
        observed_at=end_of_day_known(SESSIONS[-1]),
    )
    health = FeedHealth(source="prices", status="ok", items=1)
    return SourceResult(source="prices", health=health, bars=tuple(bars), quotes=(quote,))


def _macro_result() -> SourceResult:
    values = (
        MacroValue(series="DGS10", value=4.2, observed=date(2026, 1, 8), released_at=KNOWN_8TH),
        MacroValue(series="DGS2", value=3.5, observed=date(2026, 1, 8), released_at=KNOWN_8TH),
        MacroValue(
            series="DGS10",
            value=9.9,
            observed=date(2026, 1, 9),
            released_at=AS_OF + timedelta(hours=1),
        ),
    )
    health = FeedHealth(source="macro", status="stale", detail="DGS2 old")
    flag = DataFlag(code="stale_series", subject="DGS2")
    return SourceResult(source="macro", health=health, macro=values, flags=(flag,))


def _news_result() -> SourceResult:
    items = (
        NewsItem(published_at=AS_OF - timedelta(hours=1), source="wire", title="Before"),
        NewsItem(published_at=AS_OF + timedelta(minutes=1), source="wire", title="After"),
    )
    health = FeedHealth(source="news", status="ok", items=2)
    return SourceResult(source="news", health=health, news=items)


def test_merges_results_and_marks_the_silent_source() -> None:
    """Every health is kept, a missing expected source is an error, non-ok healths are flags."""
    results = [_prices_result(), _macro_result(), _news_result()]
    snapshot, features = assemble_live(
        TRIGGER, results, expected=["prices", "macro", "news", "filings"]
    )
    health = {h.source: h for h in snapshot.health}
    assert set(health) == {"prices", "macro", "news", "filings"}
    assert health["filings"].status == "error"
    assert health["filings"].detail == NO_ANSWER
    codes = {(f.code, f.subject) for f in snapshot.flags}
    assert ("feed_error", "filings") in codes
    assert ("stale_feed", "macro") in codes
    assert ("stale_series", "DGS2") in codes
    assert not any(f.subject in {"prices", "news"} for f in snapshot.flags)
    assert snapshot.mode == "live"
    assert [q.symbol for q in snapshot.quotes] == ["SPY"]
    assert features.session == SESSIONS[-1]
    assert features.broad == "SPY"
    assert features.curve_slope == pytest.approx(0.7)


def test_nothing_after_as_of_enters() -> None:
    """News and macro values published after as_of are left out of the snapshot."""
    snapshot, _ = assemble_live(
        TRIGGER, [_macro_result(), _news_result()], expected=["macro", "news"]
    )
    assert [n.title for n in snapshot.news] == ["Before"]
    assert all(m.value != 9.9 for m in snapshot.macro)


def test_no_bars_gives_unknown_features() -> None:
    """Without any bar the features are all unknown, and say prices are missing."""
    _, features = assemble_live(TRIGGER, [_news_result()], expected=["prices", "news"])
    assert "prices" in features.unknown
    assert features.regime == "unknown"


def test_live_bar_is_known_now_and_closed_bars_after_their_close() -> None:
    """Today's bar during the session is known at as_of; earlier bars at their end of day."""
    during = datetime(2026, 1, 9, 17, 0, tzinfo=UTC)  # 12:00 New York
    frame = prices_frame(_bars("SPY", 600, 1)[-2:], during)
    assert frame["known_at"].to_list() == [end_of_day_known(SESSIONS[-2]), during]
    later = prices_frame(_bars("SPY", 600, 1)[-2:], AS_OF)
    assert later["known_at"].to_list()[-1] == end_of_day_known(SESSIONS[-1])


def test_macro_frame_schema() -> None:
    """The macro frame has the columns shared.features expects, one row per date and series."""
    frame = macro_frame(list(_macro_result().macro), AS_OF)
    assert frame.columns == ["date", "series", "value", "released", "known_at"]
    assert frame.height == 2


def test_a_glitched_live_bar_is_flagged_and_left_out_of_the_features() -> None:
    """A fetched SPY close x100 on the 7th is set aside: the cycle flags bad_value and SPY's
    last close and one-session return come from good bars only; live headlines are scored."""
    bars = [
        Bar(session=b.session, symbol=b.symbol, close=b.close * 100, volume=b.volume)
        if b.session == SESSIONS[-3]
        else b
        for b in _bars("SPY", 600, 1)
    ]
    health = FeedHealth(source="prices", status="ok", items=len(bars))
    result = SourceResult(source="prices", health=health, bars=tuple(bars))
    snapshot, features = assemble_live(
        TRIGGER, [result, _news_result()], expected=["prices", "news"]
    )
    flags = [f for f in snapshot.flags if f.code == "bad_value"]
    assert [f.subject for f in flags] == ["SPY"]
    assert features.last_close["SPY"] == 629
    assert features.returns["SPY"].r1 == pytest.approx(100 / 628)
    assert features.news is not None
    assert features.news.count == 1
