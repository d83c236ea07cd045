"""build_sources, the shared HTTP backoff, and the trading calendar behind "stale"."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from shared.errors import BadInputError, ConfigurationError, TransientError
from shared.market.live import EdgarFilings, Fred, RssNews, YahooPrices, build_sources
from shared.market.live.health import (
    Deadline,
    bounded,
    expected_session,
    get_with_backoff,
    is_trading_day,
)
from shared.ports import Source
from shared.settings import Settings
from tests.fakes.http import FakeServer, Reply


def test_build_sources_wires_all_four() -> None:
    """The four live sources come back by name, satisfy the Source port, and carry the settings."""
    settings = Settings(
        sec_user_agent="Desk ops ops@example.com",
        yahoo_base_url="http://127.0.0.1:9",
        fred_base_url="http://127.0.0.1:9",
        sec_base_url="http://127.0.0.1:9",
        source_timeout_s=3,
        fred_api_key="k",
    )
    sources = build_sources(settings)
    assert set(sources) == {"prices", "macro", "news", "filings"}
    assert all(isinstance(s, Source) for s in sources.values())
    assert isinstance(sources["prices"], YahooPrices)
    assert sources["prices"].base_url == "http://127.0.0.1:9"
    assert isinstance(sources["macro"], Fred)
    assert sources["macro"].api_base == "http://127.0.0.1:9"
    assert isinstance(sources["news"], RssNews)
    assert isinstance(sources["filings"], EdgarFilings)
    assert sources["filings"].timeout_s == 3


def test_build_sources_requires_sec_user_agent() -> None:
    """Without sec_user_agent building the live sources fails at start-up, naming the setting."""
    with pytest.raises(ConfigurationError, match="sec_user_agent"):
        build_sources(Settings(sec_user_agent=None))


def test_backoff_honours_retry_after_and_gives_up(fake: FakeServer) -> None:
    """429s are retried up to the attempt limit, then a TransientError says why."""
    fake.script("/x", Reply(status=429, headers={"Retry-After": "0"}))
    with httpx.Client() as client, pytest.raises(TransientError, match="429"):
        get_with_backoff(client, fake.url("/x"), deadline=Deadline(5), attempts=3, backoff_s=0)
    assert len(fake.hits("/x")) == 3


def test_client_errors_are_not_retried(fake: FakeServer) -> None:
    """A 404 is bad input at once: asking again cannot help."""
    fake.script("/x", Reply(status=404))
    with httpx.Client() as client, pytest.raises(BadInputError, match="404"):
        get_with_backoff(client, fake.url("/x"), deadline=Deadline(5), backoff_s=0)
    assert len(fake.hits("/x")) == 1


def test_api_key_never_in_error_text(fake: FakeServer) -> None:
    """The query string (which may hold an API key) is left out of error messages."""
    fake.script("/x", Reply(status=500))
    with httpx.Client() as client, pytest.raises(TransientError) as caught:
        get_with_backoff(
            client, fake.url("/x"), params={"api_key": "SECRET"}, deadline=Deadline(5), attempts=1
        )
    assert "SECRET" not in str(caught.value)


def test_bounded_turns_a_bug_into_error_health() -> None:
    """An unexpected exception inside a source becomes an error health, not a raise."""

    def broken() -> object:
        raise RuntimeError("boom")

    result = bounded("prices", 1.0, broken)  # type: ignore[arg-type]
    assert result.health.status == "error"
    assert "boom" in result.health.detail


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2026, 1, 1), False),  # New Year's Day
        (date(2026, 1, 19), False),  # Martin Luther King Jr. Day
        (date(2026, 4, 3), False),  # Good Friday
        (date(2026, 6, 19), False),  # Juneteenth
        (date(2026, 7, 3), False),  # Independence Day observed (4 July is a Saturday)
        (date(2026, 11, 26), False),  # Thanksgiving
        (date(2026, 12, 25), False),
        (date(2022, 12, 30), True),  # New Year 2023 on a Sunday: observed on Monday 2 January
        (date(2023, 1, 2), False),
        (date(2026, 1, 10), False),  # a Saturday
        (date(2026, 1, 9), True),
    ],
)
def test_trading_days(day: date, trading: bool) -> None:
    """NYSE holidays and weekends are not trading days; observance rules hold."""
    assert is_trading_day(day) is trading


def test_expected_session_over_a_holiday_weekend() -> None:
    """On Tuesday morning after a Monday holiday the expected bar is Friday's."""
    tuesday_early = datetime(2026, 1, 20, 13, 0, tzinfo=UTC)  # 08:00 New York
    assert expected_session(tuesday_early) == date(2026, 1, 16)
    tuesday_late = datetime(2026, 1, 20, 16, 0, tzinfo=UTC)  # 11:00 New York
    assert expected_session(tuesday_late) == date(2026, 1, 20)
