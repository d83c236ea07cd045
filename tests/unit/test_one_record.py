"""One record behind one port: the database's aggregates (StoredBook) and the backtest's
(TallyBook) take the same deltas through the RecordBook interface and give the same lines."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from shared.db.record import StoredBook
from shared.db.session import migrate, session_scope
from shared.ports import RecordBook
from shared.scoring import ALL, Abstained, CallOutcome, Key, line_of
from shared.tallies import EVIDENCE, PUBLIC, Delta, TallyBook, abstained, closed, opened

SOURCES = ("synthesis", "macro", "flow", "contrarian")
REGIMES = ("risk_on", "risk_off", "chop")


def _events(seed: int, n: int) -> list[list[Delta]]:
    """n calls made (some withheld by a rule), most of them settled, and abstentions, each as
    the deltas the fleet's flush hook and the backtest's ledger both fold in."""
    rng = random.Random(seed)
    events: list[list[Delta]] = []
    for _ in range(n):
        call = CallOutcome(
            rng.choice(SOURCES), rng.choice(REGIMES), "open", rng.uniform(0.5, 0.9),
            asset_class=rng.choice(["equity_index", "volatility", "equity"]),
            horizon_hours=rng.choice([24, 120]), topic=rng.choice(["index", "vol", "tech"]),
            base_rate=rng.choice([None, rng.uniform(0.3, 0.7)]), withheld=rng.random() < 0.15,
        )  # fmt: skip
        events.append(list(opened(call)))
        if rng.random() < 0.8:
            status = rng.choice(["hit", "miss", "miss", "inconclusive"])
            events.append(list(closed(dataclasses.replace(call, status=status))))
        if rng.random() < 0.3:
            events.append(list(abstained(Abstained(rng.choice(SOURCES), rng.choice(REGIMES)))))
    return events


def _regime_lines(key: Key) -> bool:
    return key[2:] == (ALL, ALL, ALL)


def test_the_stored_and_the_in_memory_record_give_the_same_lines(tmp_path: Path) -> None:
    """The same 400 calls, settlements and abstentions, applied event by event to both books,
    give identical lines in both books, whole or cut, with and without calibration detail."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    migrate(url)
    memory = TallyBook()
    events = _events(5, 400)
    with session_scope(url) as session:
        stored = StoredBook(session)
        books: list[RecordBook] = [memory, stored]
        for deltas in events:
            for book in books:
                book.apply(deltas)
        for name in (PUBLIC, EVIDENCE):
            for keeps in (None, _regime_lines):
                for detail in (False, True):
                    want = memory.lines(name, keeps, detail=detail)
                    assert len(want) > 10
                    assert stored.lines(name, keeps, detail=detail) == want
    # And read back in a later transaction, from what was committed.
    with session_scope(url) as session:
        later = StoredBook(session)
        assert isinstance(later, RecordBook)
        assert later.lines(PUBLIC) == memory.lines(PUBLIC)


def test_lines_read_between_events_are_the_lines_built_afresh() -> None:
    """A book read after every event (so that most reads find only a line's counts moved) gives
    the lines a fresh fold of its tallies builds, rates included."""
    memory = TallyBook()
    for deltas in _events(7, 300):
        memory.apply(deltas)
        for name in (PUBLIC, EVIDENCE):
            for keeps in (None, _regime_lines):
                got = memory.lines(name, keeps)
                keys = [(x.source, x.regime, x.asset_class, x.horizon, x.topic) for x in got]
                fresh = tuple(line_of(k, memory.tallies[(name, k)], detail=False) for k in keys)
                assert got == fresh
