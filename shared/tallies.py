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


@dataclass(eq=False)
class _View:
    """One reader's lines (a book and a `keeps`) in scoreboard order, and which of its lines
    changed since it last read them: a read rebuilds those alone and keeps the others."""

    keys: tuple[Key, ...]
    at: dict[Key, int] = field(init=False)
    lines: tuple[ScoreLine, ...] | None = None
    changed: set[Key] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.at = {key: i for i, key in enumerate(self.keys)}


@dataclass
class TallyBook:
    """The in-memory record: one Tally per (book, key), lines rebuilt only for keys that changed.

    `keeps` picks the lines a reader needs (the backtest's cycles read the overall and regime
    lines of the public book, rules a few cuts of the evidence book); the others are still
    counted, so the full scoreboard is there at the end.
    """

    tallies: dict[tuple[str, Key], Tally] = field(default_factory=dict)
    # Each line as last built, and the lines whose rates moved since (the others only need their
    # counts again: scoring.recounted).
    _lines: dict[tuple[str, Key], ScoreLine] = field(default_factory=dict)
    _rated: set[tuple[str, Key]] = field(default_factory=set)
    # Each reader's view, and the views each line is in: a view's keys change only when a new
    # line opens (then every view is built again).
    _views: dict[tuple[str, Callable[[Key], bool] | None], _View] = field(default_factory=dict)
    _watch: dict[tuple[str, Key], list[_View]] = field(default_factory=dict)

    def apply(self, deltas: Iterable[Delta]) -> None:
        last: Tally | None = None
        moves: Increments = ((), ())
        rates = False
        tallies, rated, watch = self.tallies, self._rated, self._watch
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
                watch.clear()
            add_increments(tally, moves)
            for view in watch.get(line, ()):
                view.changed.add(key)
            if rates:
                rated.add(line)

    def lines(
        self, book: str, keeps: Callable[[Key], bool] | None = None, *, detail: bool = False
    ) -> tuple[ScoreLine, ...]:
        """The book's lines in scoreboard order; without detail they are cached between reads."""
        view = self._views.get((book, keeps))
        if view is None:
            found = [k for b, k in self.tallies if b == book and (keeps is None or keeps(k))]
            view = self._views[(book, keeps)] = _View(tuple(sorted(found, key=order)))
            for key in view.keys:
                self._watch.setdefault((book, key), []).append(view)
        if detail:
            return tuple(line_of(k, self.tallies[(book, k)]) for k in view.keys)
        if view.lines is None:
            view.lines = tuple(self._line(book, key) for key in view.keys)
        elif view.changed:
            lines = list(view.lines)
            for key in view.changed:
                lines[view.at[key]] = self._line(book, key)
            view.lines = tuple(lines)
        view.changed.clear()
        return view.lines

    def _line(self, book: str, key: Key) -> ScoreLine:
        """The line as its tally stands, its rates recomputed only if they moved."""
        line = (book, key)
        held = self._lines.get(line)
        if held is None or line in self._rated:
            # Trusted: every key here came from a validated call (see Tally.line).
            held = line_of(key, self.tallies[line], detail=False, trusted=True)
            self._rated.discard(line)
        else:
            held = recounted(held, self.tallies[line])
        self._lines[line] = held
        return held
