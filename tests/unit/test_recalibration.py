"""Recalibration of the synthesis' pool: the fit, its point-in-time history, and its use."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from services.resolver.forecasts import settle_forecasts
from services.synth.calibrate import History, fit, logit, sigmoid
from services.synth.deliberate import deliberate
from shared.calendar import maturity, replay_as_of, session_close
from shared.contracts import BaseRate, CycleContext
from shared.db.models import Cycle, ForecastRecord
from shared.db.session import migrate, session_scope
from shared.market.opening import replay_market
from shared.ports import SettlementPrices
from shared.records import forecast_history
from workshop.backtest import run_backtest

try:
    from tests.unit import factories as fx
except ImportError:  # pytest started on single files puts only tests/unit on sys.path
    import factories as fx  # type: ignore[import-not-found, no-redef]


def _predictive(n: int = 4000, slope: float = 4.0, base: float = 0.53) -> History:
    """Pools spread over 0.42-0.58 whose outcomes follow sigmoid(logit(base) + slope *
    logit(pool)) exactly: in each bin the share of ups is that probability (no sampling noise)."""
    history = History()
    pools = [0.42 + 0.16 * i / 19 for i in range(20)]
    for pool in pools:
        per = n // len(pools)
        ups = round(per * sigmoid(logit(base) + slope * logit(pool)))
        for k in range(per):
            history.add(pool, k < ups, base)
    return history


def test_fit_recovers_a_predictive_pool_and_shrinks_a_useless_one() -> None:
    """A pool whose outcomes follow slope 4 around a 53% base rate is fitted near 4; one with
    54% ups whatever the pool (and a 54% base rate) is fitted flat, to the base rate."""
    sharp = fit(_predictive())
    assert sharp.b == pytest.approx(4.0, abs=0.3)
    assert abs(sharp.a) < 0.02
    assert sharp.apply(0.55, 0.53) > 0.60
    flat = History()
    for i in range(2000):
        flat.add(0.45 + 0.1 * (i % 11) / 10, i % 50 < 27, 0.54)  # 54% up at every pool value
    useless = fit(flat)
    assert abs(useless.b) < 0.2
    assert useless.apply(0.58, 0.54) == pytest.approx(0.54, abs=0.01)


def test_a_short_unlucky_history_does_not_pass_for_an_edge() -> None:
    """170 forecasts of which 48% rose, against a 53.5% base rate, move the calibrated
    probability only a little from the base rate: a bad year is not a signal."""
    history = History()
    for i in range(170):
        history.add(0.5, i % 25 < 12, 0.535)  # 48% up
    calibrator = fit(history)
    assert calibrator.apply(0.5, 0.535) == pytest.approx(0.535, abs=0.01)


def test_warm_and_cold_fits_agree() -> None:
    """The backtest's warm-started fit and the fleet's cold fit reach the same optimum."""
    history = _predictive()
    cold = fit(history)
    warm = fit(history, start=(cold.a + 0.3, cold.b - 1.0))
    assert warm.a == pytest.approx(cold.a, abs=1e-9)
    assert warm.b == pytest.approx(cold.b, abs=1e-9)


def _bullish_context() -> CycleContext:
    features = fx.calm_features(base_rates={"SPY|1": BaseRate(up=0.53, down=0.47, n=4000)})
    return fx.context(features)


def test_a_ready_predictive_calibrator_makes_the_call_a_thin_one_abstains() -> None:
    """With a calibrator fitted on a predictive history a strong pool is called against the base
    rate; before the minimum of settled forecasts the desk abstains and says why."""
    outs = [fx.mind("macro", "bullish", 0.9, probability=0.62), fx.mind("flow", "bullish", 0.9)]
    ready = deliberate(_bullish_context(), outs, calibrator=fit(_predictive()))
    assert ready.prediction is not None
    assert ready.prediction.direction == "up"
    assert ready.probability_up is not None
    assert ready.raw_probability_up is not None
    assert ready.probability_up > ready.raw_probability_up  # slope 4 sharpens the pool
    assert ready.base_rate_up == 0.53
    thin = History.of([(0.6, True, 0.53)] * 40)
    early = deliberate(_bullish_context(), outs, calibrator=fit(thin))
    assert early.prediction is None
    assert early.abstention is not None
    assert "not calibrated yet: 40 of the 100" in early.abstention


def test_an_edge_inside_the_calibration_error_is_no_edge() -> None:
    """A calibrated edge smaller than its own standard error is an abstention quoting both."""
    flat = History()
    for i in range(400):
        flat.add(0.45 + 0.1 * (i % 11) / 10, i % 100 < 55, 0.53)
    calibrator = fit(flat)
    outs = [fx.mind("macro", "bullish", 0.9), fx.mind("flow", "bullish", 0.9)]
    d = deliberate(_bullish_context(), outs, calibrator=calibrator)
    assert d.prediction is None
    assert d.abstention is not None
    assert "my calibration is only good to ±" in d.abstention
    assert d.probability_stderr is not None
    assert d.probability_stderr > 0


def _markets(mode: str, data_dir: str | None) -> SettlementPrices:
    return replay_market(data_dir)


def test_the_fleet_fits_only_forecasts_settled_by_as_of(tmp_path: Path) -> None:
    """forecast_history at an as_of leaves out forecasts still open or settled after it."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    market = replay_market(None)
    days = [date(2016, 3, 7), date(2016, 3, 8), date(2016, 3, 9)]
    with session_scope(url) as session:
        for day in days:
            as_of = replay_as_of(day)
            close = market.settlement_quote("^GSPC", session_close(day), as_of)
            assert close is not None
            key = f"f-{day}"
            session.add(Cycle(cycle_key=key, as_of=as_of, mode="replay", status="published"))
            session.flush()
            session.add(
                ForecastRecord(
                    cycle_key=key, target="^GSPC", horizon_hours=24,
                    reference_price=close.price, made_at=as_of,
                    matures_at=maturity(as_of, day, 24), regime="chop",
                    raw_probability_up=0.52, base_rate_up=0.53, status="open", attempts=0,
                )
            )  # fmt: skip
    for day in days[1:]:
        with session_scope(url) as session:
            settle_forecasts(session, _markets, replay_as_of(day), max_attempts=3)
    with session_scope(url) as session:
        assert forecast_history(session, replay_as_of(days[0])) == []
        # ^GSPC fell on 2016-03-08 (2001.76 -> 1979.26) and rose on 2016-03-09.
        assert forecast_history(session, replay_as_of(days[1])) == [(0.52, False, 0.53)]
        assert forecast_history(session, replay_as_of(days[2])) == [
            (0.52, False, 0.53),
            (0.52, True, 0.53),
        ]
        assert forecast_history(session, replay_as_of(days[2]) - timedelta(hours=1)) == [
            (0.52, False, 0.53)
        ]


def test_the_backtest_calibrator_rests_only_on_forecasts_settled_before_each_cycle() -> None:
    """Every cycle's calibrator counts exactly the forecasts settled by its as_of, none later;
    started cold, the desk abstains until its calibration is trusted."""
    result = run_backtest(None, date(2015, 1, 2), date(2015, 12, 31), cold=True)
    settled_at = sorted(f.settled_at for f in result.ledger.forecasts)
    for row in result.rows:
        as_of = replay_as_of(row.day)
        assert row.calibrated_on == sum(1 for t in settled_at if t <= as_of)
    assert result.rows[-1].calibrated_on > 200
    early = result.rows[0]
    assert early.abstention is not None
    assert "not trusted yet" in early.abstention
