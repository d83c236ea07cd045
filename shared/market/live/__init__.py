"""The live side of the market port: one Source per feed (prices, macro, news, filings).

`build_sources` wires them from the settings once per worker; each `fetch(as_of)` returns a
SourceResult whose health says how the feed answered, and never raises for a bad feed.
"""

from __future__ import annotations

from shared.market.live.edgar import EdgarFilings
from shared.market.live.fred import Fred
from shared.market.live.news import RssNews
from shared.market.live.recorder import record
from shared.market.live.yahoo import YahooPrices
from shared.ports import Source
from shared.settings import Settings

__all__ = ["EdgarFilings", "Fred", "RssNews", "YahooPrices", "build_sources", "record"]


def build_sources(settings: Settings) -> dict[str, Source]:
    """The four live sources by name, configured from the settings.

    Raises: ConfigurationError when sec_user_agent is missing (the SEC refuses anonymous clients).
    """
    timeout = settings.source_timeout_s
    key = settings.fred_api_key.get_secret_value() if settings.fred_api_key else None
    sources: list[Source] = [
        YahooPrices(settings.watchlist, timeout_s=timeout, base_url=settings.yahoo_base_url),
        Fred(settings.fred_series, api_key=key, timeout_s=timeout, base_url=settings.fred_base_url),
        RssNews(settings.news_feeds, timeout_s=timeout),
        EdgarFilings(
            settings.watchlist,
            user_agent=settings.sec_user_agent,
            timeout_s=timeout,
            base_url=settings.sec_base_url,
        ),
    ]
    return {source.name: source for source in sources}
