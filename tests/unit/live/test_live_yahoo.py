"""YahooPrices against a loopback Yahoo speaking the v8 chart JSON, with the real yfinance."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.market.live.yahoo import YahooPrices
from tests.fakes.http import FakeServer
from tests.fakes.yahoo import daily_bars, install_yahoo

# pandas 3 deprecates the `inplace=` calls yfinance 1.7 still makes; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

FRIDAY = date(2026, 1, 9)
AS_OF = datetime(2026, 1, 9, 22, 30, tzinfo=UTC)  # 17:30 New York, after the close


def test_good_day(fake: FakeServer) -> None:
    """A healthy answer gives bars and quotes for every symbol and an ok health."""
    install_yahoo(fake, {"SPY": daily_bars(FRIDAY), "AAPL": daily_bars(FRIDAY, start=200)})
    result = YahooPrices(["SPY", "AAPL"], base_url=fake.base_url, timeout_s=10).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    print(result.health, result.flags, result.quotes)
    print(fake.requests)
