"""YahooPrices against a loopback Yahoo speaking the v8 chart JSON, with the real yfinance."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from shared.market.live.yahoo import YahooPrices
from tests.fakes.http import FakeServer, Reply
from tests.fakes.yahoo import daily_bars, install_yahoo

# pandas 3 deprecates the `inplace=` calls yfinance 1.7 still makes; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

FRIDAY = date(2026, 1, 9)
AS_OF = datetime(2026, 1, 9, 22, 30, tzinfo=UTC)  # 17:30 New York, after the close


def _prices(fake: FakeServer, symbols: list[str], **kwargs: float) -> YahooPrices:
    options = {"timeout_s": 10.0, "backoff_s": 0.05} | kwargs
    return YahooPrices(symbols, base_url=fake.base_url, **options)  # type: ignore[arg-type]


def test_good_day(fake: FakeServer) -> None:
    """A healthy answer gives bars and quotes for every symbol, through the crumb dance, and ok."""
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY), "AAPL": daily_bars(FRIDAY, start=200)})
    result = _prices(fake, ["SPY", "AAPL"]).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    assert result.flags == ()
    spy = next(q for q in result.quotes if q.symbol == "SPY")
    assert spy.session == FRIDAY
    assert spy.price == pytest.approx(129.5)
    assert spy.prev_close == pytest.approx(129.0)
    assert spy.change_pct == pytest.approx((129.5 / 129.0 - 1) * 100, abs=1e-3)
    assert spy.observed_at <= AS_OF
    assert len([b for b in result.bars if b.symbol == "AAPL"]) == 60
    assert fake.hits("/v1/test/getcrumb"), "yfinance's crumb request reached the fake"


def test_rate_limited_then_served(fake: FakeServer) -> None:
    """Three 429s (more than yfinance's own single retry absorbs) are outlasted by our backoff."""
    limited = Reply(status=429, body="Too Many Requests", content_type="text/plain")
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY)}, broken={"SPY": [limited] * 3})
    result = _prices(fake, ["SPY"]).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    assert [q.symbol for q in result.quotes] == ["SPY"]
    assert len(fake.hits("/v8/finance/chart/SPY")) >= 4


def test_server_errors_leave_symbol_missing(fake: FakeServer) -> None:
    """A symbol that only ever gets 503 is missing with a flag; the rest is partial, not a crash."""
    down = Reply(status=503, body="<html>Will be right back</html>", content_type="text/html")
    bars = {"SPY": daily_bars(FRIDAY), "QQQ": daily_bars(FRIDAY)}
    install_yahoo(fake, bars, broken={"QQQ": [down] * 50})
    result = _prices(fake, ["SPY", "QQQ"], attempts=2).fetch(AS_OF)
    assert result.health.status == "partial"
    assert "QQQ" in result.health.detail
    assert [q.symbol for q in result.quotes] == ["SPY"]
    assert any(f.code == "missing_symbol" and f.subject == "QQQ" for f in result.flags)


def test_empty_body_is_empty_with_flag(fake: FakeServer) -> None:
    """A 200 with an empty body is an empty health and a missing_symbol flag, with no number.

    yfinance reports an empty body exactly like "no price data", so it cannot be told from one.
    """
    empty = Reply(status=200, body=b"")
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY)}, broken={"SPY": [empty] * 50})
    result = _prices(fake, ["SPY"], attempts=2).fetch(AS_OF)
    assert result.health.status == "empty"
    assert any(f.code == "missing_symbol" and f.subject == "SPY" for f in result.flags)
    assert result.quotes == ()
    assert result.bars == ()


def test_unknown_symbol_is_partial_without_retry(fake: FakeServer) -> None:
    """A symbol Yahoo does not know is missing at once: not found is not retried."""
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY)})
    result = _prices(fake, ["SPY", "NOPE"], backoff_s=5.0).fetch(AS_OF)
    assert result.health.status == "partial"
    assert any(f.code == "missing_symbol" and f.subject == "NOPE" for f in result.flags)
    assert fake.hits("/v8/finance/chart/NOPE")
    assert len(fake.hits("/v8/finance/chart/NOPE")) <= 4  # one attempt (yfinance retries once)


def test_nan_and_zero_prices_and_zero_volume_are_flagged(fake: FakeServer) -> None:
    """NaN and zero closes are dropped with a flag; volume 0 on SPY is unknown, never 0."""
    bars = daily_bars(FRIDAY)
    bars[-3] = replace(bars[-3], close=None)
    bars[-2] = replace(bars[-2], close=0.0, open=0.0)
    bars[-1] = replace(bars[-1], volume=0)
    install_yahoo(fake, {"SPY": bars})
    result = _prices(fake, ["SPY"]).fetch(AS_OF)
    codes = {f.code for f in result.flags}
    assert {"bad_value", "zero_volume"} <= codes
    assert all(b.close > 0 for b in result.bars)
    assert bars[-2].session not in {b.session for b in result.bars}
    assert bars[-3].session not in {b.session for b in result.bars}
    quote = result.quotes[0]
    assert quote.volume is None
    assert quote.prev_close == pytest.approx(bars[-4].close)  # the last good close before
    assert all(b.volume is None or b.volume > 0 for b in result.bars)


def test_weekend_is_not_stale_but_a_week_old_feed_is(fake: FakeServer) -> None:
    """Friday's bars are fresh on Sunday; bars ending a week earlier are stale."""
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY), "QQQ": daily_bars(date(2026, 1, 2))})
    sunday = datetime(2026, 1, 11, 15, 0, tzinfo=UTC)
    fresh = _prices(fake, ["SPY"]).fetch(sunday)
    assert fresh.health.status == "ok"
    old = _prices(fake, ["QQQ"]).fetch(sunday)
    assert old.health.status == "stale"
    assert any(f.code == "stale_symbol" for f in old.flags)


def test_no_bar_after_as_of(fake: FakeServer) -> None:
    """Bars of sessions after as_of (and today's before the open) never enter."""
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY)})
    thursday_morning = datetime(2026, 1, 8, 13, 0, tzinfo=UTC)  # 08:00 New York
    result = _prices(fake, ["SPY"]).fetch(thursday_morning)
    assert max(b.session for b in result.bars) == date(2026, 1, 7)
    assert result.quotes[0].observed_at <= thursday_morning


def test_hang_returns_error_within_time_limit(fake: FakeServer) -> None:
    """A Yahoo that never answers gives an error health in about the time limit, not a hang."""
    slow = Reply(delay_s=3.0, body=b"{}")
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY)}, broken={"SPY": [slow] * 5})
    started = time.monotonic()
    result = _prices(fake, ["SPY"], timeout_s=1.0).fetch(AS_OF)
    assert time.monotonic() - started < 2.0
    assert result.health.status == "error"
    assert "no answer within" in result.health.detail
