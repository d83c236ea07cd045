"""Settlement prices for live calls: Yahoo's daily closes, the same feed the cycle read."""

from __future__ import annotations

from datetime import datetime

from shared.calendar import end_of_day_known, session_close
from shared.contracts import Quote
from shared.market.live.yahoo import YahooPrices
from shared.settings import Settings


class YahooSettlement:
    """Answers settlement_quote from a month of daily bars of the call's target."""

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.source_timeout_s
        self._base_url = settings.yahoo_base_url

    def settlement_quote(self, symbol: str, matures_at: datetime, now: datetime) -> Quote | None:
        """The first daily close at or after matures_at that was final by now; None if not yet.

        A dead feed is None too: the resolver waits, then counts attempts, then calls it
        inconclusive — it never settles on a guess.
        """
        source = YahooPrices(
            [symbol], timeout_s=self._timeout, base_url=self._base_url, period="1mo"
        )
        result = source.fetch(now)
        closes = sorted(
            (bar for bar in result.bars if bar.symbol == symbol.upper()),
            key=lambda bar: bar.session,
        )
        for bar in closes:
            if session_close(bar.session) >= matures_at and end_of_day_known(bar.session) <= now:
                return Quote(
                    symbol=symbol,
                    price=bar.close,
                    volume=bar.volume,
                    session=bar.session,
                    observed_at=end_of_day_known(bar.session),
                )
        return None
