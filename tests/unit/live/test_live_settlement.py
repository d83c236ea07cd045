"""Settling live calls from Yahoo's daily closes, read by yfinance from a loopback fake."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.calendar import end_of_day_known, replay_as_of, session_close
from shared.market.live.settlement import YahooSettlement
from shared.settings import Settings
from tests.fakes.http import FakeServer
from tests.fakes.yahoo import daily_bars, install_yahoo

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

LAST = date(2026, 1, 9)  # a Friday


def test_first_close_at_or_after_maturity_once_final(fake: FakeServer) -> None:
    """The settling close is the first one at or after maturity, and only once it is final."""
    bars = daily_bars(LAST, 30, start=100.0, step=1.0)
    install_yahoo(fake, {"SPY": bars})
    settle = YahooSettlement(Settings(yahoo_base_url=fake.base_url, source_timeout_s=10))
    thursday = date(2026, 1, 8)
    due = session_close(thursday) - timedelta(hours=2)
    quote = settle.settlement_quote("SPY", due, replay_as_of(LAST))
    assert quote is not None
    assert quote.session == thursday
    assert quote.price == next(b.close for b in bars if b.session == thursday)
    # Friday's close is not final until after 17:00 New York: before that, nothing yet.
    friday_due = session_close(LAST)
    assert (
        settle.settlement_quote("SPY", friday_due, end_of_day_known(LAST) - timedelta(minutes=1))
        is None
    )
    assert settle.settlement_quote("SPY", friday_due, end_of_day_known(LAST)) is not None


def test_dead_feed_means_no_price_not_a_guess(fake: FakeServer) -> None:
    """When Yahoo does not know the symbol the answer is None, so the resolver waits or gives up."""
    install_yahoo(fake, {})
    settle = YahooSettlement(Settings(yahoo_base_url=fake.base_url, source_timeout_s=10))
    assert settle.settlement_quote("SPY", session_close(LAST), replay_as_of(LAST)) is None
