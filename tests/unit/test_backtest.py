"""The backtest: the fleet's code over real replay data in one process, point-in-time."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.calendar import replay_as_of
from shared.db.models import AbstentionRecord, Cycle, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.market import sample_data_dir
from shared.records import track_record
from workshop.backtest import run_backtest, write_report
from workshop.backtest.engine import BacktestResult
from workshop.cli import cli

PRICES_HEADER = "date,symbol,open,high,low,close,volume"
MACRO_HEADER = "date,series,value,released"


def _lines(name: str) -> list[str]:
    return (sample_data_dir() / name).read_text().splitlines()[1:]


def _replay_dir(
    root: Path,
    name: str,
    *,
    first: str,
    last: str,
    symbols: set[str] | None = None,
    series: set[str] | None = None,
    edit: Callable[[list[str]], list[str]] | None = None,
) -> Path:
    """A replay directory cut from the shipped sample: a date range, some symbols and series."""
    folder = root / name
    folder.mkdir()
    prices = [
        line
        for line in _lines("prices.csv")
        if first <= line[:10] <= last and (symbols is None or line.split(",")[1] in symbols)
    ]
    if edit is not None:
        prices = edit(prices)
    macro = [
        line
        for line in _lines("macro.csv")
        if line[:10] <= last and (series is None or line.split(",")[1] in series)
    ]
    (folder / "prices.csv").write_text("\n".join([PRICES_HEADER, *prices]) + "\n")
    (folder / "macro.csv").write_text("\n".join([MACRO_HEADER, *macro]) + "\n")
    return folder


REQUIRED = ("calls", "abstentions", "hits", "misses", "inconclusive", "hit_rate", "brier",
            "base_rate_brier", "brier_skill", "ece", "brier_skill_se", "brier_skill_naive",
            "brier_skill_naive_se", "brier_majority", "reliability", "resolution",
            "uncertainty", "by_kind", "by_target")  # fmt: skip
KIND_FIELDS = ("hits", "misses", "brier", "brier_skill", "brier_skill_se", "brier_skill_naive",
               "brier_skill_naive_se", "brier_majority", "reliability", "resolution",
               "uncertainty", "ece")  # fmt: skip


def test_report_fields_on_a_short_range_of_the_real_data(tmp_path: Path) -> None:
    """`workshop backtest` over 2015 writes report.json with every figure, the page and plots."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["backtest", "--from", "2015-01-02", "--to", "2015-12-31", "--report", str(out),
         "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    assert data["cycles"] == 252  # the NYSE's trading days of 2015
    assert data["seconds"] > 0
    assert set(data["minds"]) == {"macro", "flow", "contrarian"}
    for block in (data["synthesis"], *data["minds"].values()):
        assert set(REQUIRED) <= set(block)
        settled = block["hits"] + block["misses"]
        assert block["calls"] == settled + block["inconclusive"] + block["open"]
        assert block["calls"] + block["abstentions"] == data["cycles"]
        if settled:
            assert block["hit_rate"] == pytest.approx(block["hits"] / settled, abs=1e-5)
        for group in (*block["by_kind"].values(), *block["by_target"].values()):
            assert set(KIND_FIELDS) <= set(group)
        assert sum(k["hits"] + k["misses"] for k in block["by_kind"].values()) == settled
    synthesis = data["synthesis"]
    # Warm-started, the desk calls through the year, and more than one kind.
    assert len(synthesis["by_kind"]) >= 2
    assert data["call_mix"]["calls"] > 100
    page = (out / "report.md").read_text()
    first = page.split("\n\n")[1]
    assert first.startswith(f"**The synthesis made {data['call_mix']['calls']} calls")
    for kind in data["call_mix"]["by_kind"]:
        assert kind in first
    assert "| synthesis |" in page
    assert "Brier skill" in page
    for figure in ("reliability.png", "rolling.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"


def _comparable(result: BacktestResult, before: date) -> list[object]:
    rows = [
        (r.day, r.regime, r.raw_probability_up, r.probability_up, r.direction, r.minds)
        for r in result.rows
        if r.day < before
    ]
    settled = [
        (s.prediction.made_at, s.source, s.outcome, s.settle_price)
        for s in result.ledger.settled
        # Calls maturing on or after the planted day settle on it (5-session calls too).
        if s.prediction.matures_at.date() < before
    ]
    return [rows, settled]


def test_a_planted_future_price_is_never_read_before_its_day(tmp_path: Path) -> None:
    """A ^GSPC close x1.2 on 2016-03-15 (within sanity bounds) changes nothing any cycle saw
    before that day, and changes what the cycle of that day sees (it would show if read early)."""
    planted = date(2016, 3, 15)

    def plant(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            cells = line.split(",")
            if cells[0] == planted.isoformat() and cells[1] == "^GSPC":
                cells[5] = f"{float(cells[5]) * 1.2:.2f}"
            out.append(",".join(cells))
        return out

    clean = _replay_dir(tmp_path, "clean", first="2015-01-02", last="2016-06-30")
    dirty = _replay_dir(tmp_path, "dirty", first="2015-01-02", last="2016-06-30", edit=plant)
    start, end = date(2015, 3, 2), date(2016, 6, 30)
    a = run_backtest(clean, start, end)
    b = run_backtest(dirty, start, end)
    assert a.cycles == b.cycles > 300
    # Calls maturing on the planted day settle on the planted close, legitimately after it.
    day_before = date(2016, 3, 14)
    assert _comparable(a, day_before) == _comparable(b, day_before)
    seen_a = next(r for r in a.rows if r.day == planted)
    seen_b = next(r for r in b.rows if r.day == planted)
    assert (seen_a.regime, seen_a.minds) != (seen_b.regime, seen_b.minds)


def test_a_directory_with_only_the_sp500(tmp_path: Path) -> None:
    """Only ^GSPC and no macro: the backtest runs, flags the gaps, the minds that can call do."""
    folder = _replay_dir(
        tmp_path, "gspc", first="2012-01-03", last="2012-12-31", symbols={"^GSPC"}, series=set()
    )
    result = run_backtest(folder, date(2012, 1, 1), date(2012, 12, 31))
    assert result.cycles == 250
    assert result.flags["missing_series: ^VIX"] == 250
    assert result.flags["missing_series: DGS10"] == 250
    data = write_report(result, tmp_path / "out")
    assert data["minds"]["flow"]["calls"] > 0
    assert data["minds"]["macro"]["calls"] == 0  # no rates, inflation or jobs data: it abstains
    assert data["minds"]["macro"]["abstentions"] == 250


def test_a_directory_with_only_the_nasdaq_and_a_few_macro_series(tmp_path: Path) -> None:
    """Only ^IXIC and CPI/fed funds, no S&P at all: the Nasdaq stands for the broad index, the
    backtest runs over the whole range and the minds' calls on it are judged to the end."""
    folder = _replay_dir(
        tmp_path,
        "ixic",
        first="2012-01-03",
        last="2012-06-29",
        symbols={"^IXIC"},
        series={"CPIAUCSL", "FEDFUNDS"},
    )
    result = run_backtest(folder, date(2012, 1, 1), date(2012, 6, 30))
    assert result.cycles == 125
    assert (result.start, result.end) == (date(2012, 1, 3), date(2012, 6, 29))
    assert result.flags["missing_series: broad_index"] == 0
    assert {r.target for r in result.rows} == {"^IXIC"}
    judged = [s for s in result.ledger.settled if s.outcome in ("hit", "miss")]
    assert {s.prediction.target for s in judged} == {"^IXIC"}
    made = sorted(s.prediction.made_at.date() for s in judged)
    assert made[0] <= date(2012, 1, 31)
    assert made[-1] >= date(2012, 6, 26)
    data = write_report(result, tmp_path / "out")
    assert data["minds"]["flow"]["calls"] > 0
    assert (tmp_path / "out" / "reliability.png").exists()


def test_the_backtest_record_equals_the_fleets_record_of_the_same_calls(tmp_path: Path) -> None:
    """The ledger's in-memory scoreboard and the database's track record, fed the same settled
    calls, give the same overall and regime lines the synthesis weighs minds by."""
    result = run_backtest(None, date(2015, 1, 2), date(2015, 6, 30))
    ledger = result.ledger
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    keys = {s.cycle_key for s in ledger.settled} | {r.cycle_key for r in result.rows}
    with session_scope(url) as session:
        session.add_all(
            Cycle(cycle_key=k, as_of=replay_as_of(date.fromisoformat(k[-10:])), mode="replay")
            for k in keys
        )
        session.flush()
        for s in ledger.settled:
            p = s.prediction
            session.add(
                PredictionRecord(
                    cycle_key=s.cycle_key, source=p.source, target=p.target,
                    direction=p.direction, horizon_hours=p.horizon_hours,
                    reference_price=p.reference_price, confidence=p.confidence,
                    made_at=p.made_at, matures_at=p.matures_at, regime=p.regime, topic=p.topic,
                    asset_class=p.asset_class, base_rate=p.base_rate, payload={},
                    status=s.outcome, settled_at=s.settled_at, withheld_by=s.withheld_by,
                )
            )  # fmt: skip
        session.add_all(
            AbstentionRecord(
                cycle_key=row.cycle_key, source="synthesis", regime=row.regime, reason="-",
                made_at=replay_as_of(row.day),
            )
            for row in result.rows
            if row.direction is None
        )  # fmt: skip
    end = replay_as_of(result.rows[-1].day)
    memory = {(x.source, x.regime): x for x in ledger.record(end).lines}
    with session_scope(url) as session:
        stored = track_record(session, end)
    for line in stored.lines:
        if not line.is_overall():
            continue
        twin = memory[(line.source, line.regime)]
        assert (line.calls - line.open, line.hits, line.misses) == (
            twin.calls - twin.open,
            twin.hits,
            twin.misses,
        )
        assert line.brier == pytest.approx(twin.brier)
        assert line.brier_skill == pytest.approx(twin.brier_skill)
        if line.source == "synthesis":
            assert line.abstentions == twin.abstentions


def test_writing_every_dispatch_changes_no_call_and_the_shown_words_are_the_same() -> None:
    """The backtest writes only the words its report shows: with every cycle's words written (as
    the fleet does) the calls, the record and the last dispatch's and last call's words are the
    same, and the cycles in between carry no words."""
    start, end = date(2015, 1, 2), date(2015, 3, 31)
    lean = run_backtest(None, start, end)
    full = run_backtest(None, start, end, write_every=True)
    assert lean.rows == full.rows
    assert lean.ledger.settled == full.ledger.settled
    assert lean.ledger.forecasts == full.ledger.forecasts
    assert lean.rules == full.rules
    assert lean.last_dispatch is not None
    assert full.last_dispatch is not None
    assert lean.last_dispatch == full.last_dispatch
    assert lean.last_call == full.last_call
    assert lean.last_dispatch.body_md.startswith(f"**Cycle {len(lean.rows)} |")
