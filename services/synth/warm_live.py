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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from services.synth.menu import MenuCalibrator
from services.synth.warm import forget, replay_menu
from shared.calendar import utc_now
from shared.errors import WorkshopError
from shared.market.live.history import live_history
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
    try:
        # One running book per day's cache: a new day's history starts a new warm start.
        menu = replay_menu(
            f"live:{directory}", _market(directory), as_of, sessions=settings.warm_sessions
        )
    except (WorkshopError, OSError) as error:
        reason = f"the cached history at {directory} could not be read ({error})"
        log.warning("synth.warm_unavailable", reason=reason)
        return LiveMenu(None, f"no warm start: {reason}, so I keep to direction calls")
    log.info("synth.warm_live", reused=history.reused, candidates=menu.warm, last=str(history.last))
    return LiveMenu(menu, history.describe())
