"""The offline writer on real slices of replay-dev: names not labels, variety over 75 sessions,
big days never called quiet, title/body/call in agreement, the same text on a replay."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import get_args

import pytest

from services.synth.synthesize import synthesize
from shared.brain.offline import OfflineBrain
from shared.brain.prompting import contradiction
from shared.brain.prose import TITLE_MAX, day_move, speak_call, write_dispatch
from shared.contracts import (
    Breadth,
    CycleContext,
    Debate,
    Deliberation,
    DispatchDraft,
    Features,
    Prediction,
    Regime,
    SymbolReturns,
)
from shared.market.replay import ReplayMarket, load_replay, sample_data_dir
from shared.names import BREADTH, INSTRUMENTS, instrument
from workshop.backtest.engine import run_backtest

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]

WINDOW = 75
# The README demo's range (Jun-Sep 2015, the August flash crash); a calm low-volatility stretch
# whose small moves cluster (the hardest case for title variety); a year with no VIX at all and
# an inverted curve (2006); the autumn of 2008.
SLICES = {
    "demo": (date(2015, 6, 1), date(2015, 9, 15)),
    "calm": (date(2004, 9, 1), date(2004, 12, 16)),
    "inverted": (date(2006, 7, 3), date(2006, 10, 17)),
    "crash": (date(2008, 9, 2), date(2008, 12, 16)),
}
MINDS = ("macro", "flow", "contrarian")


@dataclass(frozen=True)
class Written:
    day: date
    features: Features
    deliberation: Deliberation
    title: str
    body: str
    context: CycleContext

    @property
    def prose(self) -> str:
        """Title and body up to the call block (which keeps the target's symbol) and footer."""
        body = self.body.split("\n\n---\n\n")[0].split("**Prediction:**")[0]
        return f"{self.title}\n\n{body}"

    @property
    def opening(self) -> str:
        """The first sentence after the cycle line."""
        lede = self.body.split("\n\n")[1]
        return re.split(r"(?<=[.!?])\s+", lede)[0]


class RecordingBrain(OfflineBrain):
    """The offline brain, keeping what it wrote with what it was written from."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[Written] = []

    def write(self, deliberation: Deliberation, context: CycleContext) -> DispatchDraft:
        draft = super().write(deliberation, context)
        self.written.append(
            Written(
                context.features.session,
                context.features,
                deliberation,
                draft.title,
                draft.body_md,
                context,
            )
        )
        return draft


@cache
def _market() -> ReplayMarket:
    return ReplayMarket(load_replay(sample_data_dir()))


@cache
def written(name: str) -> tuple[Written, ...]:
    start, end = SLICES[name]
    brain = RecordingBrain()
    run_backtest(None, start, end, brain=brain, market=_market(), write_every=True)
    return tuple(brain.written)


def forbidden_tokens(seen: tuple[Written, ...]) -> list[str]:
    """Internal names drawn from the code itself: labels, feature names, symbols."""
    labels = [*get_args(Regime), *get_args(Debate), *BREADTH]
    fields = [*Features.model_fields, *Breadth.model_fields, "as_of", "p(up)", "10y-2y"]
    symbols = {*INSTRUMENTS, *(s for w in seen for s in w.features.returns)}
    tickers = [s for s in symbols if instrument(s) != s]
    # A label or field that is a plain English word ("unknown", "crisis", "unemployment") can
    # be written as English; a snake_case one never can, nor "chop" standing alone.
    internal = [t for t in (*labels, *fields) if "_" in t or "(" in t or "-" in t]
    return sorted({*internal, *tickers, "chop"})


def _leaks(tokens: list[str], text: str) -> list[str]:
    alternatives = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    return re.findall(rf"(?<![\w^])(?:{alternatives})(?![\w])", text)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_no_internal_label_or_raw_ticker_in_title_or_prose(name: str) -> None:
    """No regime, breadth or debate label, feature name or raw symbol reaches a reader's prose."""
    tokens = forbidden_tokens(written(name))
    assert {"risk_off", "mega_down_index_flat", "aligned_bearish", "^GSPC", "MSFT"} <= set(tokens)
    leaks = [(w.day, token) for w in written(name) for token in _leaks(tokens, w.prose)]
    assert leaks == []


@pytest.mark.parametrize("name", sorted(SLICES))
def test_titles_and_openings_vary_over_75_sessions(name: str) -> None:
    """In any 75 consecutive dispatches no title repeats over 3 times, no opening over 5."""
    items = written(name)
    assert len(items) >= WINDOW
    for i in range(len(items) - WINDOW + 1):
        window = items[i : i + WINDOW]
        title, n_title = Counter(w.title for w in window).most_common(1)[0]
        opening, n_open = Counter(w.opening for w in window).most_common(1)[0]
        assert n_title <= 3, (window[0].day, title)
        assert n_open <= 5, (window[0].day, opening)


QUIET_WORDS = re.compile(
    r"\b(quiet|barely|holds|noise|not much happened|nothing happened|flat day|calm)\b", re.I
)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_a_big_day_is_never_called_quiet(name: str) -> None:
    """A session of 1% or more, or 1.5 trailing sd, never gets quiet words in title or lede."""
    big = [
        w
        for w in written(name)
        if (m := day_move(w.features)).pct is not None
        and (abs(m.pct) >= 1.0 or abs(m.sigma or 0.0) >= 1.5)
    ]
    assert big, "the slice has big days to judge"
    for w in big:
        lede = w.body.split("\n\n")[1]
        assert not QUIET_WORDS.search(w.title), (w.day, w.title)
        assert not QUIET_WORDS.search(lede), (w.day, lede)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_title_body_and_call_agree(name: str) -> None:
    """A call is in the title, the body and the call block; an abstention in none of them."""
    for w in written(name):
        d = w.deliberation
        if d.prediction is None:
            assert "Calling" not in w.title, (w.day, w.title)
            assert "I Call" not in w.title, (w.day, w.title)
            assert "[DIRECTION:" not in w.body
            assert "**No call this cycle.**" in w.body
            assert "I am calling" not in w.prose
        else:
            assert "Calling" in w.title or "I Call" in w.title, (w.day, w.title)
            if d.prediction.target == d.target and d.prediction.direction in ("up", "down"):
                other = "Lower" if d.prediction.direction == "up" else "Higher"
                assert other not in w.title, (w.day, w.title)
            assert f"[DIRECTION: {d.prediction.direction}]" in w.body
            assert instrument(d.prediction.target).lower() in w.title.lower(), (w.day, w.title)
        assert "…" not in w.title, (w.day, w.title)
        assert len(w.title) <= TITLE_MAX, (w.day, w.title)
        lean = re.search(r"I Lean (Higher|Lower)", w.title)
        if lean and d.probability_up is not None:
            body_lean = "higher" if lean.group(1) == "Higher" else "lower"
            assert f"lean is {'lower' if body_lean == 'higher' else 'higher'}" not in w.body


def _as_kind(p: Prediction, kind: str, side: str, target: str, reference: float) -> Prediction:
    """The same call moment recast as another kind of call, as the menu could have chosen it."""
    return p.model_copy(
        update={
            "target": target,
            "kind": kind,
            "direction": side,
            "reference_price": reference,
            "threshold": round(reference * (1.02 if side == "up" else 0.98), 2)
            if kind == "threshold"
            else None,
            "range_pct": 1.5 if kind == "range" else None,
        }
    )


@pytest.mark.parametrize(
    ("day", "kind", "side", "target", "words"),
    [
        # The day whose long split title was cut to "...: I…" with a range call.
        ("2015-07-15", "range", "inside", "MSFT", ("Microsoft Within ±1.5% of",)),
        ("2015-07-15", "range", "outside", "^IXIC", ("the Nasdaq Outside ±1.5% of",)),
        ("2015-07-15", "threshold", "up", "^VIX", ("VIX Above",)),
        ("2015-07-15", "threshold", "down", "^GSPC", ("the S&P 500 Below",)),
        ("2015-07-15", "direction", "up", "^IXIC", ("the Nasdaq Above",)),
        ("2015-07-15", "direction", "down", "^GSPC", ()),
        ("2015-07-15", "direction", "up", "^GSPC", ()),
        ("2015-08-26", "direction", "down", "^GSPC", ()),
        # A 3.9% surge: a range call is not "calling down anyway".
        ("2015-08-26", "range", "inside", "^VIX", ("VIX Within ±1.5% of",)),
        ("2015-08-26", "threshold", "down", "^VIX", ("VIX Below",)),
    ],
)
def test_every_kind_of_call_gets_a_whole_title_that_names_it(
    day: str, kind: str, side: str, target: str, words: tuple[str, ...]
) -> None:
    """A direction, threshold or range call (or an abstention) on a real cycle gets a whole title
    within TITLE_MAX that names the call, and a body that never words it as another kind."""
    w = next(x for x in written("demo") if x.day == date.fromisoformat(day))
    assert w.deliberation.prediction is not None
    reference = w.context.features.last_close[target]
    call = _as_kind(w.deliberation.prediction, kind, side, target, reference)
    d = w.deliberation.model_copy(update={"prediction": call, "target": "^GSPC"})
    title, body = write_dispatch(d, w.context)
    assert len(title) <= TITLE_MAX, title
    assert "…" not in title, title
    assert "Calling" in title or "I Call" in title, title
    for word in words:
        assert word in title, title
    if kind != "direction" or target != "^GSPC":
        assert "I am calling" not in body
        assert "Higher" not in title, title
        assert "Lower" not in title, title
    else:
        other = ("Lower", "Below") if side == "up" else ("Higher", "Above")
        assert not any(x in title for x in other), title
    assert f"[DIRECTION: {side}]" in body
    assert speak_call(call).removeprefix(instrument(target)) in body
    none, none_body = write_dispatch(d.model_copy(update={"prediction": None}), w.context)
    assert len(none) <= TITLE_MAX, none
    assert "…" not in none, none
    assert "I Call" not in none, none
    assert "Calling" not in none, none
    assert "**No call this cycle.**" in none_body


def test_a_direction_call_against_a_run_says_so() -> None:
    """On 2015-08-24, after VIX more than doubled in five sessions, a call of VIX lower says it
    goes against the run and by how many standard deviations; a call of VIX higher does not."""
    w = next(x for x in written("demo") if x.day == date(2015, 8, 24))
    assert w.deliberation.prediction is not None
    run = w.context.features.returns["^VIX"]
    assert run.r5 is not None
    assert run.stretch() > 1.0
    reference = w.context.features.last_close["^VIX"]
    bodies = {}
    for side in ("down", "up"):
        call = _as_kind(w.deliberation.prediction, "direction", side, "^VIX", reference)
        d = w.deliberation.model_copy(update={"prediction": call, "target": "^GSPC"})
        bodies[side] = write_dispatch(d, w.context)[1]
    assert (
        f"against its run: it rose {run.r5:.1f}% in five sessions, {run.stretch():.1f} standard"
        in bodies["down"]
    )
    assert "against its run" not in bodies["up"]


@pytest.mark.parametrize("name", sorted(SLICES))
def test_the_claude_writers_check_finds_no_contradiction(name: str) -> None:
    """Every body passes the check the Claude writer applies to its drafts (it falls back here)."""
    problems = [(w.day, contradiction(w.body, w.deliberation)) for w in written(name)]
    assert [p for p in problems if p[1] is not None] == []


@pytest.mark.parametrize("name", sorted(SLICES))
def test_every_dispatch_is_250_to_600_words(name: str) -> None:
    """Long enough to argue, short enough to read: 250-600 words each."""
    counts = {w.day: len(w.body.split()) for w in written(name)}
    outside = {day: n for day, n in counts.items() if not 250 <= n <= 600}
    assert outside == {}


def test_missing_data_is_said_once_in_words() -> None:
    """A cycle without headlines says so once, in words, never as an internal id."""
    quiet_wire = [w for w in written("demo") if w.features.news is None]
    assert quiet_wire, "the demo has sessions without headlines"
    for w in written("demo"):
        assert w.body.count("no news this cycle") == (1 if w.features.news is None else 0)
        assert "news.csv" not in w.body
        assert "replay.news" not in w.body
        assert "not computable" not in w.body


def test_a_replay_gives_the_same_text() -> None:
    """Running the same sessions again writes the same titles and bodies byte for byte."""
    start, end = date(2015, 8, 17), date(2015, 9, 4)
    first, second = RecordingBrain(), RecordingBrain()
    run_backtest(None, start, end, brain=first, market=_market(), write_every=True)
    run_backtest(None, start, end, brain=second, market=_market(), write_every=True)
    assert [(w.title, w.body) for w in first.written] == [(w.title, w.body) for w in second.written]
    assert len({w.title for w in first.written}) > 1


def test_what_changed_leads_when_it_is_the_news() -> None:
    """Over the demo, a mind changing sides or a story turning opens some dispatches."""
    ledes = [w.body.split("\n\n")[1] for w in written("demo")]
    assert any(x.startswith(("A new story opened", "The story of")) for x in ledes)
    assert any("changed sides since my last dispatch" in w.body for w in written("demo"))


def _synth(features: Features, previous: object = None) -> tuple[str, str]:
    ctx = fx.context(features)
    brain = OfflineBrain()
    outputs = [brain.think(m, ctx) for m in MINDS]
    dispatch = synthesize(ctx, outputs, brain, expected_minds=MINDS, previous=previous)  # type: ignore[arg-type]
    return dispatch.title, dispatch.body_md


def test_the_argument_names_a_side_and_answers_the_objection() -> None:
    """On a split panic tape the desk sides with one mind and answers the other by name."""
    _, body = _synth(fx.calm_features(**fx.panic()))
    assert "I side with Contrarian Mind" in body
    assert "The strongest objection is Flow Mind's" in body


def test_a_call_against_the_tape_says_why_the_tape_misleads() -> None:
    """A down call after a strong week says why the bullish look misleads."""
    returns = {
        "SPY": SymbolReturns(r1=1.8, r5=3.5, r20=4.0),
        "QQQ": SymbolReturns(r1=2.0, r5=4.0, r20=5.0),
        "IWM": SymbolReturns(r1=1.5, r5=3.0, r20=3.5),
    }
    features = fx.calm_features(**{**fx.hawkish_macro(), "returns": returns, "vix": 11.2})
    title, body = _synth(features)
    assert "[DIRECTION: down]" in body
    assert "The tape looks bullish, and I am calling down anyway" in body
    assert "Higher" not in title


def test_speak_call_words_a_threshold_call() -> None:
    """A call with a threshold is worded on its line, with the instrument's name."""
    p = Prediction(
        target="^VIX",
        direction="down",
        horizon_hours=24,
        reference_price=27.1,
        threshold=26.0,
        confidence=0.6,
        falsifier="VIX closes at or above 26",
        made_at=fx.AS_OF,
        matures_at=fx.AS_OF.replace(day=7),
    )
    assert speak_call(p) == "VIX closes below 26.00 within 24 hours"


def test_a_headline_that_moved_a_mind_is_quoted_as_untrusted_and_attributed() -> None:
    """A mind whose argument leads with a headline has it quoted, with source, as untrusted."""
    ctx = fx.context(fx.calm_features(**fx.hawkish_macro()))
    brain = OfflineBrain()
    outputs = [brain.think(m, ctx) for m in MINDS]
    headline = (
        "On policy the wire leans hawkish or fearful (3 headlines on the Fed, rates or "
        "inflation, tone -0.41); the most telling, headline (untrusted text, Reuters, "
        '2016-01-06): "Fed signals faster hikes as inflation sticks".'
    )
    macro = outputs[0].model_copy(
        update={"stance": "bearish", "argument": f"{headline} {outputs[0].argument}"}
    )
    dispatch = synthesize(ctx, [macro, *outputs[1:]], brain, expected_minds=MINDS)
    body = dispatch.body_md
    assert body.count('"Fed signals faster hikes as inflation sticks"') == 1
    assert "headline (untrusted text, Reuters, 2016-01-06)" in body
