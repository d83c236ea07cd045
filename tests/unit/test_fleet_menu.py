"""The fleet's running menu of a replay: carried forward cycle by cycle and refitted every
REFIT_SESSIONS sessions it weighed, as the backtest refits, never on anything after as_of."""

from __future__ import annotations

from datetime import date

from services.synth.warm import REFIT_SESSIONS, forget, replay_menu
from shared.calendar import replay_as_of
from shared.market.replay import ReplayMarket, load_replay, sample_data_dir


def test_the_running_menu_is_refitted_every_refit_sessions_sessions() -> None:
    """Consecutive cycles keep the fit until REFIT_SESSIONS sessions were weighed since it, then
    get a new one; a cycle behind the book gets the fit in force at its as_of (never a later
    one); a cycle before the book's first fit starts afresh."""
    market = ReplayMarket(load_replay(sample_data_dir()))
    days = market.sessions(date(2017, 1, 1), date(2017, 12, 31))
    key = "test-fleet-menu"
    forget(key)
    try:
        fits = [
            replay_menu(key, market, replay_as_of(d), sessions=120)
            for d in days[1 : REFIT_SESSIONS + 3]
        ]
        assert all(f is fits[0] for f in fits[:REFIT_SESSIONS])
        assert fits[REFIT_SESSIONS] is not fits[0]
        assert fits[REFIT_SESSIONS + 1] is fits[REFIT_SESSIONS]
        assert fits[REFIT_SESSIONS].settled > fits[0].settled
        # Out of order, as a burst finishes its cycles: the fit each as_of had in order.
        assert replay_menu(key, market, replay_as_of(days[4]), sessions=120) is fits[0]
        later = replay_menu(key, market, replay_as_of(days[REFIT_SESSIONS + 2]), sessions=120)
        assert later is fits[REFIT_SESSIONS]
        # Before the first fit: a new warm start, on nothing after that as_of.
        again = replay_menu(key, market, replay_as_of(days[0]), sessions=120)
        assert again is not fits[0]
        # ... and the book carried forward from there, the earlier fits gone.
        assert replay_menu(key, market, replay_as_of(days[1]), sessions=120) is again
    finally:
        forget(key)
