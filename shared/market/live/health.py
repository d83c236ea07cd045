"""What every live source shares: a deadline, HTTP with backoff, the trading calendar, health.

A source's `fetch` never raises for a dead, slow or garbled feed: `bounded` runs the real work
under a hard time limit and turns whatever went wrong into an error health record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from time import monotonic, sleep

import httpx
import structlog

from shared.calendar import at_new_york, new_york_date
from shared.contracts import DataFlag, FeedHealth, HealthStatus, SourceResult
from shared.errors import BadInputError, TransientError

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Never sleep longer than this on a server's Retry-After: past it the cycle is better off without
# the feed than late.
MAX_RETRY_AFTER_S = 30.0
_SEVERITY: dict[HealthStatus, int] = {"ok": 0, "stale": 1, "partial": 2, "empty": 3, "error": 4}


class Deadline:
    """A point in monotonic time that all of one fetch's requests share."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(float(value), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP-date: fall back to our own schedule rather than parse it


def get_with_backoff(
    client: httpx.Client,
    url: str,
    *,
    deadline: Deadline,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    attempts: int = 4,
    backoff_s: float = 1.0,
    before_request: Callable[[], None] | None = None,
) -> httpx.Response:
    """GET url, retrying 429/5xx and transport errors with exponential backoff within deadline.

    Raises: TransientError when the retries or the deadline run out on a retryable failure;
    BadInputError on any other non-2xx answer (a 404 does not get better by asking again).
    """
    problem = "no attempt made"
    for attempt in range(attempts):
        remaining = deadline.remaining()
        if remaining <= 0:
            break
        if before_request is not None:
            before_request()
        try:
            response = client.get(url, params=params, headers=headers, timeout=remaining)
        except httpx.TimeoutException:
            problem = "timed out"
            break  # the deadline is spent: another attempt cannot finish in time
        except httpx.TransportError as exc:
            problem = f"transport error: {type(exc).__name__}"
            delay = backoff_s * 2**attempt
        else:
            if response.is_success:
                return response
            if response.status_code not in RETRY_STATUSES:
                raise BadInputError(f"HTTP {response.status_code} from {_short(url)}")
            problem = f"HTTP {response.status_code}"
            delay = _retry_after(response) or backoff_s * 2**attempt
        log.info("source.retry", url=_short(url), problem=problem, attempt=attempt + 1)
        if attempt + 1 < attempts:
            if delay >= deadline.remaining():
                break
            sleep(delay)
    raise TransientError(f"{problem} from {_short(url)} after retries")


def _short(url: str) -> str:
    """The URL without its query: query strings may carry an API key."""
    return url.split("?", 1)[0]


class RateLimiter:
    """At most `per_second` calls per second across threads: the SEC asks for 10 or fewer."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            sleep(slot - now)


def bounded(source: str, timeout_s: float, work: Callable[[], SourceResult]) -> SourceResult:
    """Run work under a hard time limit; a hang or an unexpected failure becomes an error health.

    The work runs on a daemon thread so that a library that ignores its own timeout (or retries
    past it) cannot hold the cycle: the thread is abandoned and finishes or dies on its own.
    """
    box: list[SourceResult | BaseException] = []

    def run() -> None:
        try:
            box.append(work())
        except Exception as exc:  # the source's edge: a bug or a garbled feed becomes health
            box.append(exc)

    thread = threading.Thread(target=run, name=f"source-{source}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not box:
        log.warning("source.timed_out", source=source, timeout_s=timeout_s)
        return error_result(source, f"no answer within {timeout_s:g} s")
    outcome = box[0]
    if isinstance(outcome, BaseException):
        log.warning("source.failed", source=source, error=repr(outcome))
        return error_result(source, f"{type(outcome).__name__}: {outcome}")
    return outcome


def error_result(source: str, detail: str) -> SourceResult:
    """A result that only says the source failed, and why."""
    health = FeedHealth(source=source, status="error", detail=detail)
    return SourceResult(
        source=source,
        health=health,
        flags=(DataFlag(code="feed_error", subject=source, detail=detail),),
    )


def worst(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """The most severe of several statuses; ok when there are none."""
    return max(statuses, key=_SEVERITY.__getitem__, default="ok")


def unique_flags(flags: Iterable[DataFlag]) -> tuple[DataFlag, ...]:
    """Flags without repeats, in first-seen order."""
    return tuple(dict.fromkeys(flags))


# --- the US equity calendar, for what "stale" means --------------------------------------------


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous algorithm), for Good Friday."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def nyse_holidays(year: int) -> frozenset[date]:
    """The NYSE regular full-day holidays: rules, not one-off closures such as days of mourning."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not made up on the Friday before
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in nyse_holidays(day.year)


def previous_trading_day(day: date) -> date:
    day -= timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


# Yahoo shows the day's bar a little after the 09:30 open; before this the day's bar may be absent.
_OPEN_GRACE = time(10, 0)


def expected_session(as_of: datetime) -> date:
    """The newest trading day a fresh daily feed must have a bar for at as_of."""
    day = new_york_date(as_of)
    if is_trading_day(day) and as_of >= at_new_york(day, _OPEN_GRACE):
        return day
    return previous_trading_day(day)
