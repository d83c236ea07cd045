"""A replay cycle's number is kept as cycles are claimed (shared.db.moments), equals counting the
replay's earlier moments whatever the order, and a cycle's queries search by index."""

from __future__ import annotations

import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import event, insert, select, text, update
from sqlalchemy.engine import Engine

from services.ingest.cycle import claim, mark_launched
from services.minds.think import think
from services.resolver.resolve import settle_matured
from services.synth.store import store_cycle
from services.synth.synthesize import synthesize
from shared.brain.offline import OfflineBrain
from shared.calendar import replay_as_of
from shared.contracts import CycleTrigger
from shared.db import record
from shared.db.aggregates import DeskState, ReplayMoment
from shared.db.models import Cycle
from shared.db.session import alembic_config, engine_for, migrate, session_scope
from shared.market.opening import replay_market
from shared.records import cycle_number

START = datetime(2016, 1, 4, 21, tzinfo=UTC)
DIRS = (None, "/data/other-replay")


def _url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    return url


def _counted(cycles: list[tuple[str, datetime, str, str | None]], as_of: datetime,
             data_dir: str | None) -> int:  # fmt: skip
    """The number by its definition: 1 + the replay's distinct moments before as_of."""
    return 1 + len({a for _, a, mode, d in cycles if mode == "replay" and d == data_dir
                    and a < as_of})  # fmt: skip


def _shuffled_cycles(seed: int) -> list[tuple[str, datetime, str, str | None]]:
    """Cycles of two replays and a live desk, run out of order, some moments run twice."""
    rng = random.Random(seed)
    cycles = []
    for n in range(40):
        moment = START + timedelta(days=rng.randrange(25))
        mode = "live" if rng.random() < 0.15 else "replay"
        cycles.append((f"c{n}", moment, mode, rng.choice(DIRS) if mode == "replay" else None))
    return cycles


def _numbers(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {c.cycle_key: cycle_number(session, c) for c in session.scalars(select(Cycle))}


def _moments(url: str) -> list[tuple[str | None, datetime, int]]:
    with session_scope(url) as session:
        rows = session.execute(select(ReplayMoment.data_dir, ReplayMoment.as_of,
                                      ReplayMoment.number)).all()  # fmt: skip
    return sorted(((d, a, n) for d, a, n in rows), key=lambda r: (r[0] or "", r[1]))


def _expected_moments(
    cycles: list[tuple[str, datetime, str, str | None]],
) -> list[tuple[str | None, datetime, int]]:
    found = {(d, a) for _, a, mode, d in cycles if mode == "replay"}
    return sorted(((d, a, _counted(cycles, a, d)) for d, a in found),
                  key=lambda r: (r[0] or "", r[1]))  # fmt: skip


def test_cycles_claimed_out_of_order_are_numbered_by_as_of(tmp_path: Path) -> None:
    """Each replay's moments are held once, numbered 1.. in as_of order, however the cycles came."""
    url = _url(tmp_path)
    cycles = _shuffled_cycles(3)
    for key, as_of, mode, data_dir in cycles:
        with session_scope(url) as session:
            session.add(Cycle(cycle_key=key, as_of=as_of, mode=mode, data_dir=data_dir))
    assert _moments(url) == _expected_moments(cycles)
    numbers = _numbers(url)
    with session_scope(url) as session:
        ids = {c.cycle_key: c.id for c in session.scalars(select(Cycle))}
    for key, as_of, mode, data_dir in cycles:
        expected = _counted(cycles, as_of, data_dir) if mode == "replay" else ids[key]
        assert numbers[key] == expected, key


def test_cycles_claimed_out_of_order_by_the_ingest_are_numbered_by_as_of(tmp_path: Path) -> None:
    """The ingest's claim (which writes its row without the ORM) places its moment as a flush
    would: a day claimed before later ones moves them up, a day claimed again under another key
    keeps its number, and each claim's context shows the number counting would give."""
    url = _url(tmp_path)
    market = replay_market(None)
    days = market.sessions(date(2015, 8, 3), date(2015, 8, 28))
    order = [days[n] for n in (9, 3, 14, 0, 3, 7, 18, 1, 9)]
    claimed: list[tuple[str, datetime, str, str | None]] = []
    for n, day in enumerate(order):
        trigger = CycleTrigger(cycle_key=f"claim-{n}", as_of=replay_as_of(day))
        snapshot = market.snapshot(trigger)
        with session_scope(url) as session:
            context = claim(session, trigger, snapshot, market.features(snapshot))
        assert context is not None
        claimed.append((trigger.cycle_key, trigger.as_of, "replay", None))
        assert context.cycle_number == _counted(claimed, trigger.as_of, None), day
    assert _moments(url) == _expected_moments(claimed)
    numbers = _numbers(url)
    for key, as_of, _, _ in claimed:
        assert numbers[key] == _counted(claimed, as_of, None), key


def test_claims_of_one_replay_at_once_take_turns(tmp_path: Path) -> None:
    """Claims running at once, each in its own connection, still number every moment once: the
    claim's insert takes SQLite's writer lock before its moment's neighbours are read."""
    url = _url(tmp_path)
    market = replay_market(None)
    days = market.sessions(date(2015, 8, 3), date(2015, 9, 25))
    rng = random.Random(2)
    picked = [rng.choice(days) for _ in range(24)]

    def claim_one(n: int) -> None:
        trigger = CycleTrigger(cycle_key=f"at-once-{n}", as_of=replay_as_of(picked[n]))
        snapshot = market.snapshot(trigger)
        with session_scope(url) as session:
            assert claim(session, trigger, snapshot, market.features(snapshot)) is not None

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(claim_one, range(len(picked))))
    claimed: list[tuple[str, datetime, str, str | None]]
    claimed = [(f"at-once-{n}", replay_as_of(d), "replay", None) for n, d in enumerate(picked)]
    assert _moments(url) == _expected_moments(claimed)


def test_the_number_is_read_from_the_moments_not_counted(tmp_path: Path) -> None:
    """A placed moment's stored number is what the cycle shows (one lookup, no count)."""
    url = _url(tmp_path)
    with session_scope(url) as session:
        session.add(Cycle(cycle_key="a", as_of=START, mode="replay"))
    with session_scope(url) as session:
        session.execute(update(ReplayMoment).values(number=41))
    assert _numbers(url) == {"a": 41}


def test_cycles_written_around_the_orm_are_numbered_by_the_rebuild(tmp_path: Path) -> None:
    """Bulk-inserted cycles (no flush hook) get their moments when the aggregates are built."""
    url = _url(tmp_path)
    cycles = _shuffled_cycles(5)
    with engine_for(url).begin() as connection:
        connection.execute(insert(Cycle), [{"cycle_key": k, "as_of": a, "mode": m, "data_dir": d,
                                            "status": "published", "claimed_at": a}
                                           for k, a, m, d in cycles])  # fmt: skip
        connection.execute(update(DeskState).values(built=False))
    assert _moments(url) == []
    with session_scope(url) as session:
        assert record.usable(session, None)
    assert _moments(url) == _expected_moments(cycles)
    # The next claimed cycle continues from them.
    later = START + timedelta(days=40)
    with session_scope(url) as session:
        session.add(Cycle(cycle_key="next", as_of=later, mode="replay"))
    assert _numbers(url)["next"] == _counted(cycles, later, None)


def test_the_migration_numbers_the_cycles_already_stored(tmp_path: Path) -> None:
    """A database upgraded to 0010 holds the moments of the cycles it had before."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    sqlite3.connect(tmp_path / "desk.db").close()
    config = alembic_config(url)
    with engine_for(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
    cycles = _shuffled_cycles(7)
    with engine_for(url).begin() as connection:
        for key, as_of, mode, data_dir in cycles:
            connection.execute(
                text("INSERT INTO cycles (cycle_key, as_of, mode, data_dir, status, claimed_at, "
                     "redrives) VALUES (:k, :a, :m, :d, 'published', :a, 0)"),
                {"k": key, "a": as_of.replace(tzinfo=None).isoformat(sep=" "), "m": mode,
                 "d": data_dir},
            )  # fmt: skip
    migrate(url)
    assert _moments(url) == _expected_moments(cycles)


# Tables whose size does not grow with the history: the desk's state (rules, stories, the fit),
# the recalibration's bins (one per 0.002 of pooled p(up)), the scoreboard's tallies and their
# calibration cells (one per line: a source by a regime, an asset class, a horizon or a topic,
# all of fixed vocabularies): reading them whole is bounded.
BOUNDED = {"learned_rules", "stories", "calibration_fits", "calibration_bins", "score_tallies",
           "score_cells"}  # fmt: skip
# Recall's nine cells are read in one statement, each a limited subquery (cell_0 .. cell_8):
# reading one back is reading at most its LIMIT of rows (the lessons inside are searched).
BOUNDED |= {f"cell_{n}" for n in range(9)}
# A claim reads its moment's neighbours in one statement, each side a subquery of LIMIT 1.
BOUNDED |= {"here", "after"}
# A SELECT of values without a FROM (a moment appended after its replay's last) is one row.
BOUNDED |= {"CONSTANT"}
# The writers' turn (shared.db.moments.take_turns): its WHERE is false before any row is read.
TURN = "UPDATE cycles SET id = id WHERE 0 = 1"


def test_a_cycles_queries_search_by_index(tmp_path: Path) -> None:
    """Every statement of a cycle (claim, store, settle) searches by index, never scanning a
    table that grows with the history."""
    url = _url(tmp_path)
    market = replay_market(None)
    brain = OfflineBrain()
    minds = ("macro", "flow", "contrarian")
    seen: dict[str, Any] = {}

    def keep(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
             executemany: bool) -> None:  # fmt: skip
        # An INSERT of values reads nothing (its conflicts are checked by unique indexes); one of
        # a SELECT reads what the SELECT does.
        first = statement.split(maxsplit=1)[0]
        if first in ("SELECT", "UPDATE", "DELETE") or (first == "INSERT" and "SELECT" in statement):
            seen.setdefault(statement, params[0] if executemany else params)

    event.listen(Engine, "before_cursor_execute", keep)
    try:
        for day in (date(2015, 8, 24), date(2015, 8, 25), date(2015, 8, 27)):
            trigger = CycleTrigger(cycle_key=f"replay:{day}", as_of=replay_as_of(day))
            snapshot = market.snapshot(trigger)
            with session_scope(url) as session:
                settle_matured(session, lambda m, d: market, trigger.as_of, max_attempts=3)
            with session_scope(url) as session:
                context = claim(session, trigger, snapshot, market.features(snapshot))
                assert context is not None
                mark_launched(session, trigger.cycle_key)
            outputs = [think(brain, mind, context) for mind in minds]
            dispatch = synthesize(context, outputs, brain, expected_minds=minds)
            with session_scope(url) as session:
                assert store_cycle(session, dispatch, outputs, context)
    finally:
        event.remove(Engine, "before_cursor_execute", keep)
    database = sqlite3.connect(tmp_path / "desk.db")
    scans = []
    for statement, params in seen.items():
        if statement == TURN:
            continue
        plan = [row[-1] for row in database.execute("EXPLAIN QUERY PLAN " + statement, params)]
        scans += [(step, statement) for step in plan
                  if step.startswith("SCAN") and step.split()[1] not in BOUNDED]  # fmt: skip
    assert any("replay_moments" in s for s in seen), "the claim placed its moment"
    assert scans == []
