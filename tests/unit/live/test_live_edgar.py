"""EdgarFilings against a loopback EDGAR: ticker map, submissions JSON and Form 4 XML."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from shared.calendar import NEW_YORK
from shared.errors import BadInputError, ConfigurationError
from shared.market.live.edgar import EdgarFilings, _accepted, parse_form4
from tests.fakes.edgar import TICKERS, Submission, form4_xml, install_edgar
from tests.fakes.http import FakeServer, Reply

AS_OF = datetime(2026, 1, 9, 22, 30, tzinfo=UTC)
AGENT = "Workshop tests ops@example.com"
AAPL = 320193
FOLDER = f"/Archives/edgar/data/{AAPL}"


def _edgar(fake: FakeServer, symbols: list[str], **kw: float) -> EdgarFilings:
    options = {"timeout_s": 10.0, "backoff_s": 0.05} | kw
    return EdgarFilings(symbols, user_agent=AGENT, base_url=fake.base_url, **options)  # type: ignore[arg-type]


def _filings() -> list[Submission]:
    return [
        Submission(
            "8-K", "0000320193-26-000001", "2026-01-08T16:30:00.000Z", "a8k.htm", "2.02,9.01"
        ),
        Submission(
            "4", "0001214156-26-000002", "2026-01-07T18:05:00.000Z", "xslF345X05/wk-form4.xml"
        ),
        Submission("10-Q", "0000320193-26-000003", "2026-01-06T16:00:00.000Z", "q.htm"),
        Submission("8-K", "0000320193-25-000009", "2025-11-01T16:00:00.000Z", "old.htm", "8.01"),
        Submission("8-K", "0000320193-26-000010", "2026-01-09T18:00:00.000Z", "late.htm", "7.01"),
    ]


def _install(fake: FakeServer, form4: Reply) -> None:
    install_edgar(
        fake,
        {"AAPL": AAPL},
        {AAPL: _filings()},
        {f"{FOLDER}/000121415626000002/wk-form4.xml": form4},
    )


GOOD_FORM4 = form4_xml("COOK TIMOTHY D", [("S", "10,000", "250.50"), ("F", "2000", "251")])


def test_good_day(fake: FakeServer) -> None:
    """8-Ks with items and a Form 4 with the insider trade, in the window, nothing after as_of."""
    _install(fake, Reply(body=GOOD_FORM4, content_type="text/xml"))
    result = _edgar(fake, ["AAPL", "^VIX", "BTC-USD"]).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    assert [f.form for f in result.filings] == ["8-K", "4"]
    eight_k, form4 = result.filings
    assert eight_k.items == ("2.02", "9.01")
    assert "results of operations" in eight_k.summary
    assert eight_k.filed_at == datetime(2026, 1, 8, 16, 30, tzinfo=NEW_YORK)
    assert eight_k.url.endswith(f"{FOLDER}/000032019326000001/a8k.htm")
    assert form4.insider == "COOK TIMOTHY D"
    assert form4.transaction_code == "S"
    assert form4.shares == 10000
    assert form4.value == pytest.approx(2_505_000)
    assert all(r.headers["user-agent"] == AGENT for r in fake.requests)
    assert fake.hits("/submissions/CIK0000320193.json")


def test_acceptance_time_read_as_new_york() -> None:
    """EDGAR's 'Z' acceptance time is read as New York wall time: never earlier than the truth."""
    assert _accepted("2026-01-08T16:30:31.000Z") == datetime(2026, 1, 8, 21, 30, 31, tzinfo=UTC)


def test_form4_with_garbage_is_a_flag(fake: FakeServer) -> None:
    """A Form 4 whose share count is garbage is listed with a filing_unparsed flag, not a crash."""
    garbage = form4_xml("DOE JANE", [("S", "lots", "12.5")])
    _install(fake, Reply(body=garbage, content_type="text/xml"))
    result = _edgar(fake, ["AAPL"]).fetch(AS_OF)
    assert result.health.status == "partial"
    form4 = next(f for f in result.filings if f.form == "4")
    assert form4.shares is None
    assert form4.value is None
    assert any(f.code == "filing_unparsed" and "lots" in f.detail for f in result.flags)


def test_truncated_form4_is_a_flag(fake: FakeServer) -> None:
    """A Form 4 cut off mid-document is a filing_unparsed flag with the parser's reason."""
    _install(fake, Reply(body=GOOD_FORM4[:300], content_type="text/xml"))
    result = _edgar(fake, ["AAPL"]).fetch(AS_OF)
    assert any(f.code == "filing_unparsed" and "XML" in f.detail for f in result.flags)
    assert len(result.filings) == 2


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<html><body>Not here</body></html>", "ownershipDocument"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DTD"),
        (form4_xml("X", [("S", "-5", "1")]).encode(), "negative"),
    ],
)
def test_parse_form4_rejects(document: bytes, reason: str) -> None:
    """HTML, entity declarations and negative amounts are refused with the reason."""
    with pytest.raises(BadInputError, match=reason):
        parse_form4(document)


def test_user_agent_is_required() -> None:
    """Without sec_user_agent the source refuses to be built and names the setting."""
    with pytest.raises(ConfigurationError, match="sec_user_agent"):
        EdgarFilings(["AAPL"], user_agent=None)
    with pytest.raises(ConfigurationError, match="sec_user_agent"):
        EdgarFilings(["AAPL"], user_agent="  ")


def test_rate_limit_then_success_and_rate_cap(fake: FakeServer) -> None:
    """A 429 on the ticker map is retried; requests never exceed 10 a second: the N requests
    the server saw span at least (N - 1) tenths of a second (arrival jitter moves only the two
    ends, so the span, unlike a single gap, does not depend on how loaded the machine is)."""
    _install(fake, Reply(body=GOOD_FORM4, content_type="text/xml"))
    fake.first(TICKERS, Reply(status=429, headers={"Retry-After": "0"}))
    result = _edgar(fake, ["AAPL"], requests_per_second=10).fetch(AS_OF)
    assert result.health.status == "ok", result.health
    stamps = [r.at for r in fake.requests]
    assert len(stamps) >= 4
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) * 0.1 - 0.03


def test_submissions_5xx_is_error(fake: FakeServer) -> None:
    """Submissions that only answer 500 make an error health with a flag per name."""
    install_edgar(fake, {"AAPL": AAPL}, {})
    fake.script(f"/submissions/CIK{AAPL:010d}.json", Reply(status=500))
    result = _edgar(fake, ["AAPL"], attempts=2).fetch(AS_OF)
    assert result.health.status == "error"
    assert any(f.subject == "AAPL submissions" for f in result.flags)


def test_empty_ticker_map_is_error(fake: FakeServer) -> None:
    """An empty body for the ticker map is an error health, not an exception."""
    fake.script(TICKERS, Reply(body=b""))
    result = _edgar(fake, ["AAPL"]).fetch(AS_OF)
    assert result.health.status == "error"
    assert result.filings == ()


def test_hang_returns_error_within_time_limit(fake: FakeServer) -> None:
    """An EDGAR that never answers gives an error health in about the time limit."""
    fake.script(TICKERS, Reply(delay_s=3.0, body=b"{}"))
    started = time.monotonic()
    result = _edgar(fake, ["AAPL"], timeout_s=0.5).fetch(AS_OF)
    assert time.monotonic() - started < 1.5
    assert result.health.status == "error"


def test_only_names_that_file_are_asked_for() -> None:
    """Indices, crypto pairs and futures are skipped; a class-share ticker like BRK-B is kept."""
    source = EdgarFilings(["^VIX", "BTC-USD", "CL=F", "BRK-B", "aapl"], user_agent=AGENT)
    assert source.symbols == ("BRK-B", "AAPL")
