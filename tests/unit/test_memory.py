"""Stories followed across cycles, lessons on settled calls, and memory that never reads ahead."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.resolver.forecasts import settle_forecasts
from services.resolver.lessons import record_lessons
from services.resolver.resolve import settle_matured
from services.synth.stories import follow
from services.synth.synthesize import synthesize
from shared import memory
from shared.brain.offline import OfflineBrain
from shared.calendar import maturity, replay_as_of, session_close
from shared.contracts import (
    CycleTrigger,
    Direction,
    Features,
    Fingerprint,
    Lesson,
    Prediction,
    Story,
    SymbolReturns,
)
from shared.db.models import Cycle, ForecastRecord, LessonRecord, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.market.opening import replay_market
from shared.memory import (
    LessonIndex,
    _Cycle,
    _distance,
    _rank,
    _vector,
    fingerprint,
    recall_from,
    write_lesson,
)
from shared.ports import SettlementPrices
from shared.records import lessons_near
from workshop.backtest import run_backtest

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]

START = date(2008, 9, 2)


def _with_r20(n: int, r20: float | None, **extra: Any) -> Features:
    returns = {"SPY": SymbolReturns(r1=0.1, r5=-1.0, r20=r20)}
    return fx.calm_features(session=START + timedelta(days=n), returns=returns, **extra)


def _drawdown(stories: tuple[Story, ...]) -> Story | None:
    return next((s for s in stories if s.key == "drawdown:SPY"), None)


def test_a_story_develops_accelerates_reverses_resolves_and_can_return() -> None:
    """SPY's 20-session move -6, -8, -7.5, -5, -2, then -6 again: developing, accelerating,
    developing, reversing, resolved (said once), and a new story when it comes back."""
    path = [-6.0, -8.0, -7.5, -5.0, -2.0, -1.0, -6.0]
    stories: tuple[Story, ...] = ()
    seen = []
    for n, r20 in enumerate(path):
        stories = follow(stories, _with_r20(n, r20))
        story = _drawdown(stories)
        seen.append(None if story is None else story.status)
        if n == 3:
            assert story is not None
            assert (story.peak, story.sessions, story.started) == (8.0, 4, START)
    assert seen == [
        "developing", "accelerating", "developing", "reversing", "resolved", None, "developing"
    ]  # fmt: skip
    back = _drawdown(stories)
    assert back is not None
    assert back.started == START + timedelta(days=6)


def test_a_story_that_cannot_be_measured_resolves_after_three_cycles() -> None:
    """With the index's moves unknown three cycles running, the story is resolved, not kept."""
    stories = follow((), _with_r20(0, -7.0))
    statuses = []
    for n in range(1, 4):
        stories = follow(stories, _with_r20(n, None))
        story = _drawdown(stories)
        statuses.append(story.status if story else None)
    assert statuses == ["developing", "developing", "resolved"]


def test_the_dispatch_mentions_the_stories_it_follows() -> None:
    """A followed drawdown and VIX fear appear in the dispatch, with status and numbers."""
    previous = follow((), _with_r20(0, -6.0, vix=31.0))
    context = fx.context(_with_r20(1, -9.0, vix=36.0))
    brain = OfflineBrain()
    outputs = [brain.think(m, context) for m in ("macro", "flow", "contrarian")]
    dispatch = synthesize(
        context, outputs, brain, expected_minds=("macro", "flow", "contrarian"), stories=previous
    )
    assert {(s.key, s.status) for s in dispatch.stories} >= {
        ("drawdown:SPY", "accelerating"),
        ("fear:VIX", "accelerating"),
    }
    assert (
        "Stories I'm following: the drawdown in the S&P 500, accelerating after 2 sessions "
        "(the S&P 500 -9.0% over 20" in dispatch.body_md
    )


def _call(source: str, direction: Direction, made: datetime, reference: float) -> Prediction:
    return Prediction(
        source=source, target="SPY", direction=direction,
        horizon_hours=24, reference_price=reference, confidence=0.56, falsifier="-",
        made_at=made, matures_at=made + timedelta(hours=23), regime="chop", base_rate=0.53,
        basis="VIX at 31: fear this high has usually sat near lows.",
    )  # fmt: skip


def test_a_lesson_says_what_the_call_rested_on_what_happened_and_what_would_change_it() -> None:
    """A down call at 2000 settled at 2030 is a miss needing 1.48% more downside."""
    made = datetime(2016, 3, 7, 22, 30, tzinfo=UTC)
    lesson = write_lesson(
        "k", _call("contrarian", "down", made, 2000.0), "miss", 2030.0, made + timedelta(days=1),
        Fingerprint(),
    )  # fmt: skip
    assert lesson.rested_on == "VIX at 31: fear this high has usually sat near lows."
    assert lesson.happened.startswith("SPY rose 1.50% to 2030.00 by 2016-03-08: a miss")
    assert lesson.would_change.startswith("1.48% more downside would have made it a hit")
    assert "against a base rate of 53%" in lesson.would_change
    hit = write_lesson(
        "k", _call("flow", "up", made, 2000.0), "hit", 2030.0, made + timedelta(days=1),
        Fingerprint(),
    )  # fmt: skip
    assert "would have made it a miss" in hit.would_change


def _lesson(key: str, made: datetime, settled: datetime, r5: float) -> Lesson:
    tape = fingerprint(fx.calm_features(returns={"SPY": SymbolReturns(r1=0.1, r5=r5, r20=1.0)}))
    return write_lesson(key, _call("macro", "up", made, 2000.0), "hit", 2010.0, settled, tape)


def test_recall_never_returns_a_lesson_settled_after_as_of() -> None:
    """Of three look-alike lessons, the one settled after as_of (and one made at as_of) are
    never recalled, however close their tapes; the nearest known one comes first."""
    as_of = datetime(2016, 3, 9, 22, 30, tzinfo=UTC)
    index = LessonIndex()
    index.add(_lesson("old-far", as_of - timedelta(days=9), as_of - timedelta(days=8), -1.5))
    index.add(_lesson("old-near", as_of - timedelta(days=5), as_of - timedelta(days=4), 0.4))
    index.add(_lesson("future", as_of - timedelta(days=1), as_of + timedelta(hours=1), 0.4))
    index.add(_lesson("same-cycle", as_of, as_of, 0.4))
    today = fingerprint(fx.calm_features())
    found = index.recall("SPY", "chop", today, as_of)
    assert [m.cycle_key for m in found] == ["old-near", "old-far"]
    assert all(m.settled_at <= as_of and m.made_at < as_of for m in found)
    assert index.recall("SPY", "risk_off", today, as_of) == ()


def test_recall_ranks_by_the_distance_summed_term_by_term(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recall's written-out distance is _distance's own sum, to the last bit, with any of
    either tape's numbers missing: over 400 random past tapes and 60 of today's (some numbers
    None, a few tapes with none at all) the order and distances recalled are the reference's:
    every past cycle scored by _distance, sorted by distance, newest, key."""
    rng = random.Random(7)
    # What recall makes of each distance, kept whole (a Memory rounds it to four places).
    monkeypatch.setattr(memory, "_memory", lambda d, lesson: (lesson.cycle_key, d))

    def tape() -> Fingerprint:
        def value(scale: float) -> float | None:
            return None if rng.random() < 0.2 else round(rng.gauss(0, scale), rng.choice([1, 6]))

        return Fingerprint(r1=value(1), r5=value(3), r20=value(6), vol=value(9), slope=value(1))

    as_of = datetime(2016, 3, 9, 22, 30, tzinfo=UTC)
    cycles: dict[str, _Cycle] = {}
    for n in range(400):
        made = as_of - timedelta(days=rng.randint(0, 900), hours=rng.choice([0, 0, 1]))
        lesson = write_lesson(f"c{n}", _call("macro", "up", made, 2000.0), "hit", 2010.0,
                              made + timedelta(days=1), tape())  # fmt: skip
        cycles[lesson.cycle_key] = _Cycle(_vector(lesson.fingerprint), made, [lesson])
    for _ in range(60):
        today = tape() if rng.random() < 0.9 else Fingerprint()
        here = _vector(today)
        want = sorted(
            (_distance(here, c.vector), c.newest_first, c.lessons[0].cycle_key, c)
            for c in cycles.values()
            if c.made_at < as_of and c.lessons[0].settled_at <= as_of
        )[:10]
        found = _rank(list(cycles.values()), today, as_of, 10)
        assert list(found) == [(key, d) for d, _, key, _ in want]  # type: ignore[comparison-overlap]


def test_no_backtest_cycle_recalls_anything_newer_than_its_as_of() -> None:
    """Over a real year every dispatch's memories were made and settled before its as_of."""
    result = run_backtest(None, date(2011, 1, 3), date(2011, 12, 30))
    recalled = [(row, m) for row in result.rows for m in row.recalled]
    assert len(recalled) > 300
    for row, (_, made, settled) in recalled:
        as_of = replay_as_of(row.day)
        assert made < as_of
        assert settled <= as_of
    assert any(status != "developing" for row in result.rows for _, status in row.stories)


def _markets(mode: str, data_dir: str | None) -> SettlementPrices:
    return replay_market(data_dir)


def test_the_resolver_writes_lessons_the_fleet_recalls_point_in_time(tmp_path: Path) -> None:
    """Settling a call and a pooled forecast writes their lessons once; a cycle recalls them only
    from as_of on, the same way the backtest's index does."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    market = replay_market(None)
    day = date(2016, 3, 7)
    as_of = replay_as_of(day)
    features = market.features(market.snapshot(CycleTrigger(cycle_key="c1", as_of=as_of)))
    close = market.settlement_quote("^GSPC", session_close(day), as_of)
    assert close is not None
    call = _call("flow", "down", as_of, close.price).model_copy(
        update={"target": "^GSPC", "matures_at": maturity(as_of, day, 24),
                "regime": features.regime}
    )  # fmt: skip
    with session_scope(url) as session:
        session.add(
            Cycle(cycle_key="c1", as_of=as_of, mode="replay", status="published",
                  features=features.model_dump(mode="json"))
        )  # fmt: skip
        session.flush()
        session.add(
            PredictionRecord(
                cycle_key="c1", source="flow", target="^GSPC", direction="down",
                horizon_hours=24, reference_price=close.price, confidence=0.56, made_at=as_of,
                matures_at=call.matures_at, regime=features.regime, topic="breadth",
                asset_class="equity_index", payload=call.model_dump(mode="json"),
            )
        )  # fmt: skip
        session.add(
            ForecastRecord(
                cycle_key="c1", target="^GSPC", horizon_hours=24, reference_price=close.price,
                made_at=as_of, matures_at=call.matures_at, regime=features.regime,
                raw_probability_up=0.47, status="open", attempts=0,
            )
        )  # fmt: skip
    tuesday = replay_as_of(date(2016, 3, 8))
    for _ in range(2):  # a second pass settles nothing and writes nothing
        with session_scope(url) as session:
            report = settle_matured(session, _markets, tuesday, max_attempts=3)
            forecasts = settle_forecasts(session, _markets, tuesday, max_attempts=3)
            record_lessons(session, report.resolutions, forecasts)
    tape = fingerprint(features)
    with session_scope(url) as session:
        before = lessons_near(session, "^GSPC", features.regime, tape, tuesday - timedelta(hours=1))
        after = lessons_near(session, "^GSPC", features.regime, tape, tuesday)
    assert before == []
    assert sorted(x.source for x in after) == ["flow", "pool"]
    assert next(x for x in after if x.source == "flow").outcome == "hit"  # ^GSPC fell that day
    memories = recall_from(after, "^GSPC", features.regime, tape, tuesday + timedelta(days=1))
    assert [(m.cycle_key, m.source) for m in memories] == [("c1", "flow")]


def test_two_databases_with_the_same_lesson_rows_recall_their_own(tmp_path: Path) -> None:
    """The parsed lessons a worker keeps are keyed by what is stored: two desks whose lesson rows
    share ids, cycle keys and sources, but not their words, each recall their own."""
    as_of = datetime(2016, 3, 9, 22, 30, tzinfo=UTC)
    tape = fingerprint(fx.calm_features())
    recalled = []
    for n, price in enumerate((2010.0, 1990.0)):
        url = f"sqlite:///{tmp_path / f'desk{n}.db'}"
        migrate(url)
        made = as_of - timedelta(days=2)
        lesson = write_lesson("c1", _call("macro", "up", made, 2000.0), "hit", price,
                              made + timedelta(days=1), tape)  # fmt: skip
        lesson = lesson.model_copy(update={"target": "SPY", "regime": "chop"})
        with session_scope(url) as session:
            session.add(Cycle(cycle_key="c1", as_of=made, mode="replay"))
            session.flush()
            session.add(
                LessonRecord(cycle_key="c1", source="macro", target="SPY", regime="chop",
                             made_at=made, settled_at=lesson.settled_at, outcome="hit",
                             r5_cell=tape.r5_cell, vol_cell=tape.vol_cell,
                             payload=lesson.model_dump(mode="json"))
            )  # fmt: skip
        with session_scope(url) as session:
            recalled.append(lessons_near(session, "SPY", "chop", tape, as_of))
    assert [[x.happened for x in found] for found in recalled] == [
        ["SPY rose 0.50% to 2010.00 by 2016-03-08: a hit for a call above 2000.00."],
        ["SPY fell 0.50% to 1990.00 by 2016-03-08: a hit for a call above 2000.00."],
    ]
