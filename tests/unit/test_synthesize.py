"""synthesize with the offline brain: the Dispatch contract and the words of its body."""

from __future__ import annotations

import re

from services.synth.synthesize import synthesize
from shared.brain import OfflineBrain
from shared.contracts import CycleContext, DataFlag, Dispatch, MindOutput, TrackRecord

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]

BRAIN = OfflineBrain()
MINDS = ("macro", "flow", "contrarian")


def _run(ctx: CycleContext, minds: tuple[str, ...] = MINDS) -> Dispatch:
    outputs = [BRAIN.think(m, ctx) for m in minds]
    return synthesize(ctx, outputs, BRAIN, expected_minds=MINDS)


def _hollow_context(**kw: object) -> CycleContext:
    features = fx.calm_features(**{**fx.hawkish_macro(), **fx.hollow_breadth()})
    return fx.context(features, **kw)  # type: ignore[arg-type]


def test_dispatch_carries_the_cycle_identity_and_decision() -> None:
    """cycle_key and as_of come from the snapshot, cycle_number from the context."""
    ctx = _hollow_context()
    dispatch = _run(ctx)
    assert dispatch.cycle_key == "2016-01-06"
    assert dispatch.as_of == fx.AS_OF
    assert dispatch.cycle_number == 412
    assert dispatch.regime == "chop"
    assert [s.mind for s in dispatch.minds] == list(MINDS)
    assert len(dispatch.title) <= 120


def test_a_missing_mind_is_absent_and_the_body_says_so() -> None:
    """A mind that never replied is marked absent with 'no reply', and the body names it."""
    dispatch = _run(_hollow_context(), minds=("macro", "contrarian"))
    flow = next(s for s in dispatch.minds if s.mind == "flow")
    assert flow.status == "absent"
    assert flow.reason == "no reply"
    assert flow.weight == 0.0
    assert "Flow Mind did not show up (no reply)" in dispatch.body_md
    assert "flow mind absent: no reply" in dispatch.missing
    assert "Flow: absent" in dispatch.body_md


def test_body_argues_with_the_minds_and_the_footer_lists_them() -> None:
    """The body sides with a named mind at its confidence; the footer lists every mind."""
    dispatch = _run(_hollow_context())
    macro = next(s for s in dispatch.minds if s.mind == "macro")
    assert f"I side with Macro Mind, bearish at {macro.confidence:.0%} confidence" in (
        dispatch.body_md
    )
    assert "Flow Mind agrees" in dispatch.body_md
    for s in dispatch.minds:
        assert f"{s.mind.title()}: {s.confidence:.0%}" in dispatch.body_md


def test_body_ends_with_the_structured_call_then_the_footer() -> None:
    """With a call, the body closes on the Prediction line, tags and falsifier, then the footer."""
    dispatch = _run(_hollow_context())
    p = dispatch.prediction
    assert p is not None
    body = dispatch.body_md
    assert (
        f"**Prediction:** the S&P 500 (SPY) closes below {p.reference_price:,.2f} within 24 hours"
        in body
    )
    tags = f"[DIRECTION: down] [TIMEFRAME: 24h] [CONFIDENCE: {p.confidence:.2f}]"
    assert tags in body
    assert f"Falsifier: {p.falsifier}." in body
    tail = body.rstrip().split("\n")
    footer = tail[-1]
    assert re.fullmatch(
        r"\*Debate: \w+ \| Conviction: \d+% \| Macro: \d+% \| Flow: \d+% \| Contrarian: \d+%\*",
        footer,
    )
    assert body.index(tags) > body.index("Flow Mind")
    assert body.index(tags) < body.index(footer)


def test_body_ends_with_the_abstention_when_no_call() -> None:
    """With too little edge, the body closes on 'No call this cycle' and the reason, not a call."""
    dispatch = _run(fx.context())
    assert dispatch.prediction is None
    assert dispatch.abstention is not None
    body = dispatch.body_md
    assert "**No call this cycle.**" in body
    assert "[DIRECTION:" not in body
    last_section = body.rstrip().split("\n\n---\n\n")[0].split("\n\n")[-1]
    assert last_section.startswith("**No call this cycle.**")
    assert "an edge of" in body


def test_body_mentions_what_was_missing() -> None:
    """Flagged feeds and unknown features appear in the body's 'couldn't see' paragraph."""
    flags = (DataFlag(code="feed_error", subject="^VIX", detail="HTTP 503"),)
    features = fx.calm_features(**fx.panic(), unknown=("curve_slope",), curve_slope=None)
    dispatch = _run(fx.context(features, flags=flags))
    assert "What I could not see:" in dispatch.body_md
    assert "VIX unavailable (its feed failed)" in dispatch.body_md
    assert "no Treasury curve" in dispatch.body_md
    assert "curve_slope" not in dispatch.body_md


def test_body_cites_the_regime_record_or_says_there_is_none() -> None:
    """The desk quotes its record in the regime when it has enough calls, else says none yet."""
    bare = _run(_hollow_context())
    assert "no settled record yet" in bare.body_md
    record = TrackRecord(
        lines=(
            fx.line("synthesis", 7, 5, regime="chop"),
            fx.line("synthesis", 40, 35),
            fx.line("flow", 9, 5, regime="chop"),
        )
    )
    cited = _run(_hollow_context(record=record))
    assert "My own record: 58% over 12 settled calls in choppy tapes." in cited.body_md
    thin = _run(_hollow_context(record=TrackRecord(lines=(fx.line("synthesis", 4, 3),))))
    assert "My own record: 4 of 7 overall, too few to lean on." in thin.body_md


def test_title_is_drawn_from_the_dominant_fact() -> None:
    """The mega-cap divergence leads the title; a VIX spike leads it on a panic day."""
    assert "Lying to the Index" in _run(_hollow_context()).title
    assert "VIX Jumps 22 Points" in _run(fx.context(fx.calm_features(**fx.panic()))).title


def test_phrasing_varies_with_the_facts() -> None:
    """Different tapes give different titles and openings, not one template with new numbers."""
    contexts = [
        _hollow_context(),
        fx.context(fx.calm_features(**fx.panic())),
        fx.context(fx.calm_features(**fx.hawkish_macro())),
        fx.context(),
    ]
    dispatches = [_run(c) for c in contexts]
    assert len({d.title for d in dispatches}) == len(dispatches)
    openings = {d.body_md.split("\n\n")[1][:40] for d in dispatches}
    assert len(openings) == len(dispatches)


def test_synthesize_is_deterministic() -> None:
    """The same context and outputs give the same Dispatch byte for byte."""
    assert _run(_hollow_context()).model_dump_json() == _run(_hollow_context()).model_dump_json()


def test_an_unexpected_extra_mind_is_kept() -> None:
    """An output from a mind outside expected_minds still takes part, after the expected ones."""
    ctx = _hollow_context()
    outputs = [*(BRAIN.think(m, ctx) for m in MINDS), MindOutput.absent("quant", "not deployed")]
    dispatch = synthesize(ctx, outputs, BRAIN, expected_minds=MINDS)
    assert [s.mind for s in dispatch.minds] == [*MINDS, "quant"]


def test_a_live_desk_without_a_warm_start_says_why_in_the_dispatch() -> None:
    """A live cycle whose history could not be fetched (no menu) carries the reason as what its
    record rests on, in the dispatch's field and in its body."""
    ctx = _hollow_context()
    outputs = [BRAIN.think(m, ctx) for m in MINDS]
    why = "no warm start: Yahoo's daily history could not be fetched (prices error: HTTP 503)"
    dispatch = synthesize(ctx, outputs, BRAIN, expected_minds=MINDS, warm_note=why)
    assert dispatch.record_basis == why
    assert "No warm start: Yahoo's daily history could not be fetched" in dispatch.body_md
    assert _run(ctx).record_basis is None
