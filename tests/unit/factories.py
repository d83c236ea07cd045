"""Small builders of contracts with realistic numbers, for the minds' and synthesis' unit tests.

Numbers are modelled on real sessions (S&P 500 near 2051 in early 2016, the seeds' April 2026 tape).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from shared.contracts import (
    Breadth,
    CycleContext,
    DataFlag,
    Features,
    MindCall,
    MindOutput,
    Regime,
    ScoreLine,
    Snapshot,
    Stance,
    SymbolReturns,
    TrackRecord,
)

AS_OF = datetime(2016, 1, 6, 22, 30, tzinfo=UTC)
SESSION = date(2016, 1, 6)
MEGAS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA")


def snapshot(*, flags: tuple[DataFlag, ...] = (), cycle_key: str = "2016-01-06") -> Snapshot:
    return Snapshot(cycle_key=cycle_key, as_of=AS_OF, mode="replay", flags=flags)


def calm_features(**overrides: Any) -> Features:
    """An unremarkable session: flat-ish index, normal curve, mid VIX, nothing stretched."""
    base: dict[str, Any] = {
        "as_of": AS_OF,
        "session": SESSION,
        "broad": "SPY",
        "tech": "QQQ",
        "small": "IWM",
        "megas": MEGAS,
        "returns": {
            "SPY": SymbolReturns(r1=0.12, r5=0.4, r20=0.9),
            "QQQ": SymbolReturns(r1=0.15, r5=0.5, r20=1.1),
            "IWM": SymbolReturns(r1=0.05, r5=0.3, r20=0.6),
        },
        "last_close": {"SPY": 2051.30, "QQQ": 4420.10, "IWM": 1120.40},
        "realized_vol_20d": 14.0,
        "volume_ratio_20d": 1.0,
        "vix": 17.5,
        "vix_change_5d": 0.4,
        "curve_slope": 1.20,
        "curve_slope_change_20d": 0.02,
        "cpi_yoy": 1.9,
        "core_cpi_yoy": 2.0,
        "fed_funds": 1.25,
        "fed_funds_change_6m": 0.0,
        "unemployment": 4.4,
        "unemployment_change_3m": 0.0,
        "oil_r20": 2.0,
        "breadth": Breadth(
            broad_r1=0.12,
            tech_r1=0.15,
            small_r1=0.05,
            mega_mean_r1=0.1,
            mega_up=4,
            mega_down=3,
            mega_count=7,
            label="mixed",
        ),
        "regime": "chop",
        "regime_score": 0.4,
    }
    base.update(overrides)
    return Features(**base)


def hawkish_macro() -> dict[str, Any]:
    """An inverted, flattening curve; a Fed that has hiked hard; jobs turning (2006-2007-like)."""
    return {
        "curve_slope": -0.42,
        "curve_slope_change_20d": -0.15,
        "cpi_yoy": 3.1,
        "fed_funds": 5.25,
        "fed_funds_change_6m": 1.0,
        "unemployment": 4.7,
        "unemployment_change_3m": 0.4,
    }


def hollow_breadth() -> dict[str, Any]:
    """The seeds' 'mega-caps are lying to the index' session, with momentum rolling over."""
    return {
        "returns": {
            "SPY": SymbolReturns(r1=0.09, r5=-1.6, r20=-3.2),
            "QQQ": SymbolReturns(r1=0.12, r5=-2.9, r20=-4.5),
            "IWM": SymbolReturns(r1=0.70, r5=-1.2, r20=-2.8),
            "TSLA": SymbolReturns(r1=-5.42),
            "META": SymbolReturns(r1=-0.82),
            "GOOGL": SymbolReturns(r1=-0.54),
            "AMZN": SymbolReturns(r1=-0.37),
            "MSFT": SymbolReturns(r1=1.11),
            "NVDA": SymbolReturns(r1=0.94),
        },
        "volume_ratio_20d": 1.5,
        "breadth": Breadth(
            broad_r1=0.09,
            tech_r1=0.12,
            small_r1=0.70,
            mega_mean_r1=-0.85,
            mega_up=2,
            mega_down=4,
            mega_count=6,
            spread_mega_vs_broad=-0.94,
            spread_small_vs_broad=0.61,
            label="mega_down_index_flat",
        ),
    }


def panic() -> dict[str, Any]:
    """A stretched selloff with a VIX spike (August 2015-like): -6.8% in a week, VIX at 40."""
    return {
        "returns": {
            "SPY": SymbolReturns(r1=-3.9, r5=-6.8, r20=-8.5),
            "QQQ": SymbolReturns(r1=-3.8, r5=-7.0, r20=-9.0),
            "IWM": SymbolReturns(r1=-3.0, r5=-5.9, r20=-8.0),
        },
        "realized_vol_20d": 18.0,
        "vix": 40.74,
        "vix_change_5d": 21.6,
        "breadth": Breadth(
            broad_r1=-3.9,
            tech_r1=-3.8,
            small_r1=-3.0,
            mega_mean_r1=-4.1,
            mega_up=0,
            mega_down=7,
            mega_count=7,
            label="broad_selloff",
        ),
        "regime": "crisis",
        "regime_score": 0.8,
    }


def context(
    features: Features | None = None,
    *,
    flags: tuple[DataFlag, ...] = (),
    record: TrackRecord | None = None,
    cycle_number: int = 412,
) -> CycleContext:
    return CycleContext(
        cycle_number=cycle_number,
        snapshot=snapshot(flags=flags),
        features=features or calm_features(),
        record=record or TrackRecord(),
    )


def line(source: str, hits: int, misses: int, regime: Regime | Literal["all"] = "all") -> ScoreLine:
    n = hits + misses
    return ScoreLine(
        source=source,
        regime=regime,
        calls=n,
        hits=hits,
        misses=misses,
        hit_rate=hits / n if n else None,
    )


def mind(
    name: str,
    stance: Stance = "neutral",
    confidence: float = 0.0,
    *,
    probability: float | None = None,
    target: str = "SPY",
    argument: str = "",
) -> MindOutput:
    """An ok mind output; with a probability it also carries its own call on the target."""
    call = None
    if probability is not None and stance != "neutral":
        call = MindCall(
            target=target,
            direction="up" if stance == "bullish" else "down",
            horizon_hours=24,
            probability=probability,
        )
    return MindOutput(
        mind=name,
        stance=stance,
        confidence=confidence,
        argument=argument or f"{name} argument.",
        call=call,
    )
