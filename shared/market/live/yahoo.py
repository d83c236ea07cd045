"""Daily bars and last quotes of the watch list from Yahoo Finance through yfinance.

One `yf.download` call for the whole list. A broken feed shows up as flags, never as numbers: a
zero or NaN price is dropped with a flag, a zero volume is unknown (None), a missing symbol makes
the result partial.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from time import sleep
from typing import Any
from urllib.parse import urlsplit

import structlog
import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance.data import YfData

from shared.calendar import at_new_york, end_of_day_known, new_york_date
from shared.contracts import Bar, DataFlag, FeedHealth, HealthStatus, Quote, SourceResult
from shared.market.live.health import Deadline, bounded, expected_session, unique_flags

log = structlog.get_logger(__name__)

# Names that always trade: a zero volume on one of these is a broken feed, not a quiet day.
LIQUID = frozenset(
    {"SPY", "QQQ", "IWM", "DIA", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"}
)
SESSION_OPEN = time(9, 30)
# yfinance keeps a process-wide session, cookie and crumb (a singleton): one download at a time.
_DOWNLOAD_LOCK = threading.Lock()
# Words in yfinance's error lines that mean asking again will not help.
_PERMANENT = ("delisted", "no data found", "not found", "invalid")


def _is_crypto(symbol: str) -> bool:
    return symbol.endswith("-USD")


class _RedirectingSession(curl_requests.Session):  # type: ignore[type-arg]
    """A curl_cffi session that sends every Yahoo host to one base URL (a loopback fake, a proxy).

    yfinance hard-codes its cookie and crumb URLs inside methods, so patching its URL constants
    is not enough; rewriting at the session reaches every endpoint it calls.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__(impersonate="chrome")
        self._base = base_url.rstrip("/")

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("yahoo.com"):
            url = f"{self._base}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
        return super().request(method, url, *args, **kwargs)


class _ErrorLines(logging.Handler):
    """Collects yfinance's error lines: the only place yf.download says why a symbol failed."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _yfinance_errors() -> Iterator[_ErrorLines]:
    handler = _ErrorLines()
    logger = logging.getLogger("yfinance")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class YahooPrices:
    """The `prices` source: ~3 months of daily bars and a quote per watched symbol."""

    name = "prices"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        timeout_s: float = 20.0,
        base_url: str | None = None,
        period: str = "3mo",
        attempts: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.timeout_s = timeout_s
        self.base_url = base_url
        self.period = period
        self.attempts = attempts
        self.backoff_s = backoff_s

    def fetch(self, as_of: datetime) -> SourceResult:
        """Bars and quotes known at as_of; never raises for a dead, slow or garbled feed."""
        return bounded(self.name, self.timeout_s, lambda: self._fetch(as_of))

    # --- the download ------------------------------------------------------------------------

    def _fetch(self, as_of: datetime) -> SourceResult:
        deadline = Deadline(self.timeout_s)
        frames: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        pending = list(self.symbols)
        for attempt in range(self.attempts):
            got, errors = self._download(pending, deadline)
            frames.update(got)
            reasons.update(errors)
            pending = [s for s in pending if s not in got and _retryable(errors.get(s, ""))]
            delay = self.backoff_s * 2**attempt
            if not pending or attempt + 1 == self.attempts or delay >= deadline.remaining():
                break
            log.info("source.retry", source=self.name, symbols=pending, attempt=attempt + 1)
            sleep(delay)
        return self._result(as_of, frames, reasons)

    def _download(
        self, symbols: list[str], deadline: Deadline
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One batched yf.download; per-symbol frames with a close, and the others' reasons."""
        if not _DOWNLOAD_LOCK.acquire(timeout=max(deadline.remaining(), 0.01)):
            return {}, dict.fromkeys(symbols, "an earlier Yahoo download is still running")
        try:
            # yfinance memoises some GETs in-process (the time-zone probe), failures included;
            # a retry must reach the network again.
            YfData().cache_get.cache_clear()
            session = _RedirectingSession(self.base_url) if self.base_url else None
            with _yfinance_errors() as errors:
                data = yf.download(
                    symbols,
                    period=self.period,
                    interval="1d",
                    auto_adjust=False,  # real prices: calls are settled against quoted closes
                    actions=False,
                    group_by="ticker",
                    progress=False,
                    threads=True,
                    timeout=max(deadline.remaining(), 0.5),
                    session=session,
                    multi_level_index=True,
                )
        finally:
            _DOWNLOAD_LOCK.release()
        frames: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        present = (
            set(data.columns.get_level_values(0)) if data is not None and not data.empty else set()
        )
        for symbol in symbols:
            frame = data[symbol] if symbol in present else None
            if frame is not None and "Close" in frame and frame["Close"].notna().any():
                frames[symbol] = frame
            else:
                said = [line for line in errors.lines if symbol in line]
                reasons[symbol] = _clean(said[-1]) if said else "no data in Yahoo's answer"
        return frames, reasons

    # --- from frames to contracts ------------------------------------------------------------

    def _result(
        self, as_of: datetime, frames: dict[str, Any], reasons: dict[str, str]
    ) -> SourceResult:
        today = new_york_date(as_of)
        bars: list[Bar] = []
        quotes: list[Quote] = []
        flags: list[DataFlag] = []
        stale: list[str] = []
        for symbol in self.symbols:
            frame = frames.get(symbol)
            if frame is None:
                flags.append(
                    DataFlag(code="missing_symbol", subject=symbol, detail=reasons[symbol])
                )
                continue
            symbol_bars, symbol_flags = _bars(symbol, frame, as_of)
            flags.extend(symbol_flags)
            if not symbol_bars:
                flags.append(
                    DataFlag(code="missing_symbol", subject=symbol, detail="no usable bar")
                )
                continue
            bars.extend(symbol_bars)
            quotes.append(_quote(symbol_bars, as_of, today))
            if not _is_crypto(symbol) and symbol_bars[-1].session < expected_session(as_of):
                stale.append(symbol)
                flags.append(
                    DataFlag(
                        code="stale_symbol",
                        subject=symbol,
                        detail=f"newest bar {symbol_bars[-1].session}, "
                        f"expected {expected_session(as_of)}",
                    )
                )
        missing = [s for s in self.symbols if s not in {q.symbol for q in quotes}]
        status: HealthStatus = "ok"
        if not quotes:
            # Nothing usable: "empty" when Yahoo answered without data, "error" when it failed.
            failed = any(_retryable(reasons.get(s, "")) for s in missing if s in reasons)
            status = "error" if failed else "empty"
        elif missing:
            status = "partial"
        elif stale:
            status = "stale"
        detail = f"{len(quotes)}/{len(self.symbols)} symbols"
        if missing:
            detail += f"; missing {', '.join(missing)}"
            first = reasons.get(missing[0])
            if first:
                detail += f" ({first})"
        if stale:
            detail += f"; stale {', '.join(stale)}"
        health = FeedHealth(
            source=self.name,
            status=status,
            detail=detail[:500],
            items=len(quotes),
            newest_at=max((q.observed_at for q in quotes), default=None),
        )
        return SourceResult(
            source=self.name,
            health=health,
            bars=tuple(bars),
            quotes=tuple(quotes),
            flags=unique_flags(flags),
        )


def _retryable(reason: str) -> bool:
    lowered = reason.lower()
    return not any(word in lowered for word in _PERMANENT)


def _clean(line: str) -> str:
    return " ".join(line.split())[:200]


def _number(value: object) -> float | None:
    """A finite float, or None for NaN, None and anything that is not a number."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _known_by(session: date, as_of: datetime, today: date) -> bool:
    """A bar exists at as_of once its session has opened (today's bar is the live one)."""
    if session < today:
        return True
    return session == today and as_of >= at_new_york(session, SESSION_OPEN)


def _bars(symbol: str, frame: Any, as_of: datetime) -> tuple[list[Bar], list[DataFlag]]:
    today = new_york_date(as_of)
    bars: list[Bar] = []
    bad_prices: list[str] = []
    zero_volume: list[str] = []
    for stamp, row in frame.iterrows():
        session = stamp.date()
        if not _known_by(session, as_of, today):
            continue
        values = {k: _number(row.get(k)) for k in ("Open", "High", "Low", "Close", "Volume")}
        if all(v is None for v in values.values()):
            continue  # a row the batch added to align symbols (a weekend for crypto): no bar
        close = values["Close"]
        if close is None or close <= 0:
            bad_prices.append(f"{session} close {row.get('Close')}")
            continue
        prices = {}
        for key in ("Open", "High", "Low"):
            value = values[key]
            if value is not None and value <= 0:
                bad_prices.append(f"{session} {key.lower()} {value}")
                value = None
            prices[key.lower()] = value
        volume = values["Volume"]
        if volume is not None and volume <= 0:
            if symbol in LIQUID:
                zero_volume.append(str(session))
            volume = None  # zero volume is a feed gap on an index or a thin day: unknown, not 0
        bars.append(Bar(session=session, symbol=symbol, close=close, volume=volume, **prices))
    flags = []
    if bad_prices:
        flags.append(
            DataFlag(
                code="bad_value",
                subject=symbol,
                detail=f"{len(bad_prices)} zero/NaN prices dropped: {'; '.join(bad_prices[:3])}",
            )
        )
    if zero_volume:
        flags.append(
            DataFlag(
                code="zero_volume",
                subject=symbol,
                detail=f"volume 0 on a liquid name, taken as unknown: {', '.join(zero_volume[:3])}",
            )
        )
    return bars, flags


def _quote(bars: list[Bar], as_of: datetime, today: date) -> Quote:
    last = bars[-1]
    prev = bars[-2] if len(bars) > 1 else None
    live = last.session == today and as_of < end_of_day_known(last.session)
    observed = as_of if live else min(end_of_day_known(last.session), as_of)
    change = None
    if prev is not None:
        change = round((last.close / prev.close - 1.0) * 100.0, 4)
    return Quote(
        symbol=last.symbol,
        price=last.close,
        prev_close=prev.close if prev else None,
        change_pct=change,
        volume=last.volume,
        session=last.session,
        observed_at=observed,
    )
