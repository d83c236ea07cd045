"""The replay calendar is the union of the symbols' sessions, and the broad index is chosen by a
documented preference list; an as_of outside the data is refused or flagged, never 'the session'."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger, Snapshot
from shared.errors import BadInputError
from shared.features import BROAD_CANDIDATES
from shared.market import ReplayMarket, load_replay, sample_data_dir

PRICES_HEADER = "date,symbol,open,high,low,close,volume"
MACRO_HEADER = "date,series,value,released"


def _lines(name: str) -> list[str]:
    return (sample_data_dir() / name).read_text().splitlines()[1:]


def _market(
    root: Path, rows: list[str], *, macro_until: str = "2016-12-31", series: bool = True
) -> ReplayMarket:
    root.mkdir(parents=True, exist_ok=True)
    macro = [x for x in _lines("macro.csv") if x[:10] <= macro_until] if series else []
    (root / "prices.csv").write_text("\n".join([PRICES_HEADER, *rows]) + "\n")
    (root / "macro.csv").write_text("\n".join([MACRO_HEADER, *macro]) + "\n")
    return ReplayMarket(load_replay(root))


def _rows(
    first: str, last: str, rename: dict[str, str], until: dict[str, str] | None = None
) -> list[str]:
    """Shipped bars of the symbols in `rename` (renamed), each up to its `until` date."""
    out = []
    for line in _lines("prices.csv"):
        cells = line.split(",")
        if not first <= cells[0] <= last or cells[1] not in rename:
            continue
        if until and cells[0] > until.get(cells[1], "9999"):
            continue
        cells[1] = rename[cells[1]]
        out.append(",".join(cells))
    return sorted(out, key=lambda x: (x[:10], x.split(",")[1]))


def _snap(market: ReplayMarket, day: date) -> Snapshot:
    return market.snapshot(CycleTrigger(cycle_key="t", as_of=replay_as_of(day)))


def test_the_preference_list_reads_sp_then_dow_then_nasdaq() -> None:
    """The documented order: S&P 500 before the Dow before the Nasdaq before small caps."""
    order = [BROAD_CANDIDATES.index(s) for s in ("SPY", "^GSPC", "^DJI", "^IXIC", "^RUT")]
    assert order == sorted(order)


def test_without_the_sp500_the_dow_is_broad_and_the_nasdaq_tech(tmp_path: Path) -> None:
    """With only a Dow series and the Nasdaq, the Dow stands for the broad index and the Nasdaq
    for tech; every symbol has returns, volatility and a last close."""
    rows = _rows("2015-01-02", "2015-12-31", {"^GSPC": "^DJI", "^IXIC": "^IXIC", "MSFT": "MSFT"})
    market = _market(tmp_path / "dow", rows)
    features = market.features(_snap(market, date(2015, 9, 1)))
    assert (features.broad, features.tech) == ("^DJI", "^IXIC")
    for symbol in ("^DJI", "^IXIC", "MSFT"):
        assert features.returns[symbol].r20 is not None
        assert features.returns[symbol].vol20 is not None
        assert symbol in features.last_close
    assert "DGS10" in features.levels
    assert features.levels["DGS10"].sd20 is not None
    assert not [f for f in _snap(market, date(2015, 9, 1)).flags if f.subject == "broad_index"]


def test_only_the_nasdaq_is_its_own_broad_index_and_not_also_tech(tmp_path: Path) -> None:
    """The Nasdaq alone is the broad index; the tech leg is never the broad index itself."""
    market = _market(tmp_path / "ixic", _rows("2015-01-02", "2015-12-31", {"^IXIC": "^IXIC"}))
    features = market.features(_snap(market, date(2015, 9, 1)))
    assert features.broad == "^IXIC"
    assert features.tech is None


def test_the_sp500_stopping_part_way_hands_over_and_the_replay_runs_on(tmp_path: Path) -> None:
    """^GSPC ends 2015-06-30 while the Nasdaq goes on: sessions run to December, the broad index
    falls back to ^IXIC on the next session, and the snapshot says so."""
    rows = _rows(
        "2015-01-02",
        "2015-12-31",
        {"^GSPC": "^GSPC", "^IXIC": "^IXIC"},
        until={"^GSPC": "2015-06-30"},
    )
    market = _market(tmp_path / "stop", rows)
    days = market.sessions(date(2015, 1, 1), date(2015, 12, 31))
    assert days[-1] == date(2015, 12, 31)
    assert len(days) == 252
    assert market.features(_snap(market, date(2015, 6, 30))).broad == "^GSPC"
    after = _snap(market, date(2015, 7, 1))
    assert market.features(after).broad == "^IXIC"
    assert market.features(after).breadth.broad_r1 is not None
    flags = [f for f in after.flags if f.code == "broad_fallback"]
    assert len(flags) == 1
    assert "^GSPC has no bar since 2015-06-30" in flags[0].detail
    assert not [f for f in _snap(market, date(2015, 6, 30)).flags if f.code == "broad_fallback"]


def test_a_symbol_missing_on_a_session_keeps_its_last_bar_in_the_features(tmp_path: Path) -> None:
    """MSFT missing one session of the union calendar: it keeps the previous bar (dated), and a
    session it did not trade is not counted in breadth."""
    rows = [
        x
        for x in _rows("2015-01-02", "2015-12-31", {"^GSPC": "^GSPC", "MSFT": "MSFT"})
        if not (x.startswith("2015-09-01") and ",MSFT," in x)
    ]
    market = _market(tmp_path / "hole", rows)
    features = market.features(_snap(market, date(2015, 9, 1)))
    assert features.returns["MSFT"].session == date(2015, 8, 31)
    assert features.breadth.mega_count == 0
    nxt = market.features(_snap(market, date(2015, 9, 2)))
    assert nxt.returns["MSFT"].session == date(2015, 9, 2)
    assert nxt.breadth.mega_count == 1


def test_a_range_without_sessions_is_refused_naming_the_data_range(market: ReplayMarket) -> None:
    """require_sessions outside the data raises a BadInputError naming the range it holds."""
    with pytest.raises(BadInputError, match="1999-01-04 to 2018-12-31"):
        market.require_sessions(date(1990, 1, 1), date(1995, 12, 31))
    assert len(market.require_sessions(date(2016, 6, 13), date(2016, 6, 17))) == 5


def test_an_as_of_outside_the_data_or_on_no_session_is_flagged(market: ReplayMarket) -> None:
    """After the data, before it, and on a holiday the snapshot carries a loud flag; a session
    day carries none."""
    after = _snap(market, date(2019, 6, 3))
    assert [f.code for f in after.flags if f.subject == "as_of"] == ["out_of_range"]
    assert "2018-12-31" in next(f.detail for f in after.flags if f.subject == "as_of")
    before = _snap(market, date(1998, 6, 1))
    assert [f.code for f in before.flags if f.subject == "as_of"] == ["out_of_range"]
    holiday = _snap(market, date(2016, 7, 4))
    flag = next(f for f in holiday.flags if f.subject == "as_of")
    assert flag.code == "no_session"
    assert "2016-07-01" in flag.detail
    assert not [f for f in _snap(market, date(2016, 7, 5)).flags if f.subject == "as_of"]
