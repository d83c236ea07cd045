"""deliberate: record weights with shrinkage, the debate label, the call or the abstention."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from services.synth.deliberate import deliberate, raw_weight
from shared.calendar import session_close
from shared.contracts import DataFlag, Deliberation, MindOutput, Regime, ScoreLine, TrackRecord

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]


def _weights(d: Deliberation) -> dict[str, float]:
    return {s.mind: s.weight for s in d.minds}


def test_aligned_bearish_when_every_present_view_is_bearish() -> None:
    """Two bearish minds and a neutral one make an aligned_bearish debate."""
    outs = [
        fx.mind("macro", "bearish", 0.6, probability=0.59),
        fx.mind("flow", "bearish", 0.4, probability=0.56),
        fx.mind("contrarian"),
    ]
    d = deliberate(fx.context(), outs)
    assert d.debate == "aligned_bearish"


def test_aligned_bullish_when_every_present_view_is_bullish() -> None:
    """Two bullish minds make an aligned_bullish debate."""
    outs = [fx.mind("macro", "bullish", 0.5), fx.mind("flow", "bullish", 0.5)]
    assert deliberate(fx.context(), outs).debate == "aligned_bullish"


def test_divergent_when_bulls_and_bears_are_both_present() -> None:
    """A bullish and a bearish mind make a divergent debate."""
    outs = [fx.mind("macro", "bearish", 0.5), fx.mind("contrarian", "bullish", 0.5)]
    assert deliberate(fx.context(), outs).debate == "divergent"


def test_unknown_with_a_single_present_mind_or_all_neutral() -> None:
    """One present mind, or only neutral minds, give an unknown debate."""
    single = [fx.mind("macro", "bearish", 0.8), MindOutput.absent("flow", "timed out")]
    assert deliberate(fx.context(), single).debate == "unknown"
    neutral = [fx.mind("macro"), fx.mind("flow")]
    assert deliberate(fx.context(), neutral).debate == "unknown"


def _skilled(
    source: str, skill: float, n: int, regime: Regime | Literal["all"] = "all"
) -> ScoreLine:
    """A line of n settled calls with a given Brier skill over the base rate."""
    hits = n // 2
    return ScoreLine(
        source=source, regime=regime, calls=n, hits=hits, misses=n - hits,
        hit_rate=hits / n, brier=0.25 * (1 - skill), base_rate_brier=0.25, brier_skill=skill,
    )  # fmt: skip


def test_a_skilled_regime_record_outweighs_a_losing_one() -> None:
    """600 calls beating the base rate in the regime outweigh 600 losing, and lead the pool."""
    record = TrackRecord(
        lines=(_skilled("macro", 0.02, 600, "chop"), _skilled("contrarian", -0.02, 600, "chop"))
    )
    outs = [
        fx.mind("macro", "bearish", 0.6, probability=0.59),
        fx.mind("contrarian", "bullish", 0.6, probability=0.59),
    ]
    d = deliberate(fx.context(record=record), outs)
    w = _weights(d)
    assert w["macro"] > w["contrarian"]
    assert d.probability_up is not None
    assert d.probability_up < 0.5


def test_the_regime_line_is_preferred_over_the_overall_line() -> None:
    """A mind skilled overall but losing in this regime is weighted by its regime record."""
    record = TrackRecord(
        lines=(_skilled("macro", 0.02, 900), _skilled("macro", -0.01, 400, "chop"))
    )
    assert raw_weight(record, "macro", "chop") < 1.0
    assert raw_weight(record, "macro", "risk_on") > 1.0


def test_thin_evidence_is_shrunk_toward_equal_weight() -> None:
    """Ten lucky calls barely move a mind off equal weight; a thousand move it a lot; a mind that
    clearly loses to the base rate gets no weight at all, never a negative one."""
    thin = TrackRecord(lines=(_skilled("macro", 0.05, 10, "chop"),))
    thick = TrackRecord(lines=(_skilled("macro", 0.05, 1000, "chop"),))
    losing = TrackRecord(lines=(_skilled("macro", -0.1, 1000, "chop"),))
    assert raw_weight(TrackRecord(), "macro", "chop") == 1.0
    assert raw_weight(thin, "macro", "chop") == pytest.approx(1 + 40 * 0.05 * 10 / 260)
    assert raw_weight(thick, "macro", "chop") == pytest.approx(1 + 40 * 0.05 * 1000 / 1250)
    assert raw_weight(losing, "macro", "chop") == 0.0


def test_every_mind_losing_to_the_base_rate_pools_to_a_coin() -> None:
    """When every present mind has zero weight the pool is 0.5, not an error or a division."""
    record = TrackRecord(
        lines=(_skilled("macro", -0.1, 1000, "chop"), _skilled("flow", -0.1, 1000, "chop"))
    )
    outs = [fx.mind("macro", "bearish", 0.9), fx.mind("flow", "bearish", 0.9)]
    d = deliberate(fx.context(record=record), outs)
    assert d.raw_probability_up == 0.5
    assert d.prediction is None


def test_absent_and_abstained_minds_weigh_nothing() -> None:
    """Minds that did not take part get weight zero; the present ones share the whole weight."""
    outs = [
        fx.mind("macro", "bearish", 0.6),
        MindOutput.absent("flow", "no reply"),
        MindOutput(mind="contrarian", status="abstained", reason="no VIX known at as_of"),
    ]
    w = _weights(deliberate(fx.context(), outs))
    assert w == {"macro": 1.0, "flow": 0.0, "contrarian": 0.0}


def test_prediction_fields() -> None:
    """A clear bearish pool gives a down call on the index with price, horizon and falsifier."""
    outs = [
        fx.mind("macro", "bearish", 0.8, probability=0.62),
        fx.mind("flow", "bearish", 0.6, probability=0.59),
        fx.mind("contrarian", "neutral", 0.0),
    ]
    d = deliberate(fx.context(), outs, horizon_hours=48)
    p = d.prediction
    assert p is not None
    assert d.abstention is None
    assert p.source == "synthesis"
    assert p.target == "SPY"
    assert p.direction == "down"
    assert p.horizon_hours == 48
    assert p.reference_price == 2051.30
    assert p.made_at == fx.AS_OF
    # Measured from the close the reference price was struck at, not from the cycle's time.
    session = fx.context().features.session
    assert p.matures_at == session_close(session) + timedelta(hours=48)
    assert p.confidence == pytest.approx(1 - d.probability_up)  # type: ignore[operator]
    assert p.regime == "chop"
    assert p.topic == "index"
    assert p.asset_class == "equity_index"
    assert (
        p.falsifier == "SPY's first close at or after 2016-01-08 21:00 UTC is at or above 2051.30"
    )
    assert p.band_pct is not None
    assert 0 < p.band_pct[0] < p.band_pct[1] < 3


def test_abstains_when_the_edge_is_too_small_and_says_the_edge() -> None:
    """A pool within min_edge of a coin abstains and quotes the edge it had."""
    outs = [fx.mind("macro", "bearish", 0.1), fx.mind("flow", "bullish", 0.05)]
    d = deliberate(fx.context(), outs)
    assert d.prediction is None
    assert d.abstention is not None
    assert "edge is 0.004" in d.abstention
    assert "0.030" in d.abstention


def test_abstains_when_no_mind_is_present() -> None:
    """With every mind absent or abstained, the desk abstains and names who and why."""
    outs = [
        MindOutput.absent("macro", "no reply"),
        MindOutput(mind="flow", status="abstained", reason="no momentum known at as_of"),
    ]
    d = deliberate(fx.context(), outs)
    assert d.prediction is None
    assert d.probability_up is None
    assert d.conviction == 0.0
    assert d.abstention is not None
    assert "no mind showed up" in d.abstention
    assert "no momentum known" in d.abstention


def test_abstains_when_the_broad_index_has_no_price() -> None:
    """A strong pool still abstains when the target has no last close to judge against."""
    features = fx.calm_features(last_close={})
    outs = [fx.mind("macro", "bearish", 0.9), fx.mind("flow", "bearish", 0.9)]
    d = deliberate(fx.context(features), outs)
    assert d.prediction is None
    assert d.abstention == "the broad index SPY has no price at as_of"


def test_missing_lists_flags_unknown_features_and_absent_minds() -> None:
    """missing names, in words, the absent minds, then the flagged feeds and unknown features."""
    flags = (DataFlag(code="feed_error", subject="FRED", detail="HTTP 503"),)
    features = fx.calm_features(unknown=("cpi_yoy",), cpi_yoy=None)
    outs = [fx.mind("macro", "bearish", 0.5), MindOutput.absent("flow", "no reply")]
    d = deliberate(fx.context(features, flags=flags), outs)
    assert d.missing == (
        "flow mind absent: no reply",
        "FRED: feed error (HTTP 503)",
        "cpi_yoy not computable",
    )


def test_conviction_rises_with_edge_and_agreement() -> None:
    """Agreeing confident minds give more conviction than a split of the same strength."""
    agree = [fx.mind("macro", "bearish", 0.8), fx.mind("flow", "bearish", 0.8)]
    split = [
        fx.mind("macro", "bearish", 0.8),
        fx.mind("flow", "bearish", 0.8),
        fx.mind("contrarian", "bullish", 0.4),
    ]
    assert deliberate(fx.context(), agree).conviction > deliberate(fx.context(), split).conviction
    assert 0.0 <= deliberate(fx.context(), split).conviction <= 1.0


def test_summaries_keep_every_configured_mind_in_order() -> None:
    """Every output, absent ones included, has a MindSummary in the order given."""
    outs = [
        fx.mind("macro", "bearish", 0.5),
        MindOutput.absent("flow", "no reply"),
        fx.mind("contrarian", "bullish", 0.2),
    ]
    d = deliberate(fx.context(), outs)
    assert [(s.mind, s.status) for s in d.minds] == [
        ("macro", "ok"),
        ("flow", "absent"),
        ("contrarian", "ok"),
    ]
    assert d.minds[1].reason == "no reply"


def test_deliberate_is_deterministic() -> None:
    """The same inputs give the same Deliberation byte for byte."""
    outs = [fx.mind("macro", "bearish", 0.7, probability=0.6), fx.mind("flow", "bullish", 0.3)]
    first = deliberate(fx.context(), outs)
    assert first.model_dump_json() == deliberate(fx.context(), outs).model_dump_json()
