"""The live desk's warm start against a loopback Yahoo with the real yfinance: the history is
fetched once a day into the replay format, fitted point-in-time, and a dead feed is a stated
reason, never a crash."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.synth.menu import MODELS
from services.synth.warm_live import _FITS, live_menu
from shared.market.replay import load_replay
from shared.settings import Settings
from tests.fakes.http import FakeServer, Reply, serve
from tests.fakes.yahoo import DayBar, install_yahoo, random_walk_bars

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

LAST = date(2026, 1, 9)  # a Friday: the last final bar the fake serves
NOW = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)  # the Saturday after, when the desk starts
# The cycle: mid-session (10:00 New York), three months before the history ends; that day's bar
# is not final at as_of, so it must not enter either.
AS_OF = datetime(2025, 10, 1, 14, 0, tzinfo=UTC)
SYMBOLS = ("SPY", "QQQ", "^VIX")


def _swing(close: float | None, i: int) -> float:
    return round((close or 1.0) * (1.03 if i % 2 else 0.97), 4)


def _history(planted: bool = False) -> dict[str, list[DayBar]]:
    """Four and a half years of random walks; planted: other closes from AS_OF's day on."""
    bars = {
        "SPY": random_walk_bars(LAST, 1150, start=300, seed=1),
        "QQQ": random_walk_bars(LAST, 1150, start=250, seed=2),
        "^VIX": random_walk_bars(LAST, 1150, start=18, vol=0.05, seed=3),
    }
    if planted:
        # Plausible moves (no sanity flag drops them) that the clean history never made.
        cut = AS_OF.date()
        for symbol, series in bars.items():
            bars[symbol] = [
                b
                if b.session < cut
                else DayBar(b.session, b.open, b.high, b.low, _swing(b.close, i), b.volume)
                for i, b in enumerate(series)
            ]
    return bars


def _settings(
    home: Path, fake: FakeServer, warm_sessions: int = 300, task_time_limit_s: float = 60.0
) -> Settings:
    return Settings(
        home=home,
        mode="live",
        watchlist=SYMBOLS,
        yahoo_base_url=fake.base_url,
        source_timeout_s=20.0,
        warm_sessions=warm_sessions,
        task_time_limit_s=task_time_limit_s,
    )


def test_the_live_warm_start_fits_nothing_at_or_after_as_of(
    fake: FakeServer, tmp_path: Path
) -> None:
    """Closes planted from the cycle's day on change nothing the warm start fits: the same
    candidates settle into the same calibration, and the cache holds only final bars."""
    clean_state = install_yahoo(fake, _history())
    clean = live_menu(_settings(tmp_path / "clean", fake), AS_OF, now=NOW)
    with serve() as other:
        planted_state = install_yahoo(other, _history(planted=True))
        planted = live_menu(_settings(tmp_path / "planted", other), AS_OF, now=NOW)
    assert planted_state.ranges, "the planted history was served by its own fake"
    assert clean.menu is not None, clean.basis
    assert planted.menu is not None, planted.basis
    assert "5y" in clean_state.ranges
    assert clean.menu.warm > 1000
    assert clean.menu.settled == planted.menu.settled
    for model in MODELS:
        assert clean.menu.fits[model].theta == planted.menu.fits[model].theta
        assert clean.menu.fits[model].n == planted.menu.fits[model].n
    assert "Yahoo's daily bars of QQQ, SPY, ^VIX" in clean.basis
    assert "to 2026-01-09, fetched 2026-01-10 15:00 UTC" in clean.basis
    cached = load_replay(tmp_path / "clean" / "warm" / "live" / "2026-01-10")
    assert set(cached.prices["symbol"].to_list()) == set(SYMBOLS)
    assert cached.prices["date"].max() == LAST


def test_the_cache_is_reused_within_a_day_and_refreshed_the_next(
    fake: FakeServer, tmp_path: Path
) -> None:
    """A second start the same New York day reads the cache without asking Yahoo; the next day
    fetches again and drops the old day's copy."""
    state = install_yahoo(fake, _history())
    settings = _settings(tmp_path, fake)
    first = live_menu(settings, AS_OF, now=NOW)
    fetched = len(state.ranges)
    again = live_menu(settings, AS_OF + timedelta(days=1), now=NOW + timedelta(hours=8))
    assert first.menu is not None
    assert again.menu is not None
    assert len(state.ranges) == fetched == len(SYMBOLS)
    assert again.basis == first.basis
    live_menu(settings, AS_OF, now=NOW + timedelta(days=1))
    assert len(state.ranges) == 2 * fetched
    cache = tmp_path / "warm" / "live"
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == ["2026-01-11"]


def test_a_dead_feed_leaves_no_menu_and_says_why(fake: FakeServer, tmp_path: Path) -> None:
    """Yahoo answering 503 to every history request: no menu, a logged reason that the
    dispatch's basis repeats, and no second try within the half hour."""
    down = Reply(status=503, body="<html>Will be right back</html>", content_type="text/html")
    state = install_yahoo(fake, _history(), broken={s: [down] * 200 for s in SYMBOLS})
    settings = _settings(tmp_path, fake)
    with capture_logs() as logs:
        warm = live_menu(settings, AS_OF, now=NOW)
    assert warm.menu is None
    assert warm.basis.startswith("no warm start: Yahoo's daily history could not be fetched")
    assert "so I keep to direction calls" in warm.basis
    said = [e for e in logs if e["event"] == "synth.warm_unavailable"]
    assert said
    assert said[0]["reason"].startswith("prices ")
    assert said[0]["reason"] in warm.basis
    asked = len(state.ranges)
    later = live_menu(settings, AS_OF, now=NOW + timedelta(minutes=10))
    assert later.menu is None
    assert "again after 0:30:00" in later.basis
    assert len(state.ranges) == asked


def test_a_failed_refresh_falls_back_on_the_last_days_copy(
    fake: FakeServer, tmp_path: Path
) -> None:
    """Yahoo down on the next day: the desk keeps yesterday's history (still point-in-time) and
    says today's refresh failed; it fetches again the day after."""
    install_yahoo(fake, _history())
    first = live_menu(_settings(tmp_path, fake), AS_OF, now=NOW)
    assert first.menu is not None
    with serve() as dead:
        down = Reply(status=503, body="<html>Will be right back</html>", content_type="text/html")
        install_yahoo(dead, _history(), broken={s: [down] * 200 for s in SYMBOLS})
        later = live_menu(_settings(tmp_path, dead), AS_OF, now=NOW + timedelta(days=1))
    assert later.menu is not None
    assert later.menu.settled == first.menu.settled
    assert later.basis.startswith(first.basis)
    assert "(today's refresh failed: prices" in later.basis
    again = live_menu(_settings(tmp_path, fake), AS_OF, now=NOW + timedelta(days=2))
    assert again.basis.endswith("fetched 2026-01-12 15:00 UTC")


def test_a_cycle_does_not_wait_out_its_time_limit_for_the_first_fit(
    fake: FakeServer, tmp_path: Path
) -> None:
    """A cycle that may wait only milliseconds goes on without the menu, saying the warm start is
    still being fitted; a cycle after the fit is done has it."""
    install_yahoo(fake, _history())
    hurried = _settings(tmp_path, fake, task_time_limit_s=0.002)
    early = live_menu(hurried, AS_OF, now=NOW)
    assert early.menu is None
    assert early.basis.startswith("my warm start is Yahoo's daily bars of")
    assert early.basis.endswith("it is still being fitted, so this cycle keeps to direction calls")
    for running in list(_FITS.values()):
        running.result(timeout=60)
    later = live_menu(hurried, AS_OF + timedelta(days=1), now=NOW)
    assert later.menu is not None
    assert later.menu.warm > 1000


def test_cold_asks_nothing_and_says_so(fake: FakeServer, tmp_path: Path) -> None:
    """With --cold (no warm sessions) the live desk fetches no history and says it starts cold."""
    state = install_yahoo(fake, _history())
    warm = live_menu(_settings(tmp_path, fake, warm_sessions=0), AS_OF, now=NOW)
    assert warm.menu is None
    assert "--cold" in warm.basis
    assert state.ranges == []
