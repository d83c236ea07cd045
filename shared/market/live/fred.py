"""Macro series from FRED: the JSON API with vintages when there is a key, the keyless CSV if not.

Every value carries the moment it became public, never earlier than the truth: from FRED's
real-time period (ALFRED vintages) with a key, from the replay format's release-lag rules without.
A '.' is a missing value, never a zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import httpx
import structlog

from shared.calendar import end_of_day_known, new_york_date, release_known, utc_now
from shared.contracts import DataFlag, FeedHealth, HealthStatus, MacroValue, SourceResult
from shared.errors import BadInputError, WorkshopError
from shared.market.live.health import Deadline, bounded, get_with_backoff, unique_flags

log = structlog.get_logger(__name__)

API_BASE = "https://api.stlouisfed.org"
CSV_BASE = "https://fred.stlouisfed.org"
# Released at 08:30 New York (BLS); every other series is taken as known after the day's close.
MORNING_RELEASES = frozenset({"CPIAUCSL", "CPILFESL", "UNRATE", "PAYEMS"})
EMPLOYMENT = frozenset({"UNRATE", "PAYEMS"})
CPI = frozenset({"CPIAUCSL", "CPILFESL"})
# Enough history for year-on-year and six-month changes of monthly series.
HISTORY_DAYS = 430
# A daily series whose newest value is older than this is stale (long weekends included).
DAILY_STALE = timedelta(days=6)
MONTHLY_STALE = timedelta(days=75)
# The earliest real-time date FRED accepts: asking from it returns every vintage.
ALL_VINTAGES = "1776-07-04"


def _first_business_day(year: int, month: int) -> date:
    """First weekday of a month that is not New Year's Day (observed) or Labor Day."""
    day = date(year, month, 1)
    while True:
        new_year = month == 1 and (day.day == 1 or (day.day == 2 and day.weekday() == 0))
        labor_day = month == 9 and day.weekday() == 0
        if day.weekday() < 5 and not new_year and not labor_day:
            return day
        day += timedelta(days=1)


def _following_month(day: date) -> tuple[int, int]:
    return (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)


def rule_released(series: str, observed: date, monthly: bool) -> date:
    """The replay README's release-lag rule: the day a value is taken to become public."""
    if not monthly:
        return observed
    year, month = _following_month(observed)
    if series in CPI:
        return date(year, month, 15)
    if series in EMPLOYMENT:
        first = date(year, month, 1)
        return first + timedelta(days=(4 - first.weekday()) % 7)
    return _first_business_day(year, month)


def released_at(series: str, day: date) -> datetime:
    """The instant on a release day when the series is public."""
    return release_known(day) if series in MORNING_RELEASES else end_of_day_known(day)


def _is_monthly(dates: Sequence[date]) -> bool:
    return (
        len(dates) > 0
        and all(d.day == 1 for d in dates)
        and (len(dates) < 2 or (dates[-1] - dates[-2]).days >= 28)
    )


def _value(text: str) -> float | None:
    """FRED's '.' (and an empty cell) is a missing value; anything else must be a number."""
    text = text.strip()
    if text in ("", "."):
        return None
    return float(text)


class Fred:
    """The `macro` source: FRED series observations with release times."""

    name = "macro"

    def __init__(
        self,
        series: Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 20.0,
        base_url: str | None = None,
        attempts: int = 4,
        backoff_s: float = 1.0,
    ) -> None:
        self.series = tuple(dict.fromkeys(series))
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.api_base = (base_url or API_BASE).rstrip("/")
        self.csv_base = (base_url or CSV_BASE).rstrip("/")
        self.attempts = attempts
        self.backoff_s = backoff_s

    def fetch(self, as_of: datetime) -> SourceResult:
        """Observations public at as_of; never raises for a dead, slow or garbled feed."""
        return bounded(self.name, self.timeout_s, lambda: self._fetch(as_of))

    def _fetch(self, as_of: datetime) -> SourceResult:
        deadline = Deadline(self.timeout_s)
        fetched_at = utc_now()
        values: list[MacroValue] = []
        flags: list[DataFlag] = []
        failed: list[str] = []
        stale: list[str] = []
        with httpx.Client(follow_redirects=True) as client:
            for series in self.series:
                try:
                    found, missing = (
                        self._api(client, series, as_of, deadline)
                        if self._api_key
                        else self._csv(client, series, as_of, fetched_at, deadline)
                    )
                except (WorkshopError, ValueError, KeyError, TypeError) as exc:
                    failed.append(series)
                    flags.append(
                        DataFlag(code="missing_series", subject=series, detail=_reason(exc))
                    )
                    continue
                if missing:
                    flags.append(
                        DataFlag(
                            code="missing_value",
                            subject=series,
                            detail=f"{missing} observations without a value ('.')",
                        )
                    )
                known = [v for v in found if v.released_at <= as_of]
                if not known:
                    failed.append(series)
                    flags.append(
                        DataFlag(code="missing_series", subject=series, detail="no value by as_of")
                    )
                    continue
                values.extend(known)
                newest = max(v.observed for v in known)
                monthly = _is_monthly(sorted(v.observed for v in known))
                limit = MONTHLY_STALE if monthly else DAILY_STALE
                if new_york_date(as_of) - newest > limit:
                    stale.append(series)
                    flags.append(
                        DataFlag(code="stale_series", subject=series, detail=f"newest {newest}")
                    )
        status: HealthStatus = "ok"
        if not values:
            status = "error" if failed else "empty"
        elif failed:
            status = "partial"
        elif stale:
            status = "stale"
        got = len(self.series) - len(failed)
        detail = f"{got}/{len(self.series)} series via {'API' if self._api_key else 'CSV'}"
        if failed:
            detail += f"; missing {', '.join(failed)}"
        if stale:
            detail += f"; stale {', '.join(stale)}"
        health = FeedHealth(
            source=self.name,
            status=status,
            detail=detail[:500],
            items=len(values),
            newest_at=max((v.released_at for v in values), default=None),
        )
        return SourceResult(
            source=self.name, health=health, macro=tuple(values), flags=unique_flags(flags)
        )

    def _api(
        self, client: httpx.Client, series: str, as_of: datetime, deadline: Deadline
    ) -> tuple[list[MacroValue], int]:
        """Every vintage since HISTORY_DAYS; keep the one current at as_of for each date.

        A vintage's realtime_start is the day that value became current, so it is never earlier
        than the truth; it is only later when a value was revised after its first release.
        """
        assert self._api_key is not None
        start = new_york_date(as_of) - timedelta(days=HISTORY_DAYS)
        params = {
            "series_id": series,
            "api_key": self._api_key,
            "file_type": "json",
            "observation_start": start.isoformat(),
            "realtime_start": ALL_VINTAGES,
            "realtime_end": "9999-12-31",
        }
        response = get_with_backoff(
            client,
            f"{self.api_base}/fred/series/observations",
            params=params,
            deadline=deadline,
            attempts=self.attempts,
            backoff_s=self.backoff_s,
        )
        payload = response.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("observations"), list):
            raise BadInputError("answer has no observations list")
        day = new_york_date(as_of)
        current: dict[date, tuple[date, float | None]] = {}
        for row in payload["observations"]:
            observed = date.fromisoformat(row["date"])
            real_start = date.fromisoformat(row["realtime_start"])
            real_end = date.fromisoformat(row["realtime_end"])
            if real_start <= day <= real_end:
                current[observed] = (real_start, _value(str(row["value"])))
        values = [
            MacroValue(
                series=series, value=value, observed=observed, released_at=released_at(series, rs)
            )
            for observed, (rs, value) in sorted(current.items())
            if value is not None
        ]
        missing = sum(1 for _, value in current.values() if value is None)
        return values, missing

    def _csv(
        self,
        client: httpx.Client,
        series: str,
        as_of: datetime,
        fetched_at: datetime,
        deadline: Deadline,
    ) -> tuple[list[MacroValue], int]:
        """The keyless download: no vintages, so release times come from the rules.

        A value in the answer was public when we fetched it, so a rule date later than the fetch
        is pulled back to the fetch time.
        """
        start = new_york_date(as_of) - timedelta(days=HISTORY_DAYS)
        response = get_with_backoff(
            client,
            f"{self.csv_base}/graph/fredgraph.csv",
            params={"id": series, "cosd": start.isoformat()},
            deadline=deadline,
            attempts=self.attempts,
            backoff_s=self.backoff_s,
        )
        rows = list(csv.reader(io.StringIO(response.text)))
        if not rows or len(rows[0]) < 2 or rows[0][1].strip() != series:
            raise BadInputError(f"not a fredgraph CSV for {series}: {response.text[:60]!r}")
        parsed: list[tuple[date, float | None]] = []
        for row in rows[1:]:
            if not row:
                continue
            parsed.append((date.fromisoformat(row[0].strip()), _value(row[1])))
        monthly = _is_monthly([d for d, _ in parsed])
        values = [
            MacroValue(
                series=series,
                value=value,
                observed=observed,
                released_at=min(
                    released_at(series, rule_released(series, observed, monthly)), fetched_at
                ),
            )
            for observed, value in parsed
            if value is not None
        ]
        return values, sum(1 for _, value in parsed if value is None)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
