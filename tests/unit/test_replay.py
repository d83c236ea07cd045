"""Tests of the replay market port on slices of the real shipped data."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import polars as pl
import pytest

import shared
from shared.calendar import (
    END_OF_DAY_KNOWN,
    at_new_york,
    end_of_day_known,
    release_known,
    replay_as_of,
)
from shared.contracts import CycleTrigger, Snapshot
from shared.errors import ReplayFormatError
from shared.market import ReplayData, ReplayMarket, load_replay, sample_data_dir
from shared.market.replay import ROW_BLOCK, ROW_CACHE_BLOCKS
from shared.ports import MarketData

SAMPLE = sample_data_dir()
PRICES_HEADER = "date,symbol,open,high,low,close,volume"
MACRO_HEADER = "date,series,value,released"
NEWS_HEADER = "published_at,source,title,summary,url"


def _lines(name: str, start: str, end: str) -> list[str]:
    """Data lines of a shipped CSV whose date (first column) is in [start, end]."""
    rows = (SAMPLE / name).read_text().splitlines()[1:]
    return [row for row in rows if start <= row[:10] <= end]


def _write(directory: Path, prices: list[str], macro: list[str], news: list[str] | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prices.csv").write_text("\n".join([PRICES_HEADER, *prices]) + "\n")
    (directory / "macro.csv").write_text("\n".join([MACRO_HEADER, *macro]) + "\n")
    if news is not None:
        (directory / "news.csv").write_text("\n".join([NEWS_HEADER, *news]) + "\n")
    return directory


def _snap(market: MarketData, as_of: datetime) -> Snapshot:
    return market.snapshot(CycleTrigger(cycle_key="test", as_of=as_of))


# --- loading -------------------------------------------------------------------------------------


def test_sample_loads_with_schema_and_known_times(sample: ReplayData) -> None:
    """The shipped sample loads whole, typed, with known_at from the calendar's conventions."""
    assert sample.prices.height == 18400
    assert sample.macro.height == 55503
    assert sample.news.height == 203  # real headlines, 2015-06-01 to 2015-09-15
    assert sample.has_news_file
    assert sample.prices.schema["date"] == pl.Date
    assert sample.prices.schema["known_at"] == pl.Datetime("us", "UTC")
    for day in (date(2016, 1, 4), date(2016, 6, 14)):  # winter and summer time
        bar = sample.prices.filter((pl.col("date") == day) & (pl.col("symbol") == "^GSPC"))
        assert bar["known_at"].item() == end_of_day_known(day)
    cpi = sample.macro.filter(
        (pl.col("series") == "CPIAUCSL") & (pl.col("date") == date(2016, 5, 1))
    )
    assert cpi["known_at"].item() == release_known(date(2016, 6, 15))
    dgs10 = sample.macro.filter(
        (pl.col("series") == "DGS10") & (pl.col("date") == date(2016, 6, 14))
    )
    assert dgs10["known_at"].item() == end_of_day_known(date(2016, 6, 14))


def test_sample_data_dir_is_inside_the_package() -> None:
    """The sample is found beside the package so that a fresh clone needs nothing outside it."""
    assert Path(shared.__file__).resolve().parent / "data" / "replay-dev" == SAMPLE
    assert (SAMPLE / "prices.csv").is_file()


def test_macro_with_only_a_header_and_a_news_file_load(tmp_path: Path) -> None:
    """An empty macro.csv is valid, and news with quoted commas and newlines is read in UTC."""
    news = [
        '2016-06-14T10:00:00-04:00,wire,"Fed, as expected, holds","two\nlines",http://x',
    ]
    data = load_replay(_write(tmp_path, _lines("prices.csv", "2016-06-01", "2016-06-14"), [], news))
    assert data.macro.is_empty()
    assert data.news["title"].to_list() == ["Fed, as expected, holds"]
    assert data.news["summary"].item() == "two\nlines"
    assert data.news["published_at"].item() == datetime(2016, 6, 14, 14, tzinfo=UTC)


GOOD_PRICE = "2016-06-14,^GSPC,2076.65,2081.3,2064.1,2075.32,3759770000"
GOOD_MACRO = "2016-05-01,CPIAUCSL,239.557,2016-06-15"


@pytest.mark.parametrize(
    ("file", "bad_line", "problem"),
    [
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,-3,100", "close must be positive, got -3"),
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,,100", "close is missing"),
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,0,100", "close must be positive, got 0"),
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,3,-5", "volume must not be negative, got -5"),
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,3,lots", "volume must be a number, got lots"),
        ("prices.csv", "2016-13-15,^GSPC,1,2,1,3,100", "date must be a date YYYY-MM-DD"),
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,3", "expected 7 columns, got 6"),
        ("prices.csv", "2016-06-15,^GSPC,1,2,1,3,100,9", "expected 7 columns, got 8"),
        ("prices.csv", "", "expected 7 columns, got 0"),
        ("prices.csv", GOOD_PRICE, "duplicate bar for ^GSPC on 2016-06-14"),
        ("macro.csv", "2016-05-01,CPILFESL,n/a,2016-06-15", "value must be a number, got n/a"),
        ("macro.csv", "2016-05-01,CPILFESL,1.0,2016-04-15", "released 2016-04-15 is before"),
        ("macro.csv", "2016-05-01,CPILFESL,1.0,June", "released must be a date YYYY-MM-DD"),
        ("macro.csv", "2016-05-01,CPILFESL,1.0", "expected 4 columns, got 3"),
        ("news.csv", "2016-06-14T10:00:00,wire,Title,,", "published_at has no timezone offset"),
        ("news.csv", "yesterday,wire,Title,,", "published_at must be ISO-8601"),
        ("news.csv", "2016-06-14T10:00:00Z,wire,Title,", "expected 5 columns, got 4"),
    ],
)
def test_bad_row_names_file_line_and_problem(
    tmp_path: Path, file: str, bad_line: str, problem: str
) -> None:
    """A bad row raises ReplayFormatError with the file, its 1-based line and what was wrong."""
    prices = [GOOD_PRICE, *(["2016-06-13,^GSPC,1,2,1,3,100"])]
    macro = [GOOD_MACRO]
    news = ["2016-06-14T10:00:00-04:00,wire,Fine,,"]
    {"prices.csv": prices, "macro.csv": macro, "news.csv": news}[file].append(bad_line)
    _write(tmp_path, prices, macro, news)
    with pytest.raises(ReplayFormatError) as caught:
        load_replay(tmp_path)
    error = caught.value
    expected_line = {"prices.csv": 4, "macro.csv": 3, "news.csv": 3}[file]
    assert Path(error.path) == tmp_path / file
    assert error.line == expected_line
    assert problem in error.problem
    assert not error.problem.endswith(".0")  # cells are quoted as written
    assert str(error).startswith(f"{tmp_path / file}:{expected_line}: ")


def test_first_offending_line_wins_across_checks(tmp_path: Path) -> None:
    """With several bad rows the earliest line is reported, whichever check catches it."""
    prices = [
        GOOD_PRICE,
        "2016-06-15,^GSPC,1,2,1,3,-1",  # line 3: negative volume (a later check)
        "2016-06-16,^GSPC,1,2,1,3,xx",  # line 4: not a number (an earlier check)
    ]
    _write(tmp_path, prices, [GOOD_MACRO], None)
    with pytest.raises(ReplayFormatError) as caught:
        load_replay(tmp_path)
    assert caught.value.line == 4  # parse errors are reported before value checks run
    prices[2] = "2016-06-16,^GSPC,1,2,1,-2,5"
    _write(tmp_path, prices, [GOOD_MACRO], None)
    with pytest.raises(ReplayFormatError) as caught:
        load_replay(tmp_path)
    assert caught.value.line == 3
    assert "volume must not be negative" in caught.value.problem


@pytest.mark.parametrize("missing", ["prices.csv", "macro.csv"])
def test_missing_required_file_is_named(tmp_path: Path, missing: str) -> None:
    """A replay directory without prices.csv or macro.csv is an error naming the file."""
    _write(tmp_path, [GOOD_PRICE], [GOOD_MACRO], None)
    (tmp_path / missing).unlink()
    with pytest.raises(ReplayFormatError, match=missing) as caught:
        load_replay(tmp_path)
    assert caught.value.line is None


@pytest.mark.parametrize(
    ("file", "header"),
    [
        ("prices.csv", "date,symbol,open,high,low,close"),
        ("prices.csv", "Date,Symbol,Open,High,Low,Close,Volume"),
        ("macro.csv", "date,series,released,value"),
    ],
)
def test_wrong_header_is_line_one(tmp_path: Path, file: str, header: str) -> None:
    """A header that is not exactly the documented one is reported on line 1."""
    _write(tmp_path, [GOOD_PRICE], [GOOD_MACRO], None)
    body = (tmp_path / file).read_text().split("\n", 1)[1]
    (tmp_path / file).write_text(header + "\n" + body)
    with pytest.raises(ReplayFormatError, match="header must be exactly") as caught:
        load_replay(tmp_path)
    assert caught.value.line == 1


# --- point in time -------------------------------------------------------------------------------

# Noon New York on the day May 2016 CPI came out (08:30): that day's bars are not closed yet.
AS_OF = at_new_york(date(2016, 6, 15), time(12, 0))


def _known_at_noon(macro_line: str) -> bool:
    day, _series, _value, released = macro_line.split(",")
    return released < "2016-06-15" or (released == "2016-06-15" and day != released)


def test_future_data_never_reaches_snapshot_or_features(tmp_path: Path) -> None:
    """Anything known after as_of (bars, a new symbol, late releases, news) changes nothing."""
    prices = _lines("prices.csv", "2015-01-01", "2016-12-31")
    macro = _lines("macro.csv", "2014-01-01", "2016-12-31")
    in_window = "2016-06-14T10:00:00-04:00,wire,Seen headline,,"
    too_old = "2016-06-12T11:59:00-04:00,wire,Older than 72h,,"
    future_news = "2016-06-15T12:00:01-04:00,wire,One second too late,,"
    # The future carries an absurd close and a brand-new broad-index symbol that would take over
    # the broad role if roles were chosen over the whole file; `macro` already holds values dated
    # before as_of but released after it (June 2016 CPI, out on 2016-07-15).
    planted = [
        "2016-06-15,^GSPC,1,1,1,99999,1" if line.startswith("2016-06-15,^GSPC") else line
        for line in prices
    ]
    planted += [f"2016-06-{d},SPY,1,1,1,1,1" for d in (15, 16, 17)]
    full = _write(tmp_path / "full", planted, macro, [too_old, in_window, future_news])
    known = _write(
        tmp_path / "known",
        [p for p in prices if p[:10] < "2016-06-15"],
        [m for m in macro if _known_at_noon(m)],
        [too_old, in_window],
    )
    full_market = ReplayMarket(load_replay(full))
    known_market = ReplayMarket(load_replay(known))
    full_snap, known_snap = _snap(full_market, AS_OF), _snap(known_market, AS_OF)

    assert full_snap == known_snap
    assert full_market.features(full_snap) == known_market.features(known_snap)
    gspc = full_snap.quote("^GSPC")
    assert gspc is not None
    assert gspc.session == date(2016, 6, 14)
    assert full_snap.quote("SPY") is None
    assert [n.title for n in full_snap.news] == ["Seen headline"]
    assert full_market.features(full_snap).broad == "^GSPC"


def test_cpi_release_lag_at_0830_new_york(market: ReplayMarket) -> None:
    """May 2016 CPI (released 2016-06-15) is invisible at 08:29 New York and visible at 08:30."""
    before = _snap(market, at_new_york(date(2016, 6, 15), time(8, 29)))
    after = _snap(market, release_known(date(2016, 6, 15)))
    cpi_before = next(m for m in before.macro if m.series == "CPIAUCSL")
    cpi_after = next(m for m in after.macro if m.series == "CPIAUCSL")
    assert (cpi_before.observed, cpi_before.value) == (date(2016, 4, 1), 238.992)
    assert (cpi_after.observed, cpi_after.value) == (date(2016, 5, 1), 239.557)
    assert cpi_after.released_at == release_known(date(2016, 6, 15))


def test_daily_fixing_is_known_only_after_the_close(market: ReplayMarket) -> None:
    """A day's 10-year yield and bar enter after 17:00 New York that day, not at the open."""
    midday = _snap(market, at_new_york(date(2016, 6, 14), time(15, 0)))
    evening = _snap(market, replay_as_of(date(2016, 6, 14)))
    observed = [next(m for m in s.macro if m.series == "DGS10").observed for s in (midday, evening)]
    assert observed == [date(2016, 6, 13), date(2016, 6, 14)]
    sessions = [s.quote("^GSPC").session for s in (midday, evening)]  # type: ignore[union-attr]
    assert sessions == [date(2016, 6, 13), date(2016, 6, 14)]


def test_quote_carries_close_previous_close_and_change(market: ReplayMarket) -> None:
    """A quote is the last known bar: close, the previous close and the change between them."""
    quote = _snap(market, replay_as_of(date(2016, 6, 14))).quote("^GSPC")
    assert quote is not None
    assert (quote.price, quote.prev_close, quote.volume) == (2075.32, 2079.06, 3759770000)
    assert quote.change_pct == pytest.approx((2075.32 / 2079.06 - 1) * 100)
    assert quote.observed_at == end_of_day_known(date(2016, 6, 14))


# --- flags ---------------------------------------------------------------------------------------


def test_msft_after_its_last_bar_is_flagged_not_quoted(market: ReplayMarket) -> None:
    """MSFT (last bar 2017-11-10) is quoted for five sessions, then flagged stale and left out."""
    recent = _snap(market, replay_as_of(date(2017, 11, 14)))
    quote = recent.quote("MSFT")
    assert quote is not None
    assert quote.session == date(2017, 11, 10)
    later = _snap(market, replay_as_of(date(2017, 11, 20)))
    assert later.quote("MSFT") is None
    flag = next(f for f in later.flags if f.subject == "MSFT")
    assert flag.code == "stale_series"
    assert "2017-11-10" in flag.detail
    prices = next(h for h in later.health if h.source == "replay.prices")
    assert prices.status == "partial"


def test_vix_missing_in_2010_is_a_flag_and_unknown_feature(market: ReplayMarket) -> None:
    """No ^VIX before 2014: a missing_series flag in plain words, and features.vix is None."""
    snap = _snap(market, replay_as_of(date(2010, 6, 1)))
    assert snap.quote("^VIX") is None
    flag = next(f for f in snap.flags if f.subject == "^VIX")
    assert flag.code == "missing_series"
    assert "no VIX" in flag.detail
    features = market.features(snap)
    assert features.vix is None
    assert "vix" in features.unknown
    assert features.regime != "unknown"  # realised volatility stands in


def test_yields_after_march_2017_are_flagged_and_slope_unknown(market: ReplayMarket) -> None:
    """DGS10/DGS2 stop on 2017-03-29: later snapshots leave them out with a flag, slope is None."""
    last = _snap(market, replay_as_of(date(2017, 3, 29)))
    assert market.features(last).curve_slope == pytest.approx(2.39 - 1.26)
    snap = _snap(market, replay_as_of(date(2017, 6, 1)))
    assert not {"DGS10", "DGS2"} & {m.series for m in snap.macro}
    flagged = {f.subject: f.code for f in snap.flags}
    assert flagged["DGS10"] in {"stale_series", "missing_series"}
    assert flagged["DGS2"] in {"stale_series", "missing_series"}
    features = market.features(snap)
    assert features.curve_slope is None
    assert {"curve_slope", "curve_slope_change_20d"} <= set(features.unknown)


def test_no_news_file_is_flagged(market: ReplayMarket) -> None:
    """Past the sample's headlines (2015): an empty news feed health and a no_news flag."""
    snap = _snap(market, replay_as_of(date(2016, 6, 14)))
    assert snap.news == ()
    assert any(f.code == "no_news" for f in snap.flags)
    news = next(h for h in snap.health if h.source == "replay.news")
    assert news.status == "empty"
    assert {h.source for h in snap.health} == {"replay.prices", "replay.macro", "replay.news"}


def test_replay_market_satisfies_the_port(market: ReplayMarket) -> None:
    """ReplayMarket is a MarketData as the services see it."""
    assert isinstance(market, MarketData)


# --- features, settlement and calendar through the port ------------------------------------------


def test_features_before_any_history_are_all_unknown(market: ReplayMarket) -> None:
    """Before the first session closes, features exist but every value is unknown."""
    features = market.features(_snap(market, datetime(1999, 1, 4, 12, tzinfo=UTC)))
    assert features.regime == "unknown"
    assert features.returns == {}
    assert "history" in features.unknown


def test_feature_frame_is_computed_once(market: ReplayMarket) -> None:
    """Repeated calls reuse one frame over the whole history instead of recomputing it."""
    assert market.feature_frame() is market.feature_frame()
    snap = _snap(market, replay_as_of(date(2016, 6, 14)))
    assert market.features(snap).session == date(2016, 6, 14)


def test_a_long_replay_keeps_a_bounded_row_cache_and_the_same_features(
    sample: ReplayData,
) -> None:
    """Reading three years of sessions in order keeps at most ROW_CACHE_BLOCKS blocks of rows in
    memory (not every session ever read), and each session's features, read again after its
    block was dropped, equal those of a market that never dropped it."""
    reading = ReplayMarket(sample)
    days = reading.sessions(date(2013, 1, 1), date(2015, 12, 31))
    first = [reading.features(_snap(reading, replay_as_of(day))) for day in days]
    assert len(days) > 2 * ROW_CACHE_BLOCKS * ROW_BLOCK
    assert len(reading._rows) <= ROW_CACHE_BLOCKS * ROW_BLOCK
    again = [reading.features(_snap(reading, replay_as_of(day))) for day in days[:40]]
    fresh = ReplayMarket(sample)
    assert again == first[:40]
    assert again == [fresh.features(_snap(fresh, replay_as_of(day))) for day in days[:40]]


def test_friday_maturity_settles_on_monday_close(market: ReplayMarket) -> None:
    """A call maturing Friday evening settles on Monday's close, and only once Monday is known."""
    matures = replay_as_of(date(2016, 6, 17))  # Friday 17:30, after Friday's close
    monday = date(2016, 6, 20)
    assert market.settlement_quote("^GSPC", matures, at_new_york(monday, time(16, 30))) is None
    quote = market.settlement_quote("^GSPC", matures, end_of_day_known(monday))
    assert quote is not None
    assert (quote.session, quote.price, quote.prev_close) == (monday, 2083.25, 2071.22)


def test_maturity_at_the_close_settles_on_that_session(market: ReplayMarket) -> None:
    """A maturity exactly at Friday's 16:00 close takes Friday's bar; unknown symbols give None."""
    friday = date(2016, 6, 17)
    matures = at_new_york(friday, time(16, 0))
    quote = market.settlement_quote("^GSPC", matures, at_new_york(friday, END_OF_DAY_KNOWN))
    assert quote is not None
    assert quote.session == friday
    assert market.settlement_quote("NOPE", matures, replay_as_of(friday)) is None
    after_end = replay_as_of(date(2019, 1, 2))
    assert market.settlement_quote("^GSPC", after_end, datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_sessions_are_broad_index_trading_days(market: ReplayMarket) -> None:
    """sessions() lists the broad index's trading days, both ends inclusive, holidays skipped."""
    assert market.sessions(date(2016, 6, 13), date(2016, 6, 17)) == [
        date(2016, 6, d) for d in (13, 14, 15, 16, 17)
    ]
    july = market.sessions(date(2016, 7, 1), date(2016, 7, 6))
    assert july == [date(2016, 7, 1), date(2016, 7, 5), date(2016, 7, 6)]
    assert market.sessions(date(1990, 1, 1), date(1999, 1, 5)) == [
        date(1999, 1, 4),
        date(1999, 1, 5),
    ]
    assert len(market.sessions(date(1999, 1, 1), date(2018, 12, 31))) == 5031
