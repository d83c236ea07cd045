"""Yahoo Finance as yfinance 1.7 sees it: the cookie fetch, the crumb, and the v8 chart JSON.

yfinance calls, in order: the cookie host (answered 404 with a Set-Cookie like the real one),
/v1/test/getcrumb, /v8/finance/chart/SYM?range=1d (time zone), then ?range=3mo (the history).
On a 4xx/5xx it also tries the consent flow (/consent), which this fake answers 404.
Like Yahoo, it serves only the bars within the asked range (counted back from the symbol's last
bar here, where Yahoo counts from today: the tests' bars end on dates of their choosing) and
refuses a range that is not one of the chart's validRanges.
"""

from __future__ import annotations

import json
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from tests.fakes.http import FakeServer, Reply, Request

NEW_YORK = ZoneInfo("America/New_York")
CRUMB = "FakeCrumb0x"


@dataclass(frozen=True)
class DayBar:
    """One daily bar as Yahoo sends it; None becomes JSON null (what Yahoo sends for a gap)."""

    session: date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None


def weekdays(end: date, count: int) -> list[date]:
    """The last `count` weekdays up to and including end (holidays are the test's business)."""
    days: list[date] = []
    day = end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


def daily_bars(
    end: date, count: int = 60, *, start: float = 100.0, step: float = 0.5, volume: float = 1e6
) -> list[DayBar]:
    """A gently rising series of weekday bars ending on `end`."""
    bars = []
    for i, day in enumerate(weekdays(end, count)):
        close = round(start + step * i, 4)
        bars.append(DayBar(day, close - 0.2, close + 0.5, close - 0.6, close, volume))
    return bars


def random_walk_bars(
    end: date,
    count: int,
    *,
    start: float = 100.0,
    vol: float = 0.012,
    seed: int = 7,
    volume: float | None = 1e6,
) -> list[DayBar]:
    """Weekday bars of a seeded driftless random walk (daily moves of `vol`, log scale): a
    history with ups, downs and quiet days, for what needs more than a straight line."""
    rng = random.Random(seed)
    bars, close = [], start
    for day in weekdays(end, count):
        close = round(close * math.exp(rng.gauss(0.0, vol)), 4)
        bars.append(DayBar(day, close, close * 1.004, close * 0.996, close, volume))
    return bars


# Days each of the chart's ranges reaches back; "max" is everything.
RANGE_DAYS = {"1d": 1, "5d": 5, "1mo": 31, "3mo": 92, "6mo": 183, "1y": 366, "2y": 731,
              "5y": 1827, "10y": 3653}  # fmt: skip
VALID_RANGES = [*RANGE_DAYS, "ytd", "max"]


def in_range(bars: list[DayBar], asked: str | None) -> list[DayBar] | None:
    """The bars within the asked range, counted back from the last bar; None for a bad range."""
    if asked is None or asked == "max" or not bars:
        return bars
    last = bars[-1].session
    if asked == "ytd":
        first = date(last.year, 1, 1)
    elif asked in RANGE_DAYS:
        first = last - timedelta(days=RANGE_DAYS[asked] - 1)
    else:
        return None
    return [b for b in bars if b.session >= first]


def chart_json(
    symbol: str, bars: list[DayBar], *, instrument: str = "EQUITY", asked: str = "3mo"
) -> dict[str, object]:
    """The v8 chart answer for daily bars: timestamps at the 09:30 New York open, like Yahoo's."""
    stamps = [
        int(datetime.combine(b.session, time(9, 30), tzinfo=NEW_YORK).timestamp()) for b in bars
    ]
    last = stamps[-1] if stamps else 0
    closes = [b.close for b in bars]
    period = {"timezone": "EST", "start": last, "end": last + 23400, "gmtoffset": -18000}
    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "NMS",
        "fullExchangeName": "NasdaqGS",
        "instrumentType": instrument,
        "firstTradeDate": 345479400,
        "regularMarketTime": last + 23400,
        "hasPrePostMarketData": True,
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": "America/New_York",
        "regularMarketPrice": closes[-1] if closes else None,
        "chartPreviousClose": closes[0] if closes else None,
        "priceHint": 2,
        "currentTradingPeriod": {"pre": period, "regular": period, "post": period},
        "dataGranularity": "1d",
        "range": asked,
        "validRanges": VALID_RANGES,
    }
    quote = {
        "open": [b.open for b in bars],
        "high": [b.high for b in bars],
        "low": [b.low for b in bars],
        "close": closes,
        "volume": [b.volume for b in bars],
    }
    result = {
        "meta": meta,
        "timestamp": stamps,
        "indicators": {"quote": [quote], "adjclose": [{"adjclose": closes}]},
    }
    return {"chart": {"result": [result], "error": None}}


def not_found_json(symbol: str) -> dict[str, object]:
    """Yahoo's answer for an unknown or delisted symbol."""
    description = f"No data found, symbol may be delisted: {symbol}"
    return {"chart": {"result": None, "error": {"code": "Not Found", "description": description}}}


def bad_range_json(asked: str | None) -> dict[str, object]:
    """The chart's refusal of a range it does not serve."""
    description = f"Invalid input - range={asked} is not one of {', '.join(VALID_RANGES)}"
    return {"chart": {"result": None, "error": {"code": "Bad Request", "description": description}}}


@dataclass
class YahooFake:
    """The chart endpoint: per-symbol bars, plus per-symbol broken replies served first."""

    bars: dict[str, list[DayBar]]
    broken: dict[str, list[Reply]] = field(default_factory=dict)
    history_requests: dict[str, int] = field(default_factory=dict)
    ranges: list[str] = field(default_factory=list)  # the range of every history request
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def chart(self, request: Request) -> Reply:
        # yfinance sends index symbols percent-encoded (^VIX as %5EVIX), as Yahoo expects.
        symbol = unquote(request.path.rsplit("/", 1)[-1])
        with self._lock:
            if request.param("range") != "1d":
                self.history_requests[symbol] = self.history_requests.get(symbol, 0) + 1
                self.ranges.append(request.param("range") or "")
            queue = self.broken.get(symbol)
            if queue:
                return queue.pop(0)
        if symbol not in self.bars:
            return Reply(status=404, body=json.dumps(not_found_json(symbol)))
        bars = in_range(self.bars[symbol], request.param("range"))
        if bars is None:
            return Reply(status=400, body=json.dumps(bad_range_json(request.param("range"))))
        asked = request.param("range") or ""
        return Reply(body=json.dumps(chart_json(symbol, bars, asked=asked)))


def install_yahoo(
    fake: FakeServer, bars: dict[str, list[DayBar]], broken: dict[str, list[Reply]] | None = None
) -> YahooFake:
    """Route the cookie, crumb, consent and chart endpoints of `fake`; returns the chart state."""
    state = YahooFake(bars=bars, broken=dict(broken or {}))
    cookie = {"Set-Cookie": "A3=d=AQABBFake; Max-Age=31557600; Path=/; SameSite=None"}
    fake.script("/", Reply(status=404, body=b"", content_type="text/html", headers=cookie))
    fake.script("/v1/test/getcrumb", Reply(body=CRUMB, content_type="text/plain"))
    fake.handle("/v8/finance/chart/", state.chart)
    return state
