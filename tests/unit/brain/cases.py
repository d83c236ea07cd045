"""Test cases for the Claude brain: a cycle, a deliberation, a mind's reply, and the constants."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

from shared.brain.anthropic import AnthropicBrain
from shared.brain.prompting import Rule
from shared.brain.spending import Prices
from shared.contracts import (
    CycleContext,
    DataFlag,
    Deliberation,
    Features,
    MindOutput,
    MindSummary,
    NewsItem,
    Prediction,
    Quote,
    ScoreLine,
    Snapshot,
    TrackRecord,
)

BrainMaker = Callable[..., AnthropicBrain]

API_KEY = "sk-ant-test-DO-NOT-LEAK-5f3c9a7e1b"
AS_OF = datetime(2026, 4, 3, 21, 30, tzinfo=UTC)
NOW = datetime(2026, 4, 3, 21, 31, tzinfo=UTC)
PRICES = Prices(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75)
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
