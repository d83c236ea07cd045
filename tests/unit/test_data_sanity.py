"""Data sanity on real slices of the shipped data: planted glitches are set aside and flagged,
gaps are named and never priced as one session's move, and real history is left alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from shared.calendar import end_of_day_known, replay_as_of
from shared.contracts import CycleTrigger, Snapshot
from shared.market import ReplayData, ReplayMarket, load_replay, sample_data_dir
from shared.sanity import screen_macro, screen_prices

PRICES_HEADER = "date,symbol,open,high,low,close,volume"
MACRO_HEADER = "date,series,value,released"


def _lines(name: str) -> list[str]:
    return (sample_data_dir() / name).read_text().splitlines()[1:]


def _scale(symbol: str, day: str, column: int, factor: float) -> Callable[[list[str]], list[str]]:
    """An edit multiplying one cell of one row (symbol or series, day) by factor."""

    def edit(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            cells = line.split(",")
            if cells[0] == day and cells[1] == symbol:
                cells[column] = f"{float(cells[column]) * factor:.4f}"
            out.append(",".join(cells))
        return out

    return edit


def _market(
    root: Path,
    *,
    first: str = "2014-06-02",
    last: str = "2016-06-30",
    keep: Callable[[str], bool] = lambda line: True,
    prices: Callable[[list[str]], list[str]] | None = None,
    macro: Callable[[list[str]], list[str]] | None = None,
) -> ReplayMarket:
    """A replay market over a slice of the shipped data, with optional planted edits."""
    rows = [x for x in _lines("prices.csv") if first <= x[:10] <= last and keep(x)]
    series = [x for x in _lines("macro.csv") if x[:10] <= last]
    rows = prices(rows) if prices else rows
    series = macro(series) if macro else series
    root.mkdir(parents=True, exist_ok=True)
    (root / "prices.csv").write_text("\n".join([PRICES_HEADER, *rows]) + "\n")
    (root / "macro.csv").write_text("\n".join([MACRO_HEADER, *series]) + "\n")
    return ReplayMarket(load_replay(root))


def _snap(market: ReplayMarket, day: date) -> Snapshot:
    return market.snapshot(CycleTrigger(cycle_key="t", as_of=replay_as_of(day)))


def _close(symbol: str, day: str) -> float:
    row = next(x for x in _lines("prices.csv") if x[:10] == day and x.split(",")[1] == symbol)
    return float(row.split(",")[5])


def test_the_shipped_history_has_no_sanity_finding(sample: ReplayData) -> None:
    """Twenty real years of prices and macro (2008, 2018's VIX spike included) raise no finding."""
    assert screen_prices(sample.prices)[1] == []
    assert screen_macro(sample.macro)[1] == []


def test_a_close_times_100_is_a_bad_value_and_is_not_used(tmp_path: Path) -> None:
    """^GSPC x100 on 2015-07-01: flagged bad_value that day, quoted and featured from the last
    good close, and the next session's move is measured from that good close."""
    market = _market(tmp_path / "x100", prices=_scale("^GSPC", "2015-07-01", 5, 100))
    day = date(2015, 7, 1)
    snapshot = _snap(market, day)
    flags = [f for f in snapshot.flags if f.code == "bad_value"]
    assert [f.subject for f in flags] == ["^GSPC"]
    assert "+9969.4% from 2063.11 on 2015-06-30" in flags[0].detail
    assert "not used" in flags[0].detail
    quote = snapshot.quote("^GSPC")
    assert quote is not None
    assert quote.session == date(2015, 6, 30)
    assert quote.price == _close("^GSPC", "2015-06-30")
    features = market.features(snapshot)
    assert features.last_close["^GSPC"] == _close("^GSPC", "2015-06-30")
    nxt = market.features(_snap(market, date(2015, 7, 2)))
    expected = (_close("^GSPC", "2015-07-02") / _close("^GSPC", "2015-06-30") - 1) * 100
    assert abs(nxt.returns["^GSPC"].r1 - expected) < 1e-9  # type: ignore[operator]
    settled = market.settlement_quote(
        "^GSPC", end_of_day_known(date(2015, 6, 30)) + timedelta(hours=1), replay_as_of(day)
    )
    assert settled is None  # the planted close cannot settle a call either
    assert not [f for f in _snap(market, date(2015, 8, 3)).flags if f.code == "bad_value"]


def test_cpi_times_10_is_a_bad_value_and_inflation_stays_plausible(tmp_path: Path) -> None:
    """CPI for June 2015 x10: flagged once it is published, and cpi_yoy never reads ~900%."""
    market = _market(tmp_path / "cpi", macro=_scale("CPIAUCSL", "2015-06-01", 2, 10))
    after_release = date(2015, 7, 17)
    snapshot = _snap(market, after_release)
    flags = [f for f in snapshot.flags if f.code == "bad_value"]
    assert [f.subject for f in flags] == ["CPIAUCSL"]
    cpi = next(m for m in snapshot.macro if m.series == "CPIAUCSL")
    assert cpi.observed == date(2015, 5, 1)  # the last good print
    for day in (after_release, date(2016, 6, 20)):
        yoy = market.features(_snap(market, day)).cpi_yoy
        assert yoy is not None
        assert -1.0 < yoy < 3.0
    before = _snap(market, date(2015, 7, 10))
    assert not [f for f in before.flags if f.code == "bad_value"]  # not yet published


def test_two_years_of_the_sp500_removed_is_a_gap_not_a_move(tmp_path: Path) -> None:
    """Without ^GSPC for 2010-2011, the first 2012 bar is flagged as a gap, its quote and r1 carry
    no move, and the replay runs through the missing years on the Nasdaq."""
    market = _market(
        tmp_path / "gap",
        first="2009-01-02",
        last="2012-12-31",
        keep=lambda x: not (x.split(",")[1] == "^GSPC" and "2010-01-01" <= x[:10] < "2012-01-01"),
    )
    first_back = date(2012, 1, 3)
    snapshot = _snap(market, first_back)
    gaps = [f for f in snapshot.flags if f.code == "gap"]
    assert [f.subject for f in gaps] == ["^GSPC"]
    assert "733 days" in gaps[0].detail
    quote = snapshot.quote("^GSPC")
    assert quote is not None
    assert quote.change_pct is None
    assert quote.prev_close is None
    features = market.features(snapshot)
    assert features.broad == "^GSPC"
    assert features.returns["^GSPC"].r1 is None
    assert features.breadth.broad_r1 is None
    assert features.returns["^GSPC"].r20 is None
    later = market.features(_snap(market, date(2012, 2, 2)))
    assert later.returns["^GSPC"].r20 is not None
    # The missing years are still sessions (of the Nasdaq), with the broad index falling back.
    middle = market.sessions(date(2010, 1, 1), date(2011, 12, 31))
    assert len(middle) == 504
    inside = _snap(market, date(2011, 6, 15))
    assert market.features(inside).broad == "^IXIC"
    fallback = [f for f in inside.flags if f.code == "broad_fallback"]
    assert fallback
    assert "^GSPC has no bar since 2009-12-31" in fallback[0].detail


def test_a_crash_sized_index_move_is_real_but_a_fivefold_one_is_not() -> None:
    """A -20.5% index session (1987's size) passes; a fivefold jump is set aside even without a
    trailing history; three steady closes at a new level are read as a level shift."""
    start = date(1987, 8, 3)
    closes = [300.0 * (1 + 0.001 * ((i % 5) - 2)) for i in range(40)]
    closes += [closes[-1] * 0.795, 240.0]
    bars = pl.DataFrame(
        {
            "date": [start + timedelta(days=i) for i in range(len(closes))],
            "symbol": ["^DJI"] * len(closes),
            "close": closes,
            "known_at": [datetime(1987, 8, 3, tzinfo=UTC) + timedelta(days=i) for i in range(42)],
        }
    )
    kept, found = screen_prices(bars)
    assert kept.height == bars.height
    assert found == []
    jumpy = bars.head(3).with_columns(pl.Series("close", [10.0, 55.0, 10.5]))
    kept, found = screen_prices(jumpy)
    assert [f.code for f in found] == ["bad_value"]
    assert kept["close"].to_list() == [10.0, 10.5]
    shifted = bars.with_columns(pl.Series("close", closes[:30] + [c * 100 for c in closes[30:]]))
    kept, found = screen_prices(shifted)
    assert [f.code for f in found] == ["bad_value", "bad_value", "level_shift"]
    assert kept.height == bars.height - 2
