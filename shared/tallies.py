"""The record's aggregates, kept incrementally: what a cycle reads is a fold of small additive
deltas, applied when a call is made, an abstention recorded, or a call settled, never a scan of
every stored call.

A delta is a Tally holding increments (a settled call is open -1, hits +1, ...): deltas commute,
so the database applies each as one `INSERT ... ON CONFLICT DO UPDATE SET col = col + delta`
(no read, no lost update between concurrent writers), and the backtest adds them in memory. Both
take their deltas from the functions here: the two records cannot drift.

Two books are kept: "public" (the scoreboard: calls a learned rule withheld are left out) and
"evidence" (what rules are judged on: withheld calls counted as if made). A line's key is the
scoring Key; its text form (fields joined by "|") is the stored key, so a cut added to the Key
later (a call's kind, say) needs no new column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from shared.contracts import ScoreLine
from shared.scoring import (
    BUCKETS,
    COUNTS,
    Abstained,
    CallOutcome,
    Key,
    Tally,
    abstention_keys,
    keys_of,
    line_of,
    order,
    recounted,
)

PUBLIC = "public"
EVIDENCE = "evidence"
BOOKS = (PUBLIC, EVIDENCE)
# Tally fields that are plain sums (everything but the calibration cells).
SUMS = tuple(f.name for f in dataclasses.fields(Tally) if f.name != "cells")
# The sums a line shows as they are, that none of its rates is computed from (scoring.COUNTS): a
# delta moving only these (a call made, an abstention, an inconclusive close) leaves every rate.
PLAIN = frozenset(COUNTS)

Delta = tuple[str, Key, Tally]  # book, line key, increments


def cut_text(key: Key) -> str:
    return "|".join(key)


def cut_key(text: str) -> Key:
    return tuple(text.split("|"))  # type: ignore[return-value]


def _books(withheld: bool) -> tuple[str, ...]:
    return (EVIDENCE,) if withheld else BOOKS


def opened(call: CallOutcome) -> Iterator[Delta]:
    """A call made (status open): counted in every line it belongs to."""
    # What Tally.add of the call as open counts, without copying the call to say so.
    delta = Tally(calls=1, open=1, withheld=int(call.withheld))
    for book in _books(call.withheld):
        for key in keys_of(call):
            yield book, key, delta


def closed(call: CallOutcome) -> Iterator[Delta]:
    """An open call settled with call.status (hit, miss or inconclusive)."""
    delta = Tally()
    delta.closed(call.status, call.confidence, call.base_rate)
    for book in _books(call.withheld):
        for key in keys_of(call):
            yield book, key, delta


def abstained(item: Abstained) -> Iterator[Delta]:
    delta = Tally(abstentions=1)
    for book in BOOKS:
        for key in abstention_keys(item):
            yield book, key, delta


Increments = tuple[tuple[tuple[str, float], ...], tuple[tuple[int, list[float]], ...]]


def increments(delta: Tally) -> Increments:
    """What a delta moves: its non-zero sums and its non-empty calibration cells (a delta moves
    two or three fields; adding its zeros would change nothing)."""
    sums = tuple((name, add) for name in SUMS if (add := getattr(delta, name)))
    return sums, tuple((bucket, add) for bucket, add in enumerate(delta.cells) if add[0])


def moves_rates(moves: Increments) -> bool:
    """Whether the increments move anything a line's rates are computed from."""
    sums, cells = moves
    return bool(cells) or any(name not in PLAIN for name, _ in sums)


def add_increments(into: Tally, moves: Increments) -> None:
    sums, cells = moves
    for name, value in sums:
        setattr(into, name, getattr(into, name) + value)
    for bucket, add in cells:
        cell = into.cells[bucket]
        cell[0] += add[0]
        cell[1] += add[1]
        cell[2] += add[2]


def absorb(into: Tally, delta: Tally) -> None:
    """Add a delta's increments to a tally (what the database's upsert does, in memory)."""
    add_increments(into, increments(delta))


def touched_cells(delta: Tally) -> Iterator[tuple[int, list[float]]]:
    """The calibration cells a delta changes (bucket, [count, sum of stated, hits])."""
    for bucket in range(BUCKETS):
        cell = delta.cells[bucket]
        if cell[0]:
            yield bucket, cell


@dataclass
class TallyBook:
    """The in-memory record: one Tally per (book, key), lines rebuilt only for keys that changed.

    `keeps` picks the lines a reader needs (the backtest's cycles read the overall and regime
    lines of the public book, rules a few cuts of the evidence book); the others are still
    counted, so the full scoreboard is there at the end.
    """

    tallies: dict[tuple[str, Key], Tally] = field(default_factory=dict)
    _lines: dict[tuple[str, Key], ScoreLine] = field(default_factory=dict)
    _dirty: set[tuple[str, Key]] = field(default_factory=set)
    # Of the dirty lines, those whose rates moved too (the others only need their counts again).
    _rated: set[tuple[str, Key]] = field(default_factory=set)
    # The keys each reader wants, in scoreboard order: they change only when a new line opens.
    _views: dict[tuple[str, Callable[[Key], bool] | None], tuple[Key, ...]] = field(
        default_factory=dict
    )

    def apply(self, deltas: Iterable[Delta]) -> None:
        last: Tally | None = None
        moves: Increments = ((), ())
        rates = False
        tallies, dirty, rated = self.tallies, self._dirty, self._rated
        for book, key, delta in deltas:
            # One delta goes to every line the call counts in: read what it moves once.
            if delta is not last:
                last, moves = delta, increments(delta)
                rates = moves_rates(moves)
            line = (book, key)
            tally = tallies.get(line)
            if tally is None:
                tally = tallies[line] = Tally()
                self._views.clear()
            add_increments(tally, moves)
            dirty.add(line)
            if rates:
                rated.add(line)

    def lines(
        self, book: str, keeps: Callable[[Key], bool] | None = None, *, detail: bool = False
    ) -> tuple[ScoreLine, ...]:
        """The book's lines in scoreboard order; without detail they are cached between reads."""
        wanted = self._views.get((book, keeps))
        if wanted is None:
            found = [k for b, k in self.tallies if b == book and (keeps is None or keeps(k))]
            wanted = self._views[(book, keeps)] = tuple(sorted(found, key=order))
        if detail:
            return tuple(line_of(k, self.tallies[(book, k)]) for k in wanted)
        built, dirty, rated = self._lines, self._dirty, self._rated
        out: list[ScoreLine] = []
        for key in wanted:
            line = (book, key)
            if line in dirty or line not in built:
                held = built.get(line)
                if held is None or line in rated:
                    # Trusted: every key here came from a validated call (see Tally.line).
                    built[line] = line_of(key, self.tallies[line], detail=False, trusted=True)
                    rated.discard(line)
                else:
                    built[line] = recounted(held, self.tallies[line])
                dirty.discard(line)
            out.append(built[line])
        return tuple(out)
