"""Tests of the derived features, checked by hand against the shipped CSVs."""

from __future__ import annotations

import csv
import math
import statistics
from datetime import date

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.calendar import replay_as_of
from shared.features import (
    classify_breadth,
    classify_regime,
    compute_features,
    features_at,
    features_from_row,
)
from shared.market import ReplayData, ReplayMarket, sample_data_dir

REGIMES = {"crisis", "risk_off", "risk_on", "trending", "chop", "unknown"}


def _closes(symbol: str) -> tuple[list[str], list[float], list[float | None]]:
    """Dates, closes and volumes of one symbol, read with the csv module (independent of polars)."""
    with (sample_data_dir() / "prices.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["symbol"] == symbol]
    volumes = [float(r["volume"]) if r["volume"] else None for r in rows]
    return [r["date"] for r in rows], [float(r["close"]) for r in rows], volumes


def _macro(series: str) -> dict[str, float]:
    with (sample_data_dir() / "macro.csv").open() as handle:
        return {
            r["date"]: float(r["value"]) for r in csv.DictReader(handle) if r["series"] == series
        }


@pytest.fixture(scope="module")
def frame(sample: ReplayData) -> pl.DataFrame:
    return compute_features(sample.prices, sample.macro)


def test_one_row_per_broad_index_session(frame: pl.DataFrame, market: ReplayMarket) -> None:
    """The frame has exactly one row per ^GSPC session, in order."""
    dates, _, _ = _closes("^GSPC")
    assert frame["session"].to_list() == [date.fromisoformat(d) for d in dates]
    assert market.sessions(date(1999, 1, 1), date(2018, 12, 31)) == frame["session"].to_list()


def test_returns_vol_and_volume_match_hand_computation(frame: pl.DataFrame) -> None:
    """^GSPC returns, realised vol and volume ratio on 2016-06-14 equal values computed by hand."""
    dates, closes, volumes = _closes("^GSPC")
    i = dates.index("2016-06-14")
    features = features_at(frame, replay_as_of(date(2016, 6, 14)))
    assert features is not None
    assert features.session == date(2016, 6, 14)
    gspc = features.returns["^GSPC"]
    assert gspc.r1 == pytest.approx((closes[i] / closes[i - 1] - 1) * 100)
    assert gspc.r5 == pytest.approx((closes[i] / closes[i - 5] - 1) * 100)
    assert gspc.r20 == pytest.approx((closes[i] / closes[i - 20] - 1) * 100)
    logs = [math.log(closes[j] / closes[j - 1]) for j in range(i - 19, i + 1)]
    assert features.realized_vol_20d == pytest.approx(statistics.stdev(logs) * math.sqrt(252) * 100)
    window = [v for v in volumes[i - 19 : i + 1] if v is not None]
    today = volumes[i]
    assert today is not None
    assert len(window) == 20
    assert features.volume_ratio_20d == pytest.approx(today / statistics.mean(window))
    assert features.last_close["^GSPC"] == closes[i]
    assert features.breadth.broad_r1 == pytest.approx(gspc.r1)


def test_macro_is_joined_by_release_not_observation_date(frame: pl.DataFrame) -> None:
    """CPI YoY moves to May 2016 only on its release day, 2016-06-15, not at the month's start."""
    cpi = _macro("CPIAUCSL")
    april = (cpi["2016-04-01"] / cpi["2015-04-01"] - 1) * 100
    may = (cpi["2016-05-01"] / cpi["2015-05-01"] - 1) * 100
    before = features_at(frame, replay_as_of(date(2016, 6, 14)))
    after = features_at(frame, replay_as_of(date(2016, 6, 15)))
    assert before is not None
    assert after is not None
    assert before.cpi_yoy == pytest.approx(april)
    assert after.cpi_yoy == pytest.approx(may)


def test_policy_labour_and_oil_changes_match_hand_computation(frame: pl.DataFrame) -> None:
    """Fed funds 6-month, unemployment 3-month and WTI 20-observation changes match the CSV."""
    fed, unrate, wti = _macro("FEDFUNDS"), _macro("UNRATE"), _macro("DCOILWTICO")
    # At 2016-06-15's close: FEDFUNDS for May (out 2016-06-01) and UNRATE for May (out 06-03).
    features = features_at(frame, replay_as_of(date(2016, 6, 15)))
    assert features is not None
    assert features.fed_funds == fed["2016-05-01"]
    assert features.fed_funds_change_6m == pytest.approx(fed["2016-05-01"] - fed["2015-11-01"])
    assert features.unemployment == unrate["2016-05-01"]
    assert features.unemployment_change_3m == pytest.approx(
        unrate["2016-05-01"] - unrate["2016-02-01"]
    )
    days = sorted(d for d in wti if d <= "2016-06-15")
    expected = (wti[days[-1]] / wti[days[-21]] - 1) * 100
    assert features.oil_r20 == pytest.approx(expected)


def test_crisis_session_in_october_2008(frame: pl.DataFrame) -> None:
    """2008-10-10, with no VIX recorded, is read as crisis or risk-off from realised volatility."""
    features = features_at(frame, replay_as_of(date(2008, 10, 10)))
    assert features is not None
    assert features.vix is None
    assert features.regime in {"crisis", "risk_off"}
    assert features.regime_score > 0.5
    assert features.breadth.label == "broad_selloff"


def test_calm_2017_session_is_risk_on_or_trending(frame: pl.DataFrame) -> None:
    """A calm mid-2017 session (VIX near 10) is risk-on or trending, with VIX read from the data."""
    features = features_at(frame, replay_as_of(date(2017, 7, 14)))
    assert features is not None
    assert features.vix == 9.51
    assert features.regime in {"risk_on", "trending"}


def test_missing_inputs_are_none_and_listed(frame: pl.DataFrame) -> None:
    """In 2008 VIX, small caps and GOOGL are absent: None (not 0) and named in unknown."""
    features = features_at(frame, replay_as_of(date(2008, 10, 10)))
    assert features is not None
    assert features.small is None
    assert features.breadth.small_r1 is None
    assert features.vix_change_5d is None
    assert {"vix", "vix_change_5d", "small", "breadth.small_r1"} <= set(features.unknown)
    assert features.megas == ("MSFT",)
    assert features.breadth.mega_count == 1
    assert "GOOGL" not in features.returns


def test_real_mega_down_index_flat_session(frame: pl.DataFrame) -> None:
    """2016-02-26: MSFT and GOOGL down while ^GSPC was flat is labelled mega_down_index_flat."""
    features = features_at(frame, replay_as_of(date(2016, 2, 26)))
    assert features is not None
    assert features.breadth.label == "mega_down_index_flat"
    assert (features.breadth.mega_down, features.breadth.mega_up) == (2, 0)
    msft, googl = features.returns["MSFT"].r1, features.returns["GOOGL"].r1
    assert msft is not None
    assert googl is not None
    assert features.breadth.mega_mean_r1 == pytest.approx((msft + googl) / 2)


def test_seed_pattern_is_mega_down_index_flat() -> None:
    """The first seed's session (SPY +0.09%, four of six megas down, IWM +0.70%) is recognised."""
    megas = [-5.42, -0.82, -0.37, -0.54, 1.11, 0.94]
    label = classify_breadth(
        broad_r1=0.09,
        mega_mean_r1=statistics.mean(megas),
        mega_up=2,
        mega_down=4,
        mega_count=6,
        small_r1=0.70,
    )
    assert label == "mega_down_index_flat"


@pytest.mark.parametrize(
    ("broad", "mega_mean", "up", "down", "count", "small", "label"),
    [
        (None, -1.0, 0, 2, 2, None, "unknown"),
        (-0.1, 1.2, 3, 0, 3, None, "mega_up_index_flat"),
        (1.4, 1.5, 2, 0, 2, 1.0, "broad_rally"),
        (-1.6, -2.0, 0, 2, 2, -1.0, "broad_selloff"),
        (0.1, 0.1, 1, 1, 2, 1.2, "small_leads"),
        (0.1, 0.1, 1, 1, 2, -0.9, "small_lags"),
        (0.1, -2.0, 0, 1, 1, None, "mixed"),  # one mega is not a breadth signal
    ],
)
def test_breadth_labels(
    broad: float | None,
    mega_mean: float,
    up: int,
    down: int,
    count: int,
    small: float | None,
    label: str,
) -> None:
    """Each breadth label is given on the pattern its docstring describes."""
    got = classify_breadth(
        broad_r1=broad,
        mega_mean_r1=mega_mean,
        mega_up=up,
        mega_down=down,
        mega_count=count,
        small_r1=small,
    )
    assert got == label


def test_regime_uses_realised_vol_when_vix_is_unknown() -> None:
    """Without VIX, high realised vol still reads as stress; with nothing at all, unknown."""
    assert classify_regime(vix=None, realized_vol_20d=None, r5=None, r20=None) == ("unknown", 0.0)
    label, _ = classify_regime(vix=None, realized_vol_20d=45.0, r5=-4.0, r20=-8.0)
    assert label == "crisis"
    label, _ = classify_regime(vix=11.0, realized_vol_20d=45.0, r5=0.5, r20=1.0)
    assert label == "risk_on"  # VIX wins over the proxy when both are known


optional = st.none() | st.floats(min_value=-60, max_value=120, allow_nan=False)


@given(vix=optional, rv=optional, r5=optional, r20=optional)
def test_regime_score_is_always_a_probability(
    vix: float | None, rv: float | None, r5: float | None, r20: float | None
) -> None:
    """Whatever the inputs, the regime is a known label and its score lies in [0, 1]."""
    if vix is not None:
        vix = abs(vix)
    if rv is not None:
        rv = abs(rv)
    label, score = classify_regime(vix=vix, realized_vol_20d=rv, r5=r5, r20=r20)
    assert label in REGIMES
    assert 0.0 <= score <= 1.0


def test_no_row_before_the_first_close(frame: pl.DataFrame) -> None:
    """Before the first session's close is known, features_at has nothing to return."""
    assert features_at(frame, replay_as_of(date(1998, 12, 31))) is None
    first = features_at(frame, replay_as_of(date(1999, 1, 4)))
    assert first is not None
    assert first.returns["^GSPC"].r1 is None
    assert "realized_vol_20d" in first.unknown


def _same(a: object, b: object, where: str) -> None:
    """a and b equal with the same types all the way down (models, dicts, tuples, scalars)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, BaseModel) and isinstance(b, BaseModel):
        assert list(a.__dict__) == list(b.__dict__), where
        assert a.model_fields_set == b.model_fields_set, where
        for name, value in a.__dict__.items():
            _same(value, b.__dict__[name], f"{where}.{name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where  # type: ignore[call-overload]
        for key, value in a.items():
            _same(value, b[key], f"{where}[{key}]")  # type: ignore[index]
    elif isinstance(a, tuple):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_features_built_unvalidated_are_the_validated_features(frame: pl.DataFrame) -> None:
    """Every 40th session of the shipped replay (and its first and last): the Features built
    without validation equal the validated build field for field, down to each value's type,
    and stay frozen."""
    rows = sorted({0, frame.height - 1, *range(0, frame.height, 40)})
    for index in rows:
        row = frame.row(index, named=True)
        as_of = frame["known_at"][index]
        fast = features_from_row(row, as_of)
        slow = features_from_row(row, as_of, validate=True)
        assert fast == slow
        _same(fast, slow, f"row {index}")
    with pytest.raises(ValidationError, match="frozen"):
        fast.regime = "chop"  # type: ignore[misc]
