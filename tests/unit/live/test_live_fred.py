"""Fred against a loopback FRED: the JSON API with vintages, and the keyless CSV."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from shared.calendar import end_of_day_known, release_known
from shared.market.live.fred import Fred, rule_released
from tests.fakes.fred import GRAPH_CSV, OBSERVATIONS, install_fred
from tests.fakes.http import FakeServer, Reply

AS_OF = datetime(2026, 1, 9, 22, 30, tzinfo=UTC)
OPEN = "9999-12-31"


def _fred(fake: FakeServer, series: list[str], key: str | None = None, **kw: float) -> Fred:
    options = {"timeout_s": 10.0, "backoff_s": 0.05} | kw
    return Fred(series, api_key=key, base_url=fake.base_url, **options)  # type: ignore[arg-type]


def _daily_csv(n: int = 5) -> list[tuple[date, str]]:
    return [(date(2026, 1, d), f"4.{d:02d}") for d in (5, 6, 7, 8, 9)][:n]


def test_api_good_day_uses_vintage_in_force(fake: FakeServer) -> None:
    """With a key, each date takes the vintage in force at as_of, released when it began."""
    install_fred(
        fake,
        api={
            "CPIAUCSL": [
                (date(2025, 11, 1), "320.0", date(2025, 12, 10), "2026-01-08"),
                (date(2025, 11, 1), "320.5", date(2026, 1, 9), OPEN),  # revised on 9 Jan
                (date(2025, 12, 1), "321.0", date(2026, 1, 13), OPEN),  # not yet out at as_of
            ]
        },
    )
    result = _fred(fake, ["CPIAUCSL"], key="k3y").fetch(AS_OF)
    assert result.health.status == "ok", result.health
    [value] = result.macro
    assert value.value == 320.5
    assert value.released_at == release_known(date(2026, 1, 9))
    request = fake.hits(OBSERVATIONS)[0]
    assert request.param("realtime_start") == "1776-07-04"
    assert request.param("api_key") == "k3y"


def test_csv_without_key_and_dot_is_missing(fake: FakeServer) -> None:
    """Without a key the CSV is used; '.' is a flagged missing value, never a zero."""
    rows = _daily_csv()
    rows[2] = (rows[2][0], ".")
    install_fred(fake, csv={"DGS10": rows})
    result = _fred(fake, ["DGS10"]).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    assert [v.observed for v in result.macro] == [d for d, v in rows if v != "."]
    assert all(v.value != 0 for v in result.macro)
    assert any(f.code == "missing_value" for f in result.flags)
    assert result.macro[-1].released_at == end_of_day_known(date(2026, 1, 9))
    assert not fake.hits(OBSERVATIONS)


def test_monthly_release_rules() -> None:
    """Keyless release rules: CPI the 15th, jobs the first Friday, averages the first workday."""
    assert rule_released("CPIAUCSL", date(2017, 3, 1), monthly=True) == date(2017, 4, 15)
    assert rule_released("UNRATE", date(2026, 1, 1), monthly=True) == date(2026, 2, 6)
    assert rule_released("FEDFUNDS", date(2016, 12, 1), monthly=True) == date(2017, 1, 3)
    assert rule_released("FEDFUNDS", date(2026, 8, 1), monthly=True) == date(2026, 9, 1)
    assert rule_released("FEDFUNDS", date(2025, 8, 1), monthly=True) == date(2025, 9, 2)
    assert rule_released("DGS10", date(2026, 1, 9), monthly=False) == date(2026, 1, 9)


def test_rate_limit_then_server_error_then_success(fake: FakeServer) -> None:
    """A 429 and a 500 are retried with backoff and the series then arrives."""
    install_fred(fake, csv={"DGS10": _daily_csv()})
    limited = Reply(status=429, body="slow down", headers={"Retry-After": "0"})
    fake.first(GRAPH_CSV, limited, Reply(status=500, body="oops"))
    result = _fred(fake, ["DGS10"]).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    assert len(fake.hits(GRAPH_CSV)) == 3
    assert len(result.macro) == 5


def test_persistent_5xx_is_error(fake: FakeServer) -> None:
    """A FRED that only answers 502 gives an error health and a flag, not an exception."""
    fake.script(GRAPH_CSV, Reply(status=502, body="bad gateway"))
    result = _fred(fake, ["DGS10"], attempts=3).fetch(AS_OF)
    assert result.health.status == "error"
    assert any(f.code == "missing_series" and "502" in f.detail for f in result.flags)
    assert len(fake.hits(GRAPH_CSV)) == 3


def test_one_series_missing_is_partial(fake: FakeServer) -> None:
    """One unknown series among good ones makes the result partial and flags it."""
    install_fred(fake, csv={"DGS10": _daily_csv()})
    result = _fred(fake, ["DGS10", "NOPE"]).fetch(AS_OF)
    assert result.health.status == "partial"
    assert any(f.code == "missing_series" and f.subject == "NOPE" for f in result.flags)


def test_empty_and_garbled_bodies_are_errors(fake: FakeServer) -> None:
    """An empty CSV and a JSON answer that is not observations are errors, never numbers."""
    fake.script(GRAPH_CSV, Reply(body=b"", content_type="text/csv"))
    fake.script(OBSERVATIONS, Reply(body='{"observations": "nope"', content_type="text/json"))
    assert _fred(fake, ["DGS10"]).fetch(AS_OF).health.status == "error"
    keyed = _fred(fake, ["DGS10"], key="k").fetch(AS_OF)
    assert keyed.health.status == "error"
    assert keyed.macro == ()


def test_stale_daily_series(fake: FakeServer) -> None:
    """A daily series whose newest value is weeks old is stale."""
    install_fred(fake, csv={"DGS10": [(date(2025, 12, 1), "4.1"), (date(2025, 12, 2), "4.2")]})
    result = _fred(fake, ["DGS10"]).fetch(AS_OF)
    assert result.health.status == "stale"
    assert any(f.code == "stale_series" for f in result.flags)


def test_hang_returns_error_within_time_limit(fake: FakeServer) -> None:
    """A FRED that never answers gives an error health in about the time limit."""
    fake.script(GRAPH_CSV, Reply(delay_s=3.0, body="observation_date,DGS10\n"))
    started = time.monotonic()
    result = _fred(fake, ["DGS10"], timeout_s=0.5).fetch(AS_OF)
    assert time.monotonic() - started < 1.5
    assert result.health.status == "error"
