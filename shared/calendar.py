"""When things become known: the desk's conventions for session closes and release times.

Everything is stored in UTC; these helpers place US-market events on New York wall time so that
daylight saving is right.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

SESSION_CLOSE = time(16, 0)
# Daily bars and daily macro fixings are treated as known one hour after the close: the Treasury
# curve and FRED's daily series are published after the cash close, never at the open.
END_OF_DAY_KNOWN = time(17, 0)
# Monthly releases (CPI, jobs) come out at 08:30 New York time on their release date.
MONTHLY_RELEASE = time(8, 30)
# A replay cycle runs after the day's data is known.
REPLAY_CYCLE = time(17, 30)


# Pure and asked the same few thousand (day, clock) pairs over and over (every candidate a
# replay settles asks for its session's close): the zone arithmetic is done once per pair.
@lru_cache(maxsize=1 << 16)
def at_new_york(day: date, clock: time) -> datetime:
    """The UTC instant of a New York wall-clock time on a day."""
    return datetime.combine(day, clock, tzinfo=NEW_YORK).astimezone(UTC)


def session_close(day: date) -> datetime:
    return at_new_york(day, SESSION_CLOSE)


def end_of_day_known(day: date) -> datetime:
    return at_new_york(day, END_OF_DAY_KNOWN)


def release_known(day: date) -> datetime:
    return at_new_york(day, MONTHLY_RELEASE)


def replay_as_of(day: date) -> datetime:
    return at_new_york(day, REPLAY_CYCLE)


def new_york_date(moment: datetime) -> date:
    return moment.astimezone(NEW_YORK).date()


def utc_now() -> datetime:
    return datetime.now(UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def weekdays_after(day: date, n: int) -> date:
    """The nth weekday after day: the sessions a horizon counts (holidays cannot be known ahead;
    a holiday moves the settling close to the next session, within the resolver's grace)."""
    current = day
    while n > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            n -= 1
    return current


def maturity(as_of: datetime, reference_session: date | None, horizon_hours: int) -> datetime:
    """When a call made at as_of on a price of reference_session comes due.

    A daily close is measured in sessions from its session's close (24 h is the next session,
    48 h the second, 120 h the fifth), so a 24 h call on Friday's close is judged on Monday's
    close and a 48 h one on Tuesday's: the same sessions the call's base rate counts. A live
    intraday price is measured in hours from as_of. Always at least an hour after as_of.
    """
    base = as_of + timedelta(hours=horizon_hours)
    if reference_session is not None and session_close(reference_session) <= as_of:
        sessions = max(1, round(horizon_hours / 24))
        base = session_close(weekdays_after(reference_session, sessions))
    return max(base, as_of + timedelta(hours=1))
