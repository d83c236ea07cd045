"""When things become known: the desk's conventions for session closes and release times.

Everything is stored in UTC; these helpers place US-market events on New York wall time so that
daylight saving is right.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
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


def maturity(as_of: datetime, reference_session: date | None, horizon_hours: int) -> datetime:
    """When a call made at as_of on a price of reference_session comes due.

    A daily close is measured from its session's close, so a 24 h call on Monday's close is judged
    on Tuesday's close (the first close at or after the maturity), not on Wednesday's; a live
    intraday price is measured from as_of. Always at least an hour after as_of.
    """
    base = as_of
    if reference_session is not None:
        close = session_close(reference_session)
        if close <= as_of:
            base = close
    return max(base + timedelta(hours=horizon_hours), as_of + timedelta(hours=1))
