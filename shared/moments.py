"""Moments that arrive from outside (a trigger's as_of, a settle's now): ISO text only, in range.

Pydantic would read a bare number as seconds since 1970 and accept any year to 9999; a cycle as of
9999-12-31 then overflows when its call matures. Only an ISO date or time is taken, with a
timezone, from 1900 up to a day past the wall clock (nothing can be known about later).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.calendar import utc_now

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)


def check_moment(value: object, name: str = "as_of", *, now: datetime | None = None) -> datetime:
    """The moment as an aware datetime, or ValueError naming what was wrong with it."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise ValueError(f"{name} must be an ISO date/time, got {len(value)} characters")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be an ISO date/time, got {value!r}") from None
    else:
        raise ValueError(
            f"{name} must be an ISO date/time string, not {type(value).__name__} "
            "(a bare number is not a moment)"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} needs a timezone offset, e.g. {moment.isoformat()}+00:00")
    latest = (now or utc_now()) + FUTURE_SLACK
    if moment < EARLIEST:
        raise ValueError(f"{name} {moment.isoformat()} is before {EARLIEST.year}")
    if moment > latest:
        raise ValueError(f"{name} {moment.isoformat()} is in the future (after {latest:%Y-%m-%d})")
    return moment
