"""The menu of calls: candidates of every kind, their calibration, the choice by edge, the warm
start (point-in-time), the honest baselines, and a call's identity across triggers."""

from __future__ import annotations

import math
import random
import shutil
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select

from services.ingest.cycle import claim
from services.synth.menu import (
    MODELS,
    KindFit,
    MenuBook,
    MenuCalibrator,
    MenuHistory,
    Option,
    Theta,
    candidates,
    choose,
    fit_menu,
    leaned,
    options,
    prediction_of,
)
from services.synth.store import store_cycle
from services.synth.synthesize import synthesize
from services.synth.warm import warm_book
from shared.brain.offline import OfflineBrain
from shared.calendar import maturity, replay_as_of
from shared.contracts import STRETCH_CLIP, CycleTrigger, Dispatch, SymbolReturns
from shared.db.models import Cycle, ForecastRecord, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.events import naive_at_move, naive_probability
from shared.judging import outcome
from shared.market.replay import ReplayMarket, load_replay, sample_data_dir
from shared.records import cycle_number
from shared.scoring import Scored, baselines, brier, murphy, skill_and_se
from workshop import render

DAY = date(2015, 8, 24)


def _option(kind: str = "range", event: str = "in", base: float = 0.5, naive: float = 0.5,
            target: str = "^GSPC", lean: float = 0.0, stretch: float = 0.0) -> Option:  # fmt: skip
    return Option(target, kind, event, 1.0 if kind != "direction" else 0.0, 24, 100.0, DAY,  # type: ignore[arg-type]
                  base, naive, lean, stretch)  # fmt: skip


def _calibrator(theta: dict[str, Theta], n: int = 1000, var: float = 1e-6) -> MenuCalibrator:
    cov = tuple(tuple(var if i == j else 0.0 for j in range(5)) for i in range(5))
    fits = {m: KindFit(m, theta.get(m, (0.0, 1.0, 0.0, 0.0, 0.0)), cov, n) for m in MODELS}
    return MenuCalibrator(fits, n * len(MODELS))


def test_the_menu_offers_every_kind_on_every_priceable_symbol() -> None:
    """Each symbol with a close and a trailing volatility gets direction, threshold (up and down)
    and range candidates at 24 h, 48 h and 5 sessions, each with a base rate and a naive p."""
    market = ReplayMarket.from_directory(None)
    features = market.features(
        market.snapshot(CycleTrigger(cycle_key="m", as_of=replay_as_of(DAY)))
    )
    weighed = options(features)
    kinds = {(o.target, o.kind, o.event, o.horizon_hours) for o in weighed}
    for symbol in ("^GSPC", "^IXIC", "^VIX", "MSFT", "GOOGL"):
        for hours in (24, 48, 120):
            for kind, event in (("direction", "up"), ("threshold", "gt"), ("threshold", "lt"),
                                ("range", "in")):  # fmt: skip
                assert (symbol, kind, event, hours) in kinds
    assert all(0 < o.base < 1 and 0 < o.naive < 1 for o in weighed)


def test_the_minds_lean_reaches_only_the_targets_directional_candidates() -> None:
    """Leaning the menu built once gives the target's direction and upside thresholds the lean,
    its downside thresholds the lean negated (in the calibration's inputs too), and leaves its
    ranges and every other symbol's candidates unleaned."""
    market = ReplayMarket.from_directory(None)
    features = market.features(
        market.snapshot(CycleTrigger(cycle_key="m", as_of=replay_as_of(DAY)))
    )
    plain = candidates(features)
    weighed = leaned(plain, {"^GSPC": 0.07})
    assert len(weighed) == len(plain)
    assert weighed == options(features, {"^GSPC": 0.07})
    expected = {"up": 0.07, "gt": 0.07, "lt": -0.07, "in": 0.0}
    for before, after in zip(plain, weighed, strict=True):
        lean = expected[after.event] if after.target == "^GSPC" else 0.0
        assert after.lean == lean
        assert after.x() == (*before.x()[:2], lean, before.x()[3])
        assert (after.target, after.kind, after.event, after.base) == (
            before.target, before.kind, before.event, before.base
        )  # fmt: skip
    assert any(o.target == "^GSPC" and o.lean == -0.07 for o in weighed)


def test_choice_takes_the_largest_edge_beyond_the_calibrations_error() -> None:
    """Of candidates calibrated at their naive probability, the one furthest from its base rate
    is called; its error is subtracted first, so a bigger but unsure edge loses."""
    calibrator = _calibrator({})
    small = _option(base=0.50, naive=0.56)
    large = _option(base=0.50, naive=0.70, target="^IXIC")
    best, closest, why = choose([small, large], calibrator)
    assert best is not None
    assert closest is None
    assert why == ""
    assert best.option is large
    assert best.side == "inside"
    prediction = prediction_of(best, replay_as_of(DAY), "chop", "test")
    assert prediction.kind == "range"
    assert prediction.range_pct == 1.0
    assert prediction.base_rate == 0.5
    assert prediction.naive_probability == 0.7
    unsure = _calibrator({}, var=4.0)  # a standard error far larger than any edge
    none, near, why = choose([small, large], unsure)
    assert none is None
    assert near is not None
    assert "closest" in why
    assert near.wording() in why


def test_a_candidate_below_a_coin_is_called_on_its_likelier_side() -> None:
    """A range at p(inside) 0.2 against a base rate of 0.5 is called as 'outside' at 0.8."""
    best, _, _ = choose([_option(base=0.5, naive=0.2)], _calibrator({}))
    assert best is not None
    assert best.side == "outside"
    assert best.probability == pytest.approx(0.8, abs=1e-3)
    assert best.base == pytest.approx(0.5)
    assert "outside" in best.wording()


def test_no_direction_call_without_an_edge() -> None:
    """Direction outcomes that are coin flips whatever the minds lean: the fitted calibration
    stays at the base rate and no direction candidate is ever called."""
    rng = random.Random(7)
    history = MenuHistory()
    for _ in range(4000):
        lean = rng.uniform(-0.1, 0.1)
        history.add(_option("direction", "up", base=0.53, lean=lean), rng.random() < 0.53)
    calibrator = fit_menu(history)
    direction = calibrator.fits["direction"]
    assert direction.n >= direction.minimum
    for lean in (-0.1, 0.0, 0.1):
        best, near, _ = choose([_option("direction", "up", base=0.53, lean=lean)], calibrator)
        assert best is None
        assert near is not None
        assert near.option.kind == "direction"


def test_the_stretch_is_the_last_five_sessions_in_standard_deviations() -> None:
    """A 5% rise in five sessions at 1% daily sd is 2.18 sd (log move over sd times root 5); a
    10% rise is clipped at 4; a fall is negative; nothing known is 0, never a guess."""
    vol = math.sqrt(252)  # 1% a session, annualised

    def z(r5: float | None, vol20: float | None = vol) -> float:
        return SymbolReturns(r5=r5, vol20=vol20).stretch()

    assert z(5.0) == pytest.approx(100 * math.log(1.05) / math.sqrt(5))
    assert z(10.0) == STRETCH_CLIP
    assert z(-5.0) == pytest.approx(100 * math.log(0.95) / math.sqrt(5))
    assert z(None) == 0.0
    assert z(5.0, None) == 0.0
    assert z(5.0, 0.0) == 0.0


def test_the_stretch_leans_toward_each_event_and_a_volatility_index_has_its_own_direction() -> None:
    """Up and above the line take the stretch as it is, below it negated, a range by its size;
    direction on VIX is calibrated apart from direction on the S&P, other kinds are not."""
    assert _option("direction", "up", stretch=2.0).x()[3] == 2.0
    assert _option("threshold", "gt", stretch=2.0).x()[3] == 2.0
    assert _option("threshold", "lt", stretch=2.0).x()[3] == -2.0
    assert _option("range", "in", stretch=-2.0).x()[3] == 2.0
    assert _option("direction", "up", target="^VIX").model == "direction:volatility"
    assert _option("direction", "up", target="^GSPC").model == "direction"
    assert _option("threshold", "lt", target="^VIX").model == "threshold:lt"
    assert _option("range", "in", target="^VIX").model == "range"


def test_a_reverting_volatility_index_is_called_against_its_run() -> None:
    """When VIX's next move goes against its last five sessions (as it does), the volatility
    index's direction calibration learns it and calls VIX lower after a run up; the S&P's
    direction, whose outcomes ignore the stretch, stays at its base rate and is not called."""
    rng = random.Random(3)
    history = MenuHistory()
    for _ in range(6000):
        z = rng.uniform(-3.0, 3.0)
        p_up = 1 / (1 + math.exp(0.6 * z + 0.2))  # reverts, and falls a little more often
        stated = p_up
        history.add(_option("direction", "up", base=0.45, target="^VIX", stretch=z),
                    rng.random() < p_up, stated=stated)  # fmt: skip
        history.add(_option("direction", "up", base=0.53, stretch=z), rng.random() < 0.53,
                    stated=0.53)  # fmt: skip
    calibrator = fit_menu(history)
    vix = calibrator.fits["direction:volatility"]
    assert vix.ready
    assert vix.theta[4] == pytest.approx(-0.6, abs=0.1)
    assert abs(calibrator.fits["direction"].theta[4]) < 0.05
    assert not calibrator.fits["direction"].ready
    ran_up = _option("direction", "up", base=0.45, target="^VIX", stretch=2.5)
    best, _, _ = choose([ran_up, _option("direction", "up", base=0.53, stretch=2.5)], calibrator)
    assert best is not None
    assert (best.option.target, best.side) == ("^VIX", "down")
    assert best.probability > 0.8


def test_real_vix_reverts_and_the_real_sp500_does_not() -> None:
    """Warm-started on replay-dev's last 1000 sessions (VIX from 2014), the fitted stretch weight
    is clearly negative for VIX's direction and small for the equities' direction."""
    market = ReplayMarket(load_replay(sample_data_dir()))
    fits = warm_book(market, replay_as_of(date(2018, 12, 31)), sessions=1000).refit().fits
    assert fits["direction:volatility"].n > 2000
    assert fits["direction:volatility"].theta[4] < -0.15
    assert abs(fits["direction"].theta[4]) < 0.5 * abs(fits["direction:volatility"].theta[4])


def test_a_real_edge_is_learned_and_called() -> None:
    """When outcomes follow the naive model rather than the base rate, the calibration learns
    it and calls the candidate whose naive probability departs from its base rate."""
    rng = random.Random(11)
    history = MenuHistory()
    for _ in range(6000):
        naive = rng.uniform(0.2, 0.8)
        # Each stated at the naive probability before its outcome: an edge proven out of sample.
        history.add(_option(base=0.5, naive=naive), rng.random() < naive, stated=naive)
    calibrator = fit_menu(history)
    best, _, _ = choose([_option(base=0.5, naive=0.75)], calibrator)
    assert best is not None
    assert best.probability == pytest.approx(0.75, abs=0.05)


def _replay_copy(tmp: Path, name: str, plant_after: date | None) -> Path:
    """A copy of the shipped replay cut to 2012-2016, with every close after plant_after x100."""
    source = sample_data_dir()
    out = tmp / name
    out.mkdir()
    prices = pl.read_csv(source / "prices.csv", infer_schema_length=0)
    prices = prices.filter((pl.col("date") >= "2012-01-01") & (pl.col("date") <= "2016-12-31"))
    if plant_after is not None:
        later = pl.col("date") > plant_after.isoformat()
        big = (pl.col("close").cast(pl.Float64) * 100).cast(pl.String)
        prices = prices.with_columns(
            pl.when(later).then(big).otherwise(pl.col("close")).alias("close")
        )
    prices.write_csv(out / "prices.csv")
    shutil.copy(source / "macro.csv", out / "macro.csv")
    return out


def test_the_warm_start_uses_nothing_after_the_first_as_of(tmp_path: Path) -> None:
    """Planting absurd closes after the first cycle's date changes nothing the warm start fits:
    the same candidates settle, into the same calibration."""
    first = replay_as_of(date(2015, 6, 1))
    clean = ReplayMarket(load_replay(_replay_copy(tmp_path, "clean", None)))
    planted = ReplayMarket(load_replay(_replay_copy(tmp_path, "planted", date(2015, 6, 1))))
    books = [warm_book(m, first, sessions=300) for m in (clean, planted)]
    assert books[0].warm > 1000
    assert books[0].history.counts == books[1].history.counts
    assert books[0].history.cells == books[1].history.cells
    fits = [b.refit() for b in books]
    for model in MODELS:
        assert fits[0].fits[model].theta == fits[1].fits[model].theta
        assert books[0].history.tested[model] == books[1].history.tested[model]
    assert fits[0].fits["range"].n >= fits[0].fits["range"].minimum


def test_naive_model_is_a_driftless_random_walk() -> None:
    """Up is a coin; a move beyond one sd is ~16%; within ±0.6745 sd is about half."""
    assert naive_probability("up", 0.0, 1.0, 1) == 0.5
    sd = 1.0
    move = (math.exp(sd / 100.0) - 1.0) * 100.0
    assert naive_probability("gt", move, sd, 1) == pytest.approx(0.1587, abs=1e-3)
    assert naive_probability("lt", -move, sd, 4) < naive_probability("lt", -move, sd, 1) + 0.2
    assert naive_probability("in", 0.6745, 1.0, 1) == pytest.approx(0.5, abs=0.01)


def test_the_three_naive_probabilities_at_a_move_are_naive_probabilitys_own() -> None:
    """naive_at_move gives above, within and below a move the very floats naive_probability
    gives each event, at every grid move, on tapes from dead calm to a crash, and at the edges
    of the moves its shortcut covers (a tiny move, 99%; beyond it a fall is not priceable)."""
    rng = random.Random(3)
    moves = [0.5, 1.0, 2.0, 2.5, 3.0, 5.0, 8.0, 10.0, 15.0, 25.0, 98.5, 99.0, 1e-9]
    for move in moves:
        for sd in [
            0.0,
            1e-6,
            0.05,
            0.7,
            1.3,
            4.0,
            12.0,
            60.0,
            *(rng.uniform(0, 9) for _ in range(40)),
        ]:
            for n in (1, 2, 5):
                want = (naive_probability("gt", move, sd, n), naive_probability("in", move, sd, n),
                        naive_probability("lt", -move, sd, n))  # fmt: skip
                assert naive_at_move(move, sd, n) == want


def test_baselines_murphy_and_majority() -> None:
    """Brier = reliability - resolution + uncertainty when each bucket holds one probability; a
    forecaster always at the majority outcome scores its error rate; skill has a standard error."""
    rows = [Scored(0.7, 0.6, 0.5, hit) for hit in (True,) * 7 + (False,) * 3]
    rows += [Scored(0.2, 0.6, 0.5, hit) for hit in (True,) * 2 + (False,) * 8]
    parts = murphy([(r.p, r.hit) for r in rows])
    total = brier((r.p, r.hit) for r in rows)
    assert total is not None
    assert parts["reliability"] is not None
    assert parts["resolution"] is not None
    assert parts["uncertainty"] is not None
    assert parts["uncertainty"] == pytest.approx(0.45 * 0.55)
    assert parts["reliability"] - parts["resolution"] + parts["uncertainty"] == pytest.approx(total)
    figures = baselines(rows)
    assert figures["brier_majority"] == pytest.approx(11 / 20)  # base 0.6: always "yes"
    assert figures["naive_brier"] == pytest.approx(0.25)
    skill, se = skill_and_se([(r.p, r.base or 0.0, r.hit) for r in rows])
    assert figures["brier_skill_se"] == se
    assert skill is not None
    assert skill > 0
    assert se is not None
    assert se > 0


def test_the_same_call_from_two_triggers_is_stored_once(tmp_path: Path) -> None:
    """A market moment run by `workshop cycle` and again by a replay (two cycle keys) stores each
    call once: a call is keyed by what it is, not by the trigger."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    market = ReplayMarket.from_directory(None)
    brain = OfflineBrain()
    minds = ("macro", "flow", "contrarian")
    for key in ("cycle-2015-08-24", "replay:dev:2015-08-24"):
        trigger = CycleTrigger(cycle_key=key, as_of=replay_as_of(DAY))
        snapshot = market.snapshot(trigger)
        features = market.features(snapshot)
        with session_scope(url) as session:
            context = claim(session, trigger, snapshot, features)
        assert context is not None
        outputs = [brain.think(m, context) for m in minds]
        dispatch = synthesize(context, outputs, brain, expected_minds=minds,
                              menu=_calibrator({}, var=1e-8))  # fmt: skip
        assert dispatch.prediction is not None
        # The dispatch states its call in words, its edge, and what its record rests on.
        assert dispatch.prediction.wording in dispatch.body_md
        assert "calibration rests on" in dispatch.body_md
        if dispatch.prediction.kind != "direction":
            assert "Down by" not in dispatch.title
            assert "Up by" not in dispatch.title
        with session_scope(url) as session:
            assert store_cycle(session, dispatch, outputs, context)
    with session_scope(url) as session:
        rows = session.scalars(select(PredictionRecord)).all()
        keys = [r.call_key for r in rows]
        total = session.scalar(select(func.count()).select_from(PredictionRecord))
        forecasts = session.scalar(select(func.count()).select_from(ForecastRecord))
    assert len(keys) == len(set(keys)) == total
    assert forecasts == 1
    assert any(r.source == "synthesis" for r in rows)


def test_cycle_numbers_follow_as_of_within_a_replay(tmp_path: Path) -> None:
    """Days of a replay run out of order are numbered by their as_of, not by arrival."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    market = ReplayMarket.from_directory(None)
    numbers = {}
    for day in (date(2015, 8, 26), date(2015, 8, 24), date(2015, 8, 25)):
        trigger = CycleTrigger(cycle_key=f"replay:{day}", as_of=replay_as_of(day))
        snapshot = market.snapshot(trigger)
        with session_scope(url) as session:
            claim(session, trigger, snapshot, market.features(snapshot))
    with session_scope(url) as session:
        for cycle in session.scalars(select(Cycle)):
            numbers[cycle.as_of.date()] = cycle_number(session, cycle)
    assert [numbers[d] for d in sorted(numbers)] == [1, 2, 3]


def test_the_replay_line_names_the_kind_and_the_wording() -> None:
    """`workshop replay` prints a range call as a range call, in its words, with its baselines."""
    best, _, _ = choose([_option(base=0.5, naive=0.75)], _calibrator({}))
    assert best is not None
    prediction = prediction_of(best, replay_as_of(DAY), "chop", "test")
    line = render.call_line(
        Dispatch(
            cycle_key="k",
            cycle_number=1,
            as_of=replay_as_of(DAY),
            title="t",
            body_md="b",
            debate="unknown",
            conviction=0.0,
            minds=(),
            prediction=prediction,
        )
    )
    assert "range: ^GSPC closes within ±1% of 100.00" in line
    assert "vs base rate 50%" in line
    assert "DOWN" not in line


def test_a_kind_that_has_not_beaten_its_base_rate_out_of_sample_is_not_called() -> None:
    """However its fit looks in sample, a kind is trusted with calls only once the probabilities
    it stated before each outcome beat the base rate by two standard errors."""
    rng = random.Random(5)
    history = MenuHistory()
    for _ in range(3000):
        # Coin outcomes, stated confidently away from the base rate: out of sample they lose.
        history.add(_option(base=0.5, naive=0.7), rng.random() < 0.5, stated=0.7)
    assert not history.proven("range")
    assert not fit_menu(history).fits["range"].ready
    honest = MenuHistory()
    for _ in range(3000):
        naive = rng.uniform(0.2, 0.8)
        honest.add(_option(base=0.5, naive=naive), rng.random() < naive, stated=naive)
    assert honest.proven("range")


def test_the_menu_built_fast_is_what_the_option_constructor_builds() -> None:
    """Every candidate of a real session, and each of them leaned, has the fields, calibration
    inputs and calibration that Option(...) gives the same terms (the menu builds them without
    the constructor), and stays frozen."""
    market = ReplayMarket.from_directory(None)
    features = market.features(
        market.snapshot(CycleTrigger(cycle_key="m", as_of=replay_as_of(DAY)))
    )
    built = candidates(features)
    lean = {features.broad or "": 0.07}
    bent = leaned(built, lean)
    assert len(built) > 40
    assert sum(a is not b for a, b in zip(built, bent, strict=True)) >= 6
    for o in [*built, *bent]:
        twin = Option(o.target, o.kind, o.event, o.move_pct, o.horizon_hours, o.reference,
                      o.session, o.base, o.naive, o.lean, o.stretch)  # fmt: skip
        assert o == twin
        assert (o.logits, o.model) == (twin.logits, twin.model)
        assert [type(x) for x in o.logits] == [type(x) for x in twin.logits]
    with pytest.raises(AttributeError):
        built[0].base = 0.1  # type: ignore[misc]


def test_the_book_settles_each_candidate_as_the_judge_does_one_by_one() -> None:
    """MenuBook.settle judges a symbol's candidates of one maturity on their shared quote; over
    300 real sessions (2008's crash, every kind) the history it keeps is the one
    settling each candidate alone through outcome() and MenuHistory.add gives, sum for sum."""
    market = ReplayMarket.from_directory(None)
    book = MenuBook()
    pending: list[tuple[datetime, Option, bool, float | None]] = []
    alone = MenuHistory()
    days = market.sessions(date(2008, 1, 1), date(2009, 3, 31))
    assert len(days) >= 300
    for number, day in enumerate(days):
        now = replay_as_of(day)
        book.settle(market, now)
        waiting = []
        for due, option, desk, stated in pending:
            quote = market.settlement_quote(option.target, due, now)
            verdict = outcome(option.side, option.reference, option.line, quote, matures_at=due,
                              now=now, attempts=0, max_attempts=1, kind=option.kind,
                              range_pct=option.range_pct)  # fmt: skip
            if verdict is None:
                waiting.append((due, option, desk, stated))
            elif verdict != "inconclusive":
                alone.add(option, verdict == "hit", desk=desk, stated=stated)
        pending = waiting
        if number % 20 == 0:
            book.refit()
        weighed = leaned(candidates(market.features(
            market.snapshot(CycleTrigger(cycle_key="s", as_of=now)))), {"^GSPC": 0.03})  # fmt: skip
        desk = number % 2 == 0
        book.propose(weighed, now, desk=desk, calibrator=book.calibrator)
        fits = book.calibrator.fits if book.calibrator is not None else None
        pending += [
            (maturity(now, o.session, o.horizon_hours), o, desk,
             fits[o.model].evaluate(o)[0] if fits is not None else None)
            for o in weighed
        ]  # fmt: skip
        pending.sort(key=lambda p: p[0])  # the book's heap: by maturity, then as proposed
    assert alone.total > 10_000
    assert book.history.cells == alone.cells
    assert book.history.counts == alone.counts
    assert book.history.tested == alone.tested
    assert book.history.from_desk == alone.from_desk
