"""The warm start: a desk started on a date fits its menu's calibration from the price history
before that date, point-in-time, instead of waiting months for a record of its own.

Each past session's menu is weighed (without the minds: their lean is unknown there, so 0) and
settled by the resolver's judge only with closes known at the first cycle's as_of: no value
after it can enter. Pure over a MarketData port.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.synth.menu import MenuBook, MenuCalibrator, options
from shared.calendar import replay_as_of
from shared.contracts import Snapshot
from shared.ports import MarketData

# Sessions of history the warm start weighs: four years, several thousand candidates per kind.
WARM_SESSIONS = 1000
# The warm start refits as it goes, so each kind is judged out of sample there too.
WARM_REFIT = 25
# A fleet cycle refits its running book once this many sessions were weighed since the last
# fit, as the backtest does (its refit_every): a day's settled candidates move a fit of
# thousands very little, and refitting every cycle was a tenth of a synthesis task.
REFIT_SESSIONS = 20
EARLIEST = date(1900, 1, 1)


def warm_book(
    market: MarketData, first_as_of: datetime, *, sessions: int = WARM_SESSIONS
) -> MenuBook:
    """A MenuBook holding the candidates of the `sessions` sessions before first_as_of, settled
    with what was known at first_as_of (those still open settle later, as any candidate)."""
    book = MenuBook()
    cutoff = first_as_of.date() - timedelta(days=1)
    days = [d for d in market.sessions(EARLIEST, cutoff) if replay_as_of(d) < first_as_of]
    for number, day in enumerate(days[-sessions:] if sessions > 0 else []):
        as_of = replay_as_of(day)
        book.settle(market, as_of)
        if number % WARM_REFIT == 0:
            book.refit()
        features = market.features(Snapshot(cycle_key="warm-start", as_of=as_of, mode="replay"))
        book.propose(options(features), as_of, calibrator=book.calibrator)
    book.settle(market, first_as_of)
    book.warm = book.history.total
    return book


@dataclass
class _Running:
    book: MenuBook
    proposed_until: datetime  # sessions whose as_of is before this have been weighed
    lock: threading.Lock = field(default_factory=threading.Lock)
    unfitted: int | None = None  # sessions weighed since the last fit (None: never fitted)
    # Every fit made, with the as_of it was made at (on what had settled by then), oldest first.
    fits: list[tuple[datetime, MenuCalibrator]] = field(default_factory=list)


_RUNNING: dict[str, _Running] = {}
_RUNNING_LOCK = threading.Lock()


def _advance(market: MarketData, running: _Running, as_of: datetime) -> int:
    """Weigh the sessions from proposed_until up to (not including) as_of, settling as it goes;
    how many it weighed."""
    weighed = 0
    start = running.proposed_until.date() - timedelta(days=1)
    for day in market.sessions(start, as_of.date()):
        moment = replay_as_of(day)
        if not running.proposed_until <= moment < as_of:
            continue
        running.book.settle(market, moment)
        features = market.features(Snapshot(cycle_key="warm-start", as_of=moment, mode="replay"))
        running.book.propose(options(features), moment, calibrator=running.book.calibrator)
        weighed += 1
    running.proposed_until = max(running.proposed_until, as_of)
    running.book.settle(market, as_of)
    return weighed


def replay_menu(
    key: str, market: MarketData, as_of: datetime, *, sessions: int = WARM_SESSIONS
) -> MenuCalibrator:
    """The menu's calibration for a fleet cycle of a replay at as_of: warm-started from the price
    history before as_of and carried forward cycle by cycle (one per replay directory in this
    process), refitted every REFIT_SESSIONS sessions it weighed. A cycle behind the book gets
    the fit that was in force at its as_of; one before the book's first fit starts afresh: nothing
    later than a cycle's as_of can enter its fit."""
    with _RUNNING_LOCK:
        running = _RUNNING.get(key)
        if running is None or (running.fits and as_of < running.fits[0][0]):
            running = _RUNNING[key] = _Running(warm_book(market, as_of, sessions=sessions), as_of)
    with running.lock:
        if as_of < running.proposed_until and running.fits:
            # A cycle behind the running book (a burst's cycles finish out of order): the fit in
            # force at its as_of, made on what had settled by then, as it would have had in
            # order; nothing weighed or settled after it enters.
            moments = [fitted for fitted, _ in running.fits]
            return running.fits[bisect_right(moments, as_of) - 1][1]
        weighed = _advance(market, running, as_of)
        unfitted = None if running.unfitted is None else running.unfitted + weighed
        calibrator = running.book.calibrator
        if calibrator is None or unfitted is None or unfitted >= REFIT_SESSIONS:
            calibrator, unfitted = running.book.refit(), 0
            running.fits.append((as_of, calibrator))
            del running.fits[:-MAX_FITS_KEPT]
        running.unfitted = unfitted
        return calibrator


# Fits kept for cycles behind the running book: a burst runs its cycles a few sessions apart.
MAX_FITS_KEPT = 64


def forget(key: str) -> None:
    """Drop the running book of a replay (a live desk's history of an earlier day)."""
    with _RUNNING_LOCK:
        _RUNNING.pop(key, None)
