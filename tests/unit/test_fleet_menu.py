"""The fleet's running menu of a replay: carried forward cycle by cycle and refitted every
REFIT_SESSIONS sessions it weighed, as the backtest refits, never on anything after as_of."""

from __future__ import annotations

from datetime import date

from services.synth.warm import REFIT_SESSIONS, forget, replay_menu
from shared.calendar import replay_as_of
from shared.market.replay import ReplayMarket, load_replay, sample_data_dir


def test_the_running_menu_is_refitted_every_refit_sessions_sessions() -> None:
    """Consecutive cycles keep the fit until REFIT_SESSIONS sessions were weighed since it, then
    get a new one; a cycle before the last one starts afresh (fitted at once)."""
    market = ReplayMarket(load_replay(sample_data_dir()))
    days = market.sessions(date(2017, 1, 1), date(2017, 12, 31))
    key = "test-fleet-menu"
    forget(key)
    try:
        fits = [
            replay_menu(key, market, replay_as_of(d), sessions=120)
            for d in days[: REFIT_SESSIONS + 2]
        ]
        assert all(f is fits[0] for f in fits[:REFIT_SESSIONS])
        assert fits[REFIT_SESSIONS] is not fits[0]
        assert fits[REFIT_SESSIONS + 1] is fits[REFIT_SESSIONS]
        assert fits[REFIT_SESSIONS].settled > fits[0].settled
        again = replay_menu(key, market, replay_as_of(days[3]), sessions=120)
        assert again is not fits[3]
        assert again.settled < fits[REFIT_SESSIONS].settled
    finally:
        forget(key)
