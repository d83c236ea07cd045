"""The offline minds: each reads its own features, they can disagree, and blindness is honest."""

from __future__ import annotations

import re

import pytest

from shared.brain import OfflineBrain
from shared.brain.offline import MINDS, MindSpec, Reading
from shared.contracts import Breadth, CycleContext, DataFlag, MindOutput, SymbolReturns
from shared.ports import Brain

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]

BRAIN = OfflineBrain()


def test_offline_brain_satisfies_the_brain_port() -> None:
    """OfflineBrain is a shared.ports.Brain named 'offline'."""
    assert isinstance(BRAIN, Brain)
    assert BRAIN.name == "offline"


def test_macro_is_bearish_on_an_inverted_curve_and_tightening() -> None:
    """An inverted curve, a restrictive real rate, hikes and rising joblessness: macro bearish."""
    out = BRAIN.think("macro", fx.context(fx.calm_features(**fx.hawkish_macro())))
    assert out.status == "ok"
    assert out.stance == "bearish"
    assert out.call is not None
    assert out.call.direction == "down"
    assert out.call.target == "SPY"
    assert out.call.horizon_hours == 24
    assert 0.5 < out.call.probability <= 0.65
    assert "-0.42" in out.argument
    assert out.topics == ("rates", "inflation", "policy")


def test_macro_is_not_bearish_on_a_steep_curve_and_easy_policy() -> None:
    """A steep curve with policy below inflation and falling unemployment is not read as bearish."""
    features = fx.calm_features(
        curve_slope=1.9, fed_funds=0.25, cpi_yoy=1.8, unemployment_change_3m=-0.3
    )
    out = BRAIN.think("macro", fx.context(features))
    assert out.stance == "bullish"


def test_flow_is_bearish_when_mega_caps_lie_to_the_index_and_momentum_is_weak() -> None:
    """'mega_down_index_flat' with falling 5/20-session momentum makes flow bearish."""
    out = BRAIN.think("flow", fx.context(fx.calm_features(**fx.hollow_breadth())))
    assert out.stance == "bearish"
    assert out.call is not None
    assert out.call.direction == "down"
    assert "the mega-caps are lying to the index" in out.argument
    assert "-3.2%" in out.argument


def test_flow_is_bullish_on_a_broad_rally_with_momentum() -> None:
    """A broad rally with positive momentum and small caps keeping up reads bullish."""
    features = fx.calm_features(
        returns={
            "SPY": SymbolReturns(r1=1.4, r5=2.5, r20=4.0),
            "QQQ": SymbolReturns(r1=1.6, r5=3.8, r20=5.0),
            "IWM": SymbolReturns(r1=1.5, r5=3.0, r20=4.2),
        },
        breadth=Breadth(
            broad_r1=1.4, small_r1=1.5, mega_up=6, mega_down=1, mega_count=7, label="broad_rally"
        ),
    )
    assert BRAIN.think("flow", fx.context(features)).stance == "bullish"


def test_contrarian_is_bullish_on_a_stretched_selloff_with_a_vix_spike() -> None:
    """A -6.8% week against 18% realized vol with VIX at 40 is a panic the contrarian fades."""
    out = BRAIN.think("contrarian", fx.context(fx.calm_features(**fx.panic())))
    assert out.stance == "bullish"
    assert out.call is not None
    assert out.call.direction == "up"
    assert "40.74" in out.argument
    assert out.call.probability <= 0.65


def test_contrarian_is_bearish_on_a_stretched_rally_with_low_vix() -> None:
    """A stretched rally with VIX near 11 reads as complacency to fade."""
    features = fx.calm_features(
        returns={"SPY": SymbolReturns(r1=0.8, r5=3.4, r20=5.0)},
        vix=11.2,
        vix_change_5d=-2.0,
        realized_vol_20d=9.0,
    )
    out = BRAIN.think("contrarian", fx.context(features))
    assert out.stance == "bearish"
    assert "11.2" in out.argument


def test_minds_disagree_on_a_mixed_context() -> None:
    """Hawkish macro during a stretched panic: macro and flow bearish, contrarian bullish."""
    features = fx.calm_features(**{**fx.hawkish_macro(), **fx.panic()})
    ctx = fx.context(features)
    stances = {m: BRAIN.think(m, ctx).stance for m in ("macro", "flow", "contrarian")}
    assert stances == {"macro": "bearish", "flow": "bearish", "contrarian": "bullish"}


def test_calm_context_gives_modest_or_neutral_views() -> None:
    """On an unremarkable session no mind claims more than 65/35."""
    ctx = fx.context()
    for name in MINDS:
        out = BRAIN.think(name, ctx)
        assert out.status == "ok"
        if out.call is not None:
            assert out.call.probability <= 0.65


def test_unknown_inputs_lower_confidence_and_are_named() -> None:
    """The same hawkish numbers with CPI and unemployment unknown give lower confidence, said so."""
    full = BRAIN.think("macro", fx.context(fx.calm_features(**fx.hawkish_macro())))
    partial_features = fx.calm_features(
        **{**fx.hawkish_macro(), "cpi_yoy": None}, unknown=("unemployment_change_3m",)
    )
    partial = BRAIN.think("macro", fx.context(partial_features))
    assert partial.confidence < full.confidence
    assert "CPI inflation" in partial.argument
    assert "unemployment trend" in partial.argument


def test_a_flagged_series_is_treated_as_unknown() -> None:
    """A snapshot flag on the VIX makes the contrarian ignore the VIX value and say so."""
    flags = (DataFlag(code="stale_feed", subject="^VIX", detail="last print 3 days old"),)
    ctx = fx.context(fx.calm_features(**fx.panic()), flags=flags)
    out = BRAIN.think("contrarian", ctx)
    clean = BRAIN.think("contrarian", fx.context(fx.calm_features(**fx.panic())))
    assert "40.74" not in out.argument
    assert "VIX" in out.argument
    assert out.confidence < clean.confidence


def test_a_mind_with_nothing_known_abstains_with_a_reason() -> None:
    """With no rates, inflation or labor data the macro mind abstains and says why."""
    blind = dict.fromkeys(
        (*fx.hawkish_macro(), "oil_r20", "fed_funds_change_6m", "curve_slope_change_20d")
    )
    out = BRAIN.think("macro", fx.context(fx.calm_features(**blind)))
    assert out.status == "abstained"
    assert out.reason == "no rates, inflation or labor data known at as_of"
    assert out.call is None


def test_contrarian_abstains_without_index_or_vix() -> None:
    """No broad index returns and no VIX leaves the contrarian nothing to fade."""
    features = fx.calm_features(broad=None, returns={}, vix=None, vix_change_5d=None)
    out = BRAIN.think("contrarian", fx.context(features))
    assert out.status == "abstained"
    assert out.reason is not None
    assert "VIX" in out.reason


def test_unknown_mind_is_absent_with_a_reason() -> None:
    """Asking for a mind nobody registered returns an absent output, not an error."""
    out = BRAIN.think("astrology", fx.context())
    assert out.status == "absent"
    assert out.reason is not None
    assert "astrology" in out.reason


def test_adding_a_mind_is_one_function_and_one_registration() -> None:
    """A registry entry is all a new mind needs."""

    def read_always_up(_: CycleContext) -> Reading:
        reading = Reading(checked=1)
        reading.add(0.05, "Test evidence pointing up.")
        return reading

    brain = OfflineBrain({**MINDS, "optimist": MindSpec(read_always_up, ("mood",), "blind")})
    out = brain.think("optimist", fx.context())
    assert out.stance == "bullish"
    assert out.topics == ("mood",)


@pytest.mark.parametrize("name", sorted(MINDS))
def test_minds_are_deterministic(name: str) -> None:
    """The same context gives the same output byte for byte."""
    features = fx.calm_features(**{**fx.hawkish_macro(), **fx.hollow_breadth()})
    first = OfflineBrain().think(name, fx.context(features))
    second = OfflineBrain().think(name, fx.context(features))
    assert first.model_dump_json() == second.model_dump_json()


@pytest.mark.parametrize("name", sorted(MINDS))
def test_arguments_are_short_and_free_of_first_person_plural(name: str) -> None:
    """Arguments run 2-5 sentences and never speak as 'we'."""
    features = fx.calm_features(**{**fx.hawkish_macro(), **fx.panic()})
    out: MindOutput = BRAIN.think(name, fx.context(features))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", out.argument) if s]
    assert 2 <= len(sentences) <= 5
    assert not re.search(r"\b(we|us|our)\b", out.argument, re.IGNORECASE)


def test_macro_reads_a_fast_steepening_as_stress_not_expansion() -> None:
    """A curve 0.76 pts steeper in 20 sessions (autumn 2008) is not read as bullish steepness."""
    steep = fx.calm_features(curve_slope=2.27, curve_slope_change_20d=0.05)
    fast = fx.calm_features(curve_slope=2.27, curve_slope_change_20d=0.76)
    calm_out = BRAIN.think("macro", fx.context(steep))
    fast_out = BRAIN.think("macro", fx.context(fast))
    assert "expansion-shaped" in calm_out.argument
    assert "emergency cuts" in fast_out.argument
    assert fast_out.stance != "bullish"
