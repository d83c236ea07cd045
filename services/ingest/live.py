"""Assembles the live sources' results into one point-in-time Snapshot and its Features.

Pure: no network, no clock. A source that did not answer is an error health record; every
health that is not ok is also a flag the minds see; nothing later than as_of gets in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl

from shared.calendar import end_of_day_known, new_york_date
from shared.contracts import (
    Bar,
    CycleTrigger,
    DataFlag,
    Features,
    FeedHealth,
    MacroValue,
    Snapshot,
    SourceResult,
)
from shared.features import compute_features, empty_features, features_at
from shared.news import news_block
from shared.sanity import recent_flags, screen_macro, screen_prices

NO_ANSWER = "no answer within time limit"
# How long after it became known a sanity finding is still flagged (as in the replay market).
SANITY_WINDOW_DAILY = timedelta(days=10)
SANITY_WINDOW_MONTHLY = timedelta(days=70)
_FLAG_FOR_STATUS = {
    "stale": "stale_feed",
    "partial": "partial_feed",
    "empty": "empty_feed",
    "error": "feed_error",
}
_KNOWN_AT = pl.Datetime("us", "UTC")
PRICES_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "known_at": _KNOWN_AT,
}
MACRO_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "series": pl.String(),
    "value": pl.Float64(),
    "released": pl.Date(),
    "known_at": _KNOWN_AT,
}


def bar_known_at(bar: Bar, as_of: datetime) -> datetime:
    """A daily bar is known after its session's close; today's live bar only as of now."""
    closed = end_of_day_known(bar.session)
    if bar.session == new_york_date(as_of) and as_of < closed:
        return as_of
    return closed


def prices_frame(bars: Sequence[Bar], as_of: datetime) -> pl.DataFrame:
    """Bars known at as_of as the features' prices frame (one row per session and symbol)."""
    rows = {
        (bar.session, bar.symbol): (
            bar.session,
            bar.symbol,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar_known_at(bar, as_of),
        )
        for bar in bars
        if bar.session <= new_york_date(as_of)
    }
    frame = pl.DataFrame(list(rows.values()), schema=PRICES_SCHEMA, orient="row")
    return frame.filter(pl.col("known_at") <= as_of).sort("date", "symbol")


def macro_frame(values: Sequence[MacroValue], as_of: datetime) -> pl.DataFrame:
    """Macro values public at as_of as the features' macro frame."""
    rows = {
        (v.observed, v.series): (
            v.observed,
            v.series,
            v.value,
            new_york_date(v.released_at),
            v.released_at.astimezone(UTC),
        )
        for v in values
        if v.released_at <= as_of
    }
    return pl.DataFrame(list(rows.values()), schema=MACRO_SCHEMA, orient="row").sort(
        "date", "series"
    )


def _health_flag(health: FeedHealth) -> DataFlag:
    return DataFlag(
        code=_FLAG_FOR_STATUS.get(health.status, "feed_error"),
        subject=health.source,
        detail=f"{health.status}: {health.detail}"[:500],
    )


def assemble_live(
    trigger: CycleTrigger, results: Sequence[SourceResult], *, expected: Sequence[str]
) -> tuple[Snapshot, Features]:
    """One Snapshot of everything the sources returned that was known at as_of, and its Features."""
    as_of = trigger.as_of.astimezone(UTC)
    by_source = {result.source: result for result in results}
    health = [result.health for result in results]
    health += [
        FeedHealth(source=name, status="error", detail=NO_ANSWER)
        for name in expected
        if name not in by_source
    ]
    flags: list[DataFlag] = [flag for result in results for flag in result.flags]
    flags += [_health_flag(h) for h in health if h.status != "ok"]
    snapshot = Snapshot(
        cycle_key=trigger.cycle_key,
        as_of=as_of,
        mode=trigger.mode,
        quotes=tuple(q for r in results for q in r.quotes if q.observed_at <= as_of),
        macro=tuple(m for r in results for m in r.macro if m.released_at <= as_of),
        news=tuple(n for r in results for n in r.news if n.published_at <= as_of),
        filings=tuple(f for r in results for f in r.filings if f.filed_at <= as_of),
        health=tuple(health),
        flags=tuple(dict.fromkeys(flags)),
    )
    bars = [bar for result in results for bar in result.bars]
    prices = prices_frame(bars, as_of)
    if prices.is_empty():
        return snapshot, empty_features(as_of, ("prices",))
    # Implausible values are set aside before the features read them, and said so this cycle.
    prices, price_findings = screen_prices(prices)
    macro, macro_findings = screen_macro(macro_frame(snapshot.macro, as_of))
    sanity = recent_flags(price_findings, as_of, SANITY_WINDOW_DAILY)
    sanity += recent_flags(macro_findings, as_of, SANITY_WINDOW_MONTHLY)
    if sanity:
        snapshot = snapshot.model_copy(
            update={"flags": tuple(dict.fromkeys((*snapshot.flags, *sanity)))}
        )
    frame = compute_features(prices, macro, screened=True)
    features = features_at(frame, as_of) or empty_features(as_of, ("history",))
    news = news_block(snapshot.news, as_of)
    return snapshot, features.model_copy(update={"news": news}) if news else features
