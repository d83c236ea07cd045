"""The live desk's warm start: its menu's calibration fitted on Yahoo's daily history of the watch
list before the cycle's as_of, as a replay desk's is on the replay's history.

The history is fetched once a day and cached under the desk's home in the replay format
(shared.market.live.history); the fit is replay_menu's over that directory, so it is the same
point-in-time fit: no session at or after as_of is weighed, no close known only after it settles
anything. Without the history (the feed is down, --cold) the cycle runs as before, without a menu,
and says so in what its record rests on.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from services.synth.menu import MenuCalibrator
from services.synth.warm import forget, replay_menu
from shared.calendar import utc_now
from shared.errors import WorkshopError
from shared.market.replay import ReplayMarket, load_replay
from shared.settings import Settings

log = structlog.get_logger("synth")

COLD = (
    "no warm start (started --cold): my menu of calls waits for a record of my own, so I keep "
    "to direction calls"
)


# The history this process opened, by directory: one day's at a time (an earlier day's is dropped
# with its running book, so that a worker that runs for months does not keep every day's copy).
_OPENED: dict[str, ReplayMarket] = {}


_OPENED_LOCK = threading.Lock()


def _market(directory: str) -> ReplayMarket:
    with _OPENED_LOCK:
        market = _OPENED.get(directory)
        if market is None:
            for old in list(_OPENED):
                del _OPENED[old]
                forget(f"live:{old}")
            market = _OPENED[directory] = ReplayMarket(load_replay(Path(directory)))
        return market


@dataclass(frozen=True)
class LiveMenu:
    """The menu's calibration for a live cycle (None without a warm start) and, in a clause,
    what it rests on."""

    menu: MenuCalibrator | None
    basis: str


def live_menu(settings: Settings, as_of: datetime, now: datetime | None = None) -> LiveMenu:
    """The live cycle's menu, warm from the cached history before as_of; never raises for a dead
    feed or a damaged cache (the cycle then has no menu and the reason)."""
    if settings.warm_sessions == 0:
        return LiveMenu(None, COLD)
    # Imported here: yfinance and pandas cost every synth worker seconds at start, replay or not.
    from shared.market.live.history import live_history

    history = live_history(
        settings.home / "warm" / "live",
        settings.watchlist,
        now or utc_now(),
        timeout_s=settings.source_timeout_s,
        base_url=settings.yahoo_base_url,
    )
    if history.directory is None:
        log.warning("synth.warm_unavailable", reason=history.reason)
        return LiveMenu(None, f"{history.describe()}, so I keep to direction calls")
    directory = str(history.directory)
    key = f"live:{directory}"  # one running book per day's cache: a new day starts afresh
    try:
        menu = _fitted(
            key, directory, as_of, settings.warm_sessions, settings.task_time_limit_s / 2
        )
    except (WorkshopError, OSError) as error:
        reason = f"the cached history at {directory} could not be read ({error})"
        log.warning("synth.warm_unavailable", reason=reason)
        return LiveMenu(None, f"no warm start: {reason}, so I keep to direction calls")
    if menu is None:
        log.info("synth.warm_fitting", directory=directory)
        return LiveMenu(
            None,
            f"{history.describe()}; it is still being fitted, so this cycle keeps to direction "
            "calls",
        )
    log.info("synth.warm_live", reused=history.reused, candidates=menu.warm, last=str(history.last))
    return LiveMenu(menu, history.describe())


# The first fit on a day's history weighs a thousand sessions of every watched symbol: tens of
# seconds on a loaded machine, more than a cycle may wait under its task time limit. It runs in
# this process's background thread; a cycle waits for it a while, then goes on without the menu
# (saying so), and a later cycle finds it ready. Later cycles only advance it: milliseconds.
_FITS: dict[str, Future[MenuCalibrator]] = {}
_FITS_LOCK = threading.Lock()
_EXECUTOR: list[ThreadPoolExecutor] = []  # made in the worker process, never before a fork


def _fitted(key: str, directory: str, as_of: datetime, sessions: int, wait_s: float
            ) -> MenuCalibrator | None:  # fmt: skip
    """The menu at as_of once the day's first fit is done; None while it is still running."""
    market = _market(directory)
    with _FITS_LOCK:
        first = _FITS.get(key)
        if first is None or (first.done() and first.exception() is not None):
            if not _EXECUTOR:
                _EXECUTOR.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-start"))
            for old in [k for k in _FITS if k != key]:
                del _FITS[old]
            first = _FITS[key] = _EXECUTOR[0].submit(
                replay_menu, key, market, as_of, sessions=sessions
            )
            started = True
        else:
            started = False
    try:
        fitted = first.result(timeout=wait_s)
    except TimeoutError:
        return None
    # The first fit was made for its own cycle's as_of; this one advances it to ours (or refits
    # from scratch for an earlier as_of: nothing after as_of may enter).
    return fitted if started else replay_menu(key, market, as_of, sessions=sessions)


def warm_in_background(settings: Settings) -> threading.Thread | None:
    """Start the day's fetch and first fit now, in a thread of this process, so that a live desk
    started with `workshop up` is warm by its first cycle rather than fitting during it. Nothing
    for a replay desk (its first as_of is unknown until its first cycle) or a --cold one."""
    if settings.mode != "live" or settings.warm_sessions == 0:
        return None

    def run() -> None:
        try:
            live = live_menu(settings, utc_now())
        except Exception as error:  # a thread's failure must not go unseen, nor stop the worker
            log.warning("synth.warm_at_start_failed", error=repr(error))
            return
        log.info("synth.warm_at_start", basis=live.basis, ready=live.menu is not None)

    thread = threading.Thread(target=run, name="warm-at-start", daemon=True)
    thread.start()
    return thread
