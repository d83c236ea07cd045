"""Test cases for the Claude brain: a cycle, a deliberation, a mind's reply, and the constants."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

from shared.brain.anthropic import AnthropicBrain
from shared.brain.prompting import Rule
from shared.contracts import (
    BaseRate,
    CycleContext,
    DataFlag,
    Deliberation,
    Features,
    Filing,
    MindOutput,
    MindSummary,
    NewsItem,
    Prediction,
    Quote,
    ScoreLine,
    Snapshot,
    SymbolReturns,
    TrackRecord,
)

BrainMaker = Callable[..., AnthropicBrain]

API_KEY = "sk-ant-test-DO-NOT-LEAK-5f3c9a7e1b"
AS_OF = datetime(2026, 4, 3, 21, 30, tzinfo=UTC)
NOW = datetime(2026, 4, 3, 21, 31, tzinfo=UTC)
MIND_MODEL = "claude-haiku-5-5"
SYNTHESIS_MODEL = "claude-sonnet-5-5"
CRYPTO_RULE = Rule(
    name="crypto_short_horizon",
    asset_class="crypto",
    max_horizon_hours=48,
    evidence="hit rate 0.44 over 228 calls",
)


def quote(symbol: str, price: float, change_pct: float) -> Quote:
    return Quote(
        symbol=symbol,
        price=price,
        change_pct=change_pct,
        session=date(2026, 4, 3),
        observed_at=AS_OF - timedelta(hours=1),
    )


def headline(title: str, summary: str = "") -> NewsItem:
    return NewsItem(
        published_at=AS_OF - timedelta(hours=2), source="wire", title=title, summary=summary
    )


def make_context(
    *, cycle_key: str = "2026-04-03T17:30", news: Sequence[NewsItem] = ()
) -> CycleContext:
    snapshot = Snapshot(
        cycle_key=cycle_key,
        as_of=AS_OF,
        mode="replay",
        quotes=(
            quote("SPY", 655.85, 0.09),
            quote("QQQ", 580.10, 0.12),
            quote("IWM", 250.30, 0.70),
            quote("TSLA", 240.00, -5.42),
            quote("BTC-USD", 83000.0, -1.2),
        ),
        news=tuple(news) or (headline("Americans have bleak views on Iran war"),),
        flags=(DataFlag(code="missing_series", subject="MSTR", detail="no quote at as_of"),),
    )
    features = Features(
        as_of=AS_OF,
        session=date(2026, 4, 3),
        broad="SPY",
        tech="QQQ",
        small="IWM",
        last_close={"SPY": 655.85, "QQQ": 580.10, "IWM": 250.30, "BTC-USD": 83000.0},
        vix=24.54,
        curve_slope=0.51,
        regime="chop",
        regime_score=0.4,
        unknown=("oil_r20",),
    )
    record = TrackRecord(
        as_of=AS_OF,
        lines=(
            ScoreLine(source="macro", calls=12, hits=4, misses=8, hit_rate=0.33, brier=0.29),
            ScoreLine(source="synthesis", calls=40, hits=23, misses=17, hit_rate=0.575),
        ),
    )
    return CycleContext(cycle_number=801, snapshot=snapshot, features=features, record=record)


def make_deliberation(*, call: bool = True) -> Deliberation:
    outputs = (
        MindOutput(mind="macro", stance="neutral", confidence=0.25, argument="Rates held."),
        MindOutput.absent("flow", "no crypto data known at as_of"),
        MindOutput(mind="contrarian", stance="bearish", confidence=0.7, argument="Fade it."),
    )
    minds = tuple(
        MindSummary(
            mind=o.mind,
            status=o.status,
            stance=o.stance,
            confidence=o.confidence,
            weight=0.5,
            reason=o.reason,
        )
        for o in outputs
    )
    prediction = (
        Prediction(
            target="SPY",
            direction="down",
            horizon_hours=24,
            reference_price=655.85,
            confidence=0.54,
            falsifier="SPY closes above 655.85 at maturity",
            made_at=AS_OF,
            matures_at=AS_OF + timedelta(days=1),
            regime="chop",
        )
        if call
        else None
    )
    return Deliberation(
        minds=minds,
        outputs=outputs,
        debate="aligned_bearish" if call else "unknown",
        conviction=0.34,
        probability_up=0.46,
        prediction=prediction,
        abstention=None if call else "the minds disagree and the record in chop is thin",
        missing=("MSTR quote",),
    )


def good_view(**overrides: object) -> dict[str, object]:
    view: dict[str, object] = {
        "stance": "bearish",
        "confidence": 0.4,
        "argument": "TSLA -5.42% while SPY +0.09%: the mega-caps are being sold under a flat "
        "index. I cannot see MSTR at all today.",
        "topics": ["breadth", "Rotation"],
        "call": {"target": "SPY", "direction": "down", "horizon_hours": 24, "probability": 0.55},
    }
    view.update(overrides)
    return view


# --- a live-like cycle: what the desk reads on a real day, at real sizes ------------------------

LIVE_SYMBOLS = (
    "^GSPC", "SPY", "QQQ", "IWM", "DIA", "^VIX", "^TNX", "AAPL", "MSFT", "NVDA",
    "AMZN", "GOOGL", "META", "TSLA", "BTC-USD", "MSTR", "CL=F",
)  # fmt: skip


def live_like_context(as_of: datetime = AS_OF, cycle_key: str = "live-1") -> CycleContext:
    """A cycle the size of a live one: 17 symbols, 30 headlines, 20 filings, a record, rules,
    stories and lessons (the issue's measured live cycle had 9-12k input tokens per mind)."""
    quotes = tuple(
        Quote(
            symbol=s,
            price=round(100 + 37.3 * i, 2),
            prev_close=round(100 + 37.1 * i, 2),
            change_pct=round(0.37 * ((i % 5) - 2), 2),
            volume=1_000_000.0 * (i + 1),
            session=as_of.date(),
            observed_at=as_of - timedelta(minutes=20),
        )
        for i, s in enumerate(LIVE_SYMBOLS)
    )
    news = tuple(
        NewsItem(
            published_at=as_of - timedelta(minutes=30 + 17 * i),
            source=("Reuters", "Bloomberg", "CNBC", "MarketWatch")[i % 4],
            title=f"Stocks weigh mixed earnings and a Fed speaker's remarks as yields edge {i}",
            summary=(
                "Wall Street's main indexes were little changed as investors weighed a batch of "
                "quarterly results against comments from a Federal Reserve official who said "
                "policy would stay restrictive until inflation shows sustained progress, while "
                f"Treasury yields rose and oil slipped for a {i}th session."
            ),
            url=f"https://news.example/{i}",
        )
        for i in range(30)
    )
    filings = tuple(
        Filing(
            ticker=LIVE_SYMBOLS[7 + i % 7],
            form=("8-K", "4")[i % 2],
            filed_at=as_of - timedelta(hours=2 + i),
            items=("2.02", "9.01") if i % 2 == 0 else (),
            summary=(
                "Results of operations and financial condition; press release announcing "
                "quarterly results and guidance for the coming quarter."
                if i % 2 == 0
                else "Director sold shares under a 10b5-1 trading plan adopted last year."
            ),
            insider=None if i % 2 == 0 else "Jane Director",
            transaction_code=None if i % 2 == 0 else "S",
            shares=None if i % 2 == 0 else 12_500.0,
            value=None if i % 2 == 0 else 2_312_500.0,
        )
        for i in range(20)
    )
    snapshot = Snapshot(
        cycle_key=cycle_key,
        as_of=as_of,
        mode="live",
        quotes=quotes,
        news=news,
        filings=filings,
        flags=(
            DataFlag(code="stale_feed", subject="fred", detail="CPI last released 12 days ago"),
        ),
    )
    features = Features(
        as_of=as_of,
        session=as_of.date(),
        broad="^GSPC",
        tech="QQQ",
        small="IWM",
        megas=("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"),
        returns={
            s: SymbolReturns(r1=0.1234567 * (i - 8), r5=0.4567891 * (i - 7), r20=1.234567 * (i - 6))
            for i, s in enumerate(LIVE_SYMBOLS)
        },
        last_close={q.symbol: q.price for q in quotes},
        realized_vol_20d=14.81234,
        volume_ratio_20d=1.0712,
        vix=17.4,
        vix_change_5d=-1.2,
        curve_slope=0.51,
        curve_slope_change_20d=0.08,
        cpi_yoy=2.9,
        core_cpi_yoy=3.1,
        fed_funds=4.33,
        unemployment=4.2,
        oil_r20=-3.4,
        regime="chop",
        regime_score=0.41,
        base_rates={f"{s}|1": BaseRate(up=0.53, down=0.47, n=2514) for s in LIVE_SYMBOLS[:5]},
    )
    record = TrackRecord(
        as_of=as_of,
        lines=tuple(
            ScoreLine(
                source=source,
                regime=regime,
                calls=120,
                hits=61,
                misses=59,
                hit_rate=61 / 120,
                brier=0.2487,
                hit_rate_low=0.42,
                hit_rate_high=0.6,
                base_rate=0.53,
                brier_skill=-0.004,
            )
            for source in ("macro", "flow", "contrarian", "synthesis")
            for regime in ("all", "chop")
        ),
    )
    return CycleContext(cycle_number=900, snapshot=snapshot, features=features, record=record)
