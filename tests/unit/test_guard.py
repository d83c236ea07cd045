"""The message guard, strict moments and bounded log lines, checked by property over inputs."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.cycle import parse_trigger
from shared import guard
from shared.contracts import CycleTrigger, OperatorNote
from shared.errors import BadInputError
from shared.logs import MAX_LINE_CHARS, configure_logging, scrub
from shared.moments import check_moment

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_depth_scan_of_raw_bytes_equals_the_parsed_depth(value: Any) -> None:
    """The pre-parse depth scan agrees with the depth of the parsed value, brackets in strings
    and escaped quotes included."""
    raw = json.dumps(value).encode()
    assert guard.json_depth(raw) == _depth(value)
    assert guard.structure_depth(value, 10_000) == _depth(value)


def test_deep_nesting_is_refused_before_parsing() -> None:
    """A 1 KB body nested 500 deep is refused by depth, whatever task it names."""
    raw = ("[" * 500 + "]" * 500).encode()
    with pytest.raises(guard.MessageRefused, match="500 levels deep"):
        guard.check_raw(raw, "application/json", guard.Limits())


def test_oversize_and_foreign_content_are_refused() -> None:
    """A body over the byte limit, or pickled instead of JSON, is refused naming the limit."""
    with pytest.raises(guard.MessageRefused, match="exceeds the limit of 10"):
        guard.check_raw(b"[" + b"1," * 20 + b"1]", "application/json", guard.Limits(max_bytes=10))
    with pytest.raises(guard.MessageRefused, match="only application/json"):
        guard.check_raw(b"\x80\x04", "application/x-python-serialize", guard.Limits())


@given(json_values)
def test_task_body_shape_is_args_kwargs_embed(value: Any) -> None:
    """Anything but [list, dict, dict|null] is refused with a reason; the right shape passes."""
    raw = json.dumps(value)
    shaped = (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], list)
        and isinstance(value[1], dict)
        and (value[2] is None or isinstance(value[2], dict))
    )
    if shaped:
        args, kwargs, _ = guard.check_task_body(raw)
        assert args == value[0]
        assert kwargs == value[1]
    else:
        with pytest.raises(guard.MessageRefused, match=r"must be|not valid"):
            guard.check_task_body(raw)


def test_cycle_key_is_found_in_a_raw_body_only_when_well_formed() -> None:
    """The rejection log names the cycle key a body carries, and nothing for a malformed one."""
    assert guard.cycle_key_of(b'[[{"cycle_key": "replay:x:2016-01-04"}], {}, {}]') == (
        "replay:x:2016-01-04"
    )
    assert guard.cycle_key_of(b'[[{"cycle_key": [[["x"]]]}], {}, {}]') is None


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers())))
def test_a_number_is_never_a_moment(value: Any) -> None:
    """Numbers (0, 1.5, ...) and other non-text are refused as as_of, never read as 1970."""
    with pytest.raises(ValidationError, match="ISO date/time string"):
        CycleTrigger(cycle_key="k", as_of=value)


@pytest.mark.parametrize("text", ["9999-12-31T00:00:00+00:00", "2999-01-01T00:00:00+00:00"])
def test_years_beyond_tomorrow_are_refused(text: str) -> None:
    """A trigger or a note dated after tomorrow is refused as being in the future."""
    with pytest.raises(ValidationError, match="in the future"):
        CycleTrigger(cycle_key="k", as_of=text)
    with pytest.raises(ValidationError, match="in the future"):
        OperatorNote(author="a", posted_at=text, text="t")


def test_moments_need_an_offset_and_a_sane_year() -> None:
    """A naive time or a year before 1900 is refused; an ISO time with offset is read."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone offset"):
        check_moment("2016-03-01T17:30:00", now=now)
    with pytest.raises(ValueError, match="before 1900"):
        check_moment("1899-12-31T00:00:00+00:00", now=now)
    assert check_moment("2016-03-01T17:30:00+00:00", now=now).year == 2016


def test_scrub_removes_query_keys_and_url_passwords() -> None:
    """FRED's api_key in a request line and a password in a broker URL never survive a scrub."""
    line = 'GET https://h/fred/series?series_id=CPI&api_key=abc123def&file_type=json "200"'
    assert "abc123def" not in scrub(line)
    assert "series_id=CPI" in scrub(line)
    assert "pw0rd" not in scrub("broker redis://:pw0rd@127.0.0.1:6379/0 up")
    assert "hunter2" not in scrub("postgresql+psycopg://desk:hunter2@db:5432/w")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    saved = sys.stderr
    sys.stderr = buffer
    try:
        configure_logging("json", "INFO")
        yield buffer
    finally:
        sys.stderr = saved
        configure_logging("json", "INFO")


def test_log_lines_are_bounded_and_secret_free(captured: io.StringIO) -> None:
    """A 4 MB field, a value too deep to render and an httpx request line with a key all come
    out as short lines with no key in them."""
    log = structlog.get_logger("t")
    log.info("huge", payload="x" * 4_000_000)
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    log.info("deep", payload=deep)
    logging.getLogger("httpx").info("HTTP Request: GET https://h/x?api_key=sekrit99 200")
    logging.getLogger("celery").warning("fetching https://h/x?api_key=sekrit99")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 3
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert "sekrit99" not in captured.getvalue()
    assert json.loads(lines[0])["event"] == "huge"
    assert json.loads(lines[1])["truncated"] is True


@settings(max_examples=50, deadline=None)
@given(json_values)
def test_a_trigger_of_any_shape_is_accepted_or_refused_with_field_names(value: Any) -> None:
    """Whatever random JSON arrives as a trigger, parsing refuses it with a short BadInputError
    that names what was wrong; nothing else escapes."""
    with pytest.raises(BadInputError, match=r"^malformed cycle trigger: ") as caught:
        parse_trigger(value)
    assert len(str(caught.value)) < 5000
