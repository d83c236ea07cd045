"""The database's incremental record (tallies, calibration bins, the desk's state) always equals
the record scanned from the stored rows, cannot count a call twice, and guards its state."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from services.synth.calibrate import History
from services.synth.store import history_at
from shared.contracts import ScoreLine, TrackRecord
from shared.db import record
from shared.db.aggregates import CalibrationBin, DeskState, ScoreCell, ScoreTally
from shared.db.models import AbstentionRecord, Cycle, ForecastRecord, PredictionRecord
from shared.db.session import migrate, session_scope
from shared.records import forecast_history, scanned_record, track_record

SOURCES = ("synthesis", "macro", "flow", "contrarian")
REGIMES = ("risk_on", "chop", "risk_off")
START = datetime(2016, 1, 4, 21, tzinfo=UTC)


def _url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    return url


def _same(a: TrackRecord, b: TrackRecord) -> None:
    assert [x.model_dump(exclude={"brier", "log_score", "ece", "brier_skill", "base_rate",
            "base_rate_brier", "calibration"}) for x in a.lines] == [
        x.model_dump(exclude={"brier", "log_score", "ece", "brier_skill", "base_rate",
        "base_rate_brier", "calibration"}) for x in b.lines]  # fmt: skip
    for x, y in zip(a.lines, b.lines, strict=True):
        for name in ("brier", "log_score", "ece", "brier_skill", "base_rate", "base_rate_brier"):
            assert getattr(x, name) == pytest.approx(getattr(y, name), abs=1e-12), name
        assert len(x.calibration) == len(y.calibration)


def _day(rng: random.Random, session: object, n: int, now: datetime) -> None:
    """One day of a desk: a cycle's calls and abstentions, a forecast, and settling."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    key = f"c{n}"
    session.add(Cycle(cycle_key=key, as_of=now, mode="replay"))
    session.flush()
    for source in SOURCES:
        if rng.random() < 0.3:
            session.add(AbstentionRecord(cycle_key=key, source=source,
                        regime=rng.choice(REGIMES), reason="-", made_at=now))  # fmt: skip
            continue
        session.add(
            PredictionRecord(
                cycle_key=key, source=source, target="^GSPC", direction="up",
                horizon_hours=rng.choice([24, 48]), reference_price=100.0,
                confidence=rng.uniform(0.5, 0.7), made_at=now,
                matures_at=now + timedelta(days=1), regime=rng.choice(REGIMES), topic="index",
                asset_class="equity_index", payload={},
                base_rate=rng.choice([None, rng.uniform(0.45, 0.55)]),
                withheld_by="flow|all#1" if source == "flow" and rng.random() < 0.3 else None,
            )
        )  # fmt: skip
    session.add(
        ForecastRecord(
            cycle_key=key, target="^GSPC", horizon_hours=24, reference_price=100.0,
            made_at=now, matures_at=now + timedelta(days=1), regime="chop",
            raw_probability_up=rng.uniform(0.4, 0.6), base_rate_up=rng.choice([None, 0.53]),
        )
    )  # fmt: skip
    session.flush()
    for row in session.scalars(select(PredictionRecord).where(
            PredictionRecord.status == "open", PredictionRecord.matures_at <= now)):  # fmt: skip
        row.status = rng.choice(["hit", "miss", "miss", "inconclusive"])
        row.settled_at = now
    for forecast in session.scalars(select(ForecastRecord).where(
            ForecastRecord.status == "open", ForecastRecord.matures_at <= now)):  # fmt: skip
        up = rng.random() < 0.8
        forecast.status = "settled" if up or rng.random() < 0.5 else "inconclusive"
        forecast.went_up = rng.random() < 0.5 if forecast.status == "settled" else None
        forecast.settled_at = now


def _aggregates_equal_a_scan(session: Session, now: datetime) -> None:
    """Both books' lines and the recalibration's bins, as kept, equal a scan of the rows."""
    for withheld in (False, True):
        fast = track_record(session, now, include_withheld=withheld, detail=True)
        _same(fast, scanned_record(session, now, include_withheld=withheld, detail=True))
    stored = {b: (k, u) for b, _, k, u in _bins_as_history(session)}
    scanned: dict[int, tuple[int, int]] = {}
    for p, up, _ in forecast_history(session, now):
        k, u = scanned.get(record.bin_of(p), (0, 0))
        scanned[record.bin_of(p)] = (k + 1, u + int(up))
    assert stored == scanned


def test_aggregates_equal_the_scanned_record_day_after_day(tmp_path: Path) -> None:
    """Through 40 days of calls, abstentions, withheld calls, settlements and forecasts, both
    books' lines (calibration buckets too) and the recalibration's bins equal a scan of the rows."""
    url = _url(tmp_path)
    rng = random.Random(3)
    for n in range(40):
        now = START + timedelta(days=n)
        with session_scope(url) as session:
            _day(rng, session, n, now)
        with session_scope(url) as session:
            _aggregates_equal_a_scan(session, now)
    with session_scope(url) as session:
        overall = [x for x in track_record(session, now).lines if x.regime == "all"]
        assert sum(x.calls for x in overall if x.is_overall()) > 100, "the record is not empty"


def _bins_as_history(session: object) -> list[tuple[int, int, int, float]]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return [(b, 0, n, k) for b, n, k, _ in record.bins(session)]


def test_rows_inserted_around_the_flush_fold_like_flushed_ones(tmp_path: Path) -> None:
    """Calls, abstentions and forecasts inserted by record.add_rows (the synthesis' store),
    some of them already settled, add to the aggregates as a flush of them would: both books
    and the bins equal a scan of the rows, day after day, settled later by the ORM as well."""
    url = _url(tmp_path)
    rng = random.Random(11)
    for n in range(12):
        now, key = START + timedelta(days=n), f"c{n}"
        with session_scope(url) as session:
            session.add(Cycle(cycle_key=key, as_of=now, mode="replay"))
            session.flush()
            calls, skipped = [], []
            for source in SOURCES:
                if rng.random() < 0.3:
                    skipped.append({"cycle_key": key, "source": source, "reason": "-",
                                    "regime": rng.choice(REGIMES), "made_at": now})  # fmt: skip
                    continue
                settled = rng.random() < 0.3
                calls.append({
                    "cycle_key": key, "source": source, "target": "^GSPC", "direction": "up",
                    "horizon_hours": 24, "reference_price": 100.0, "made_at": now,
                    "confidence": rng.uniform(0.5, 0.7), "matures_at": now + timedelta(days=1),
                    "regime": rng.choice(REGIMES), "topic": "index",
                    "asset_class": "equity_index", "payload": {},
                    "base_rate": rng.choice([None, 0.5]),
                    "status": rng.choice(["hit", "miss"]) if settled else "open",
                    "settled_at": now if settled else None,
                    "withheld_by": "flow|all#1" if rng.random() < 0.2 else None,
                })  # fmt: skip
            settled = rng.random() < 0.5
            forecast = {"cycle_key": key, "target": "^GSPC", "horizon_hours": 24,
                        "reference_price": 100.0, "made_at": now, "regime": "chop",
                        "matures_at": now + timedelta(days=1),
                        "raw_probability_up": rng.uniform(0.4, 0.6), "base_rate_up": 0.53,
                        "status": "settled" if settled else "open",
                        "went_up": rng.random() < 0.5 if settled else None,
                        "settled_at": now if settled else None}  # fmt: skip
            record.add_rows(session, [(PredictionRecord, calls), (AbstentionRecord, skipped),
                                      (ForecastRecord, [forecast])])  # fmt: skip
        with session_scope(url) as session:
            due = select(PredictionRecord).where(
                PredictionRecord.status == "open", PredictionRecord.matures_at <= now
            )
            for row in session.scalars(due):
                row.status, row.settled_at = rng.choice(["hit", "miss"]), now
        with session_scope(url) as session:
            _aggregates_equal_a_scan(session, now)
    with session_scope(url) as session:
        overall = [x for x in track_record(session, now).lines if x.is_overall()]
        assert sum(x.hits + x.misses for x in overall) > 10, "settled calls were counted"
        assert sum(b[1] for b in record.bins(session)) > 2, "settled forecasts were binned"


def test_a_call_settled_by_two_passes_counts_once(tmp_path: Path) -> None:
    """Two settle passes that both read a call open: the second one's update matches no row,
    rolls back, and the call is counted in the record once."""
    url = _url(tmp_path)
    with session_scope(url) as session:
        _day(random.Random(1), session, 0, START)
    later = START + timedelta(days=2)
    with session_scope(url) as first, session_scope(url) as second:
        a = first.scalars(select(PredictionRecord).where(PredictionRecord.status == "open")).all()
        b = second.scalars(select(PredictionRecord).where(PredictionRecord.status == "open")).all()
        assert a
        assert len(a) == len(b)
        for row in a:
            row.status, row.settled_at = "hit", later
        first.commit()
        for row in b:
            row.status, row.settled_at = "hit", later
        with pytest.raises(StaleDataError):
            second.flush()
        second.rollback()
    with session_scope(url) as session:
        lines = {(x.source, x.regime): x for x in track_record(session, later).lines}
        scanned = {(x.source, x.regime): x for x in scanned_record(session, later).lines}
        assert lines == scanned
        assert sum(x.hits for k, x in lines.items() if k[1] == "all") == len(a) - sum(
            1 for row in a if row.withheld_by
        )


def _same_lines(got: tuple[ScoreLine, ...], want: tuple[ScoreLine, ...]) -> None:
    """Every line alike: counts exactly, float sums to their last few bits (the aggregates less
    the later events add in another order than the scan)."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        x, y = a.model_dump(), b.model_dump()
        assert x.keys() == y.keys()
        for name, value in x.items():
            if isinstance(value, float):
                assert value == pytest.approx(y[name], rel=1e-9, abs=1e-12), (a, name)
            else:
                assert value == y[name], (a, name)


def test_an_older_cycle_reads_the_record_as_it_stood(tmp_path: Path) -> None:
    """A cycle older than the newest settlement reads the record at its own as_of (the calls
    settled after it still open, the calls made after it absent), not the aggregates' later
    state: the aggregates less the later events equal the rows scanned at that as_of, in both
    books, and so do the recalibration's bins; a far backfill (past LATER_LIMIT) reads the rows."""
    url = _url(tmp_path)
    rng = random.Random(5)
    for n in range(6):
        with session_scope(url) as session:
            _day(rng, session, n, START + timedelta(days=n))
    for back in (START + timedelta(days=2, hours=1), START + timedelta(days=4, hours=20)):
        with session_scope(url) as session:
            assert not record.usable(session, back)
            later = record.later_than(session, back)
            assert later is not None
            assert later.deltas
            for withheld in (False, True):
                old = track_record(session, back, include_withheld=withheld)
                _same_lines(
                    old.lines, scanned_record(session, back, include_withheld=withheld).lines
                )
                assert old != track_record(session, None, include_withheld=withheld)
            want = History.of(forecast_history(session, back))
            got = history_at(session, back)
            assert (got.n, got.ups) == (want.n, want.ups)
            assert {i: c[1:3] for i, c in got.bins.items()} == {
                i: c[1:3] for i, c in want.bins.items()
            }
    with session_scope(url) as session, patch.object(record, "LATER_LIMIT", 2):
        assert record.later_than(session, START + timedelta(days=2)) is None
        far = track_record(session, START + timedelta(days=2))
        assert far == scanned_record(session, START + timedelta(days=2))


def test_a_database_from_before_the_aggregates_builds_them_once(tmp_path: Path) -> None:
    """Rows stored without aggregates (built = false) are folded in by the first reader."""
    url = _url(tmp_path)
    rng = random.Random(9)
    for n in range(5):
        with session_scope(url) as session:
            _day(rng, session, n, START + timedelta(days=n))
    with session_scope(url) as session:
        for model in (ScoreTally, ScoreCell, CalibrationBin):
            session.execute(delete(model))
        session.execute(update(DeskState).values(built=False, record_through=None))
    end = START + timedelta(days=10)
    with session_scope(url) as session:
        _same(track_record(session, end, detail=True), scanned_record(session, end, detail=True))
        assert session.scalar(select(DeskState.built))
    with session_scope(url) as session:
        _same(track_record(session, end, include_withheld=True),
              scanned_record(session, end, include_withheld=True))  # fmt: skip


def test_state_is_stored_only_over_the_version_it_was_read_at(tmp_path: Path) -> None:
    """Two cycles that read the same state: the first stores its rules, stories and fit, the
    second is refused (StateConflict) and nothing of it is stored."""
    from shared.contracts import LearnedRule, Story

    url = _url(tmp_path)
    rule = LearnedRule(id="flow|risk_off#1", source="flow", regime="risk_off", created_at=START,
                       settled=120, hits=50, hit_rate=50 / 120, low=0.33, high=0.49)  # fmt: skip
    story = Story(key="drawdown:^GSPC", title="A drawdown", started=START.date(),
                  last_seen=START.date(), strength=6.0, peak=6.0)  # fmt: skip
    with session_scope(url) as session:
        read = record.load_state(session)
    with session_scope(url) as session:
        record.save_state(session, read, START, [rule], [story], (0.1, 0.2, 150))
    with session_scope(url) as session, pytest.raises(record.StateConflict):
        record.save_state(session, read, START, [], [], None)
    with session_scope(url) as session:
        state = record.load_state(session)
    assert state.version == read.version + 1
    assert state.rules == (rule,)
    assert state.stories == (story,)
    assert state.fit == (0.1, 0.2)
    from workshop import driver

    assert driver.rule_book(url) == (rule,), "`workshop rules` reads the stored book"


def test_stored_bins_are_the_recalibrations_bins() -> None:
    """The database bins pooled forecasts exactly as the recalibration's History does."""
    from services.synth.calibrate import BIN, History, logit

    assert record.BIN == BIN
    history = History()
    for p in (0.0, 0.3337, 0.5, 0.5011, 0.999):
        history.add(p, True, 0.53)
        assert record.bin_of(p) in history.bins
        assert record.logit(p) == logit(p)


def test_the_minds_start_from_the_state_tables_not_a_later_or_same_day_book(
    tmp_path: Path,
) -> None:
    """A cycle after the stored state starts from the state tables' rule book (no dispatch need
    carry it); a cycle on the state's own day or before it starts from the dispatch before it,
    so a re-run of the same day is shown the same book as the first run."""
    from shared.contracts import LearnedRule
    from shared.records import carried_book

    url = _url(tmp_path)
    rule = LearnedRule(id="macro|chop#1", source="macro", regime="chop", created_at=START,
                       settled=130, hits=50, hit_rate=50 / 130, low=0.30, high=0.47)  # fmt: skip
    with session_scope(url) as session:
        record.save_state(session, record.load_state(session), START, [rule], [], None)
    with session_scope(url) as session:
        assert carried_book(session, START + timedelta(days=1)) == ((rule,), ())
        assert carried_book(session, START) == ((), ())
        assert carried_book(session, START - timedelta(days=1)) == ((), ())


def test_the_events_after_a_moment_are_found_by_index(tmp_path: Path) -> None:
    """Reading what came after a cycle's as_of searches an index on every table: its cost is
    the later events', never the history's."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    url = _url(tmp_path)
    seen: list[tuple[str, object]] = []

    def keep(*args: object) -> None:
        seen.append((str(args[2]), args[3]))

    event.listen(Engine, "before_cursor_execute", keep)
    try:
        with session_scope(url) as session:
            record.later_than(session, START)
    finally:
        event.remove(Engine, "before_cursor_execute", keep)
    database = sqlite3.connect(tmp_path / "desk.db")
    plans = [
        [row[-1] for row in database.execute("EXPLAIN QUERY PLAN " + statement, params)]  # type: ignore[arg-type]
        for statement, params in seen
        if statement.startswith("SELECT")
    ]
    assert len(plans) == 3
    for plan in plans:
        assert not [step for step in plan if step.startswith("SCAN")], plan
        assert any("USING INDEX" in step for step in plan), plan


def test_a_stored_state_replaces_the_one_it_was_read_at(tmp_path: Path) -> None:
    """Rules and stories stored over a state are exactly the new ones, in their order: one
    dropped, one moved and changed, one kept, one added; the fit is replaced."""
    from shared.contracts import LearnedRule, Story

    url = _url(tmp_path)

    def rule(n: int, hits: int = 50) -> LearnedRule:
        return LearnedRule(id=f"flow|r{n}#1", source="flow", regime="risk_off",
                           created_at=START, settled=120, hits=hits, hit_rate=hits / 120,
                           low=0.3, high=0.5)  # fmt: skip

    def story(n: int, strength: float = 6.0) -> Story:
        return Story(key=f"drawdown:{n}", title="A drawdown", started=START.date(),
                     last_seen=START.date(), strength=strength, peak=6.0)  # fmt: skip

    books = [
        ([rule(1), rule(2), rule(3)], [story(1), story(2)], (0.1, 0.2, 150)),
        ([rule(3), rule(2, hits=40), rule(4)], [story(2, 5.0), story(3)], (0.3, 0.4, 160)),
        ([], [story(3)], (0.5, 0.6, 170)),
    ]
    for day, (rules, stories, fit) in enumerate(books):
        with session_scope(url) as session:
            read = record.load_state(session)
        with session_scope(url) as session:
            record.save_state(session, read, START + timedelta(days=day), rules, stories, fit)
        with session_scope(url) as session:
            state = record.load_state(session)
        assert (state.rules, state.stories, state.fit) == (tuple(rules), tuple(stories), fit[:2])
        assert state.version == read.version + 1


def test_the_aggregates_kept_in_a_process_are_the_databases_whoever_wrote(
    tmp_path: Path,
) -> None:
    """A process keeps the aggregates and the state it read, follows its own writes without
    reading them back, and reads them again when another process wrote (another engine stands
    for it here), also when its own write follows the other's or one of its writes rolled
    back: every read equals a scan of the rows and the state last stored."""
    kept_copy_follows_every_writer(_url(tmp_path))


def kept_copy_follows_every_writer(url: str) -> None:
    """The body of the test above, on the migrated, empty database at url (PostgreSQL's test
    runs it too)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import sessionmaker

    from shared.contracts import Story

    elsewhere = create_engine(url)
    other = sessionmaker(elsewhere)
    rng = random.Random(13)
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        for n in range(9):
            now = START + timedelta(days=n)
            ours = n % 3 != 2
            with session_scope(url) if ours else other.begin() as session:
                _day(rng, session, n, now)
                story = Story(key=f"s{n}", title="A story", started=now.date(),
                              last_seen=now.date(), strength=float(n), peak=9.0)  # fmt: skip
                record.save_state(session, record.load_state(session), now, [], [story], None)
            if not ours:  # and this process writes over it before reading anything
                with session_scope(url) as session:
                    row = {"cycle_key": f"c{n}", "source": "after", "regime": "chop",
                           "reason": "-", "made_at": now}  # fmt: skip
                    record.add_rows(session, [(AbstentionRecord, [row])])
            if n % 3 == 1:  # a write that rolls back hands nothing to the copy
                with pytest.raises(RuntimeError):
                    _rolled_back(url, f"c{n}", now)
            statements.clear()
            with session_scope(url) as session:
                for withheld in (False, True):
                    fast = track_record(session, now, include_withheld=withheld, detail=True)
                    scan = scanned_record(session, now, include_withheld=withheld, detail=True)
                    _same(fast, scan)
                got = {b: (k, u) for b, _, k, u in _bins_as_history(session)}
                state = record.load_state(session)
            with session_scope(url) as session:
                bins = select(CalibrationBin.bin, CalibrationBin.n, CalibrationBin.ups)
                want = {b: (k, u) for b, k, u in session.execute(bins)}
            assert got == want
            assert state.stories == (story,)
            read_again = any("FROM score_tallies" in s for s in statements)
            # After its own write a process reads no aggregate back; after another's, it must.
            assert read_again == (n == 0 or not ours), n
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
        elsewhere.dispose()


def _rolled_back(url: str, key: str, now: datetime) -> None:
    """A cycle's write of an abstention and a state, rolled back after both were flushed."""
    with session_scope(url) as session:
        session.add(AbstentionRecord(cycle_key=key, source="rolled", regime="chop", reason="-",
                                     made_at=now))  # fmt: skip
        record.save_state(session, record.load_state(session), now, [], [], None)
        session.flush()
        raise RuntimeError("rolled back")
