"""The live desk's price history for its warm start: years of Yahoo daily bars of the watch list,
fetched once a day and kept under the desk's home in the replay format.

A replay desk fits its menu's calibration on the replay's own history; a live desk has none until
this fetches it. The cache is one directory per New York day (`<cache>/<day>/prices.csv`, with an
empty macro.csv), written by the recorder's code, so that the replay market reads it as any replay
directory; a day's directory is never rewritten, so a worker that already opened it is not misled.
Only bars final at the fetch (their session closed and settled) are kept: today's live bar is not
history. A failed fetch is remembered for RETRY_AFTER, so that a dead feed costs one timeout per
half hour rather than one per cycle. The last good day's copy then stands in, saying so; with none,
the reason is what the dispatch says its record rests on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import structlog

from shared.calendar import end_of_day_known, new_york_date
from shared.contracts import SourceResult
from shared.locking import exclusive
from shared.market.live.recorder import record
from shared.market.live.yahoo import YahooPrices

log = structlog.get_logger(__name__)

# Yahoo serves fixed ranges only (1y, 2y, 5y, 10y, max...): 5y is the shortest that covers the
# warm start's 1,000 sessions (about four years).
HISTORY_PERIOD = "5y"
# A failed fetch is not retried sooner than this: each try can cost the source's whole timeout.
RETRY_AFTER = timedelta(minutes=30)
STATE_FILE = "state.json"


@dataclass(frozen=True)
class History:
    """The cached history a warm start can rest on, or why there is none."""

    directory: Path | None
    symbols: tuple[str, ...] = ()
    first: date | None = None
    last: date | None = None
    fetched_at: datetime | None = None
    missing: tuple[str, ...] = ()
    reason: str | None = None  # why there is no history (directory None)
    reused: bool = False  # served from the cache without a fetch
    refresh_failed: str | None = None  # an earlier day's copy: why today's refresh failed

    def describe(self) -> str:
        """What the warm start rests on (or why nothing), in a clause for the dispatch."""
        if self.directory is None or self.fetched_at is None:
            return f"no warm start: Yahoo's daily history could not be fetched ({self.reason})"
        lacking = f", without {', '.join(self.missing)}" if self.missing else ""
        return (
            f"my warm start is Yahoo's daily bars of {', '.join(self.symbols)}{lacking}, "
            f"{self.first} to {self.last}, fetched {self.fetched_at:%Y-%m-%d %H:%M} UTC"
            + (f" (today's refresh failed: {self.refresh_failed})" if self.refresh_failed else "")
        )


def _read_state(cache: Path) -> dict[str, object]:
    try:
        state = json.loads((cache / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(cache: Path, state: dict[str, object]) -> None:
    temp = cache / f".{STATE_FILE}.tmp"
    temp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    temp.replace(cache / STATE_FILE)


def _from_state(state: dict[str, object], cache: Path) -> History:
    directory = cache / str(state["day"])
    return History(
        directory=directory,
        symbols=tuple(str(s) for s in state["symbols"]),  # type: ignore[attr-defined]
        first=date.fromisoformat(str(state["first"])),
        last=date.fromisoformat(str(state["last"])),
        fetched_at=datetime.fromisoformat(str(state["fetched_at"])),
        missing=tuple(str(s) for s in state.get("missing", ())),  # type: ignore[attr-defined]
        reused=True,
    )


def _reusable(state: dict[str, object], cache: Path, day: date, wanted: set[str]) -> bool:
    """Fetched today, for the same watch list, and still on disk."""
    asked = state.get("asked")
    return (
        state.get("day") == day.isoformat()
        and isinstance(asked, list)
        and set(asked) == wanted
        and (cache / day.isoformat() / "prices.csv").is_file()
    )


def _recent_failure(state: dict[str, object], now: datetime, wanted: set[str]) -> str | None:
    failed_at, reason = state.get("failed_at"), state.get("reason")
    asked = state.get("failed_asked")
    if not isinstance(failed_at, str) or not isinstance(asked, list) or set(asked) != wanted:
        return None
    if now - datetime.fromisoformat(failed_at) >= RETRY_AFTER:
        return None
    return f"{reason}; tried at {failed_at[:16].replace('T', ' ')} UTC, again after {RETRY_AFTER}"


def _fallback(state: dict[str, object], cache: Path, wanted: set[str], reason: str) -> History:
    """An earlier day's copy when today's refresh failed (still point-in-time: the fit reads
    only what came before as_of), else no history and the reason."""
    asked, day = state.get("asked"), state.get("day")
    if (
        isinstance(asked, list)
        and set(asked) == wanted
        and isinstance(day, str)
        and (cache / day / "prices.csv").is_file()
    ):
        return replace(_from_state(state, cache), refresh_failed=reason)
    return History(directory=None, reason=reason)


def _final_only(result: SourceResult, now: datetime) -> SourceResult:
    """Only the bars whose session's close was final by now: a live bar is not history."""
    bars = tuple(b for b in result.bars if end_of_day_known(b.session) <= now)
    return result.model_copy(update={"bars": bars, "quotes": (), "flags": ()})


def live_history(
    cache: Path,
    symbols: Sequence[str],
    now: datetime,
    *,
    timeout_s: float = 20.0,
    base_url: str | None = None,
    period: str = HISTORY_PERIOD,
) -> History:
    """Today's cached history of `symbols`, fetched from Yahoo first if today has none yet.

    Never raises for a dead or garbled feed: the History is then an earlier day's copy that
    says why it was not refreshed, or has no directory and the reason.
    """
    wanted = {s.upper() for s in symbols}
    day = new_york_date(now)
    # One fetch at a time across the synthesis processes: the others then reuse its cache.
    with exclusive(cache / ".fetch.lock"):
        state = _read_state(cache)
        if _reusable(state, cache, day, wanted):
            return _from_state(state, cache)
        failure = _recent_failure(state, now, wanted)
        if failure is not None:
            return _fallback(state, cache, wanted, failure)
        source = YahooPrices(sorted(wanted), timeout_s=timeout_s, base_url=base_url, period=period)
        result = _final_only(source.fetch(now), now)
        if not result.bars:
            reason = f"prices {result.health.status}: {result.health.detail}"
            failed = {
                "failed_asked": sorted(wanted),
                "failed_at": now.isoformat(),
                "reason": reason,
            }
            _write_state(cache, state | failed)  # the last good copy's record is kept
            log.warning("warm.history_failed", reason=reason)
            return _fallback(state, cache, wanted, reason)
        directory = cache / day.isoformat()
        shutil.rmtree(directory, ignore_errors=True)  # a half-written try of earlier today
        record(directory, [result])
        got = sorted({b.symbol for b in result.bars})
        sessions = sorted({b.session for b in result.bars})
        state = {
            "day": day.isoformat(),
            "asked": sorted(wanted),
            "symbols": got,
            "missing": sorted(wanted - set(got)),
            "first": sessions[0].isoformat(),
            "last": sessions[-1].isoformat(),
            "fetched_at": now.isoformat(),
            "bars": len(result.bars),
        }
        _write_state(cache, state)
        # Earlier days' copies are superseded; a worker that opened one keeps it in memory.
        for old in cache.iterdir():
            if old.is_dir() and old.name != day.isoformat():
                shutil.rmtree(old, ignore_errors=True)
        log.info("warm.history_fetched", bars=len(result.bars), symbols=got, first=state["first"],
                 last=state["last"])  # fmt: skip
        return replace(_from_state(state, cache), reused=False)
