"""The reply cache, the spend ledger and migration 0002 that creates their tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from shared.brain.cache import load_reply, request_key, store_reply
from shared.brain.models import MODELS, Prices
from shared.brain.spending import (
    Caps,
    over_budget,
    record_spend,
    release,
    reserve,
    settle,
    spent_in_cycle,
    spent_on_day,
)
from shared.contracts import TokenUsage
from shared.db.session import alembic_config, engine_for, migrate


def _tables(url: str) -> set[str]:
    return set(sa.inspect(engine_for(url)).get_table_names())


def test_migration_0002_applies_on_top_of_0001(tmp_path: Path) -> None:
    """Upgrading 0001 -> 0002 adds the cache and spend tables; downgrading removes them."""
    url = f"sqlite:///{tmp_path}/m.db"

    def run(step: str, target: str) -> None:
        with engine_for(url).begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            getattr(command, step)(config, target)

    run("upgrade", "0001")
    assert "cycles" in _tables(url)
    assert "model_replies" not in _tables(url)
    run("upgrade", "0002")
    assert {"model_replies", "model_spend"} <= _tables(url)
    run("downgrade", "0001")
    assert not {"model_replies", "model_spend"} & _tables(url)
    migrate(url)
    assert {"model_replies", "model_spend"} <= _tables(url)


def test_request_key_is_canonical_and_covers_every_part() -> None:
    """Key order does not matter; any change of model, prompt, tools or parameters does."""
    request = {"model": "m", "system": "s", "messages": [1], "tools": [2], "max_tokens": 5}
    assert request_key(request) == request_key(dict(reversed(list(request.items()))))
    for field in request:
        assert request_key({**request, field: "other"}) != request_key(request)


def test_a_stored_reply_is_loaded_and_a_racing_second_store_is_harmless(tmp_path: Path) -> None:
    """store_reply keeps the first reply for a key; load_reply returns it."""
    url = f"sqlite:///{tmp_path}/c.db"
    migrate(url)
    assert load_reply(url, "k") is None
    store_reply(url, "k", model="m", reply={"content": [1]})
    store_reply(url, "k", model="m", reply={"content": [2]})
    assert load_reply(url, "k") == {"content": [1]}


def test_spend_is_summed_per_utc_day_and_checked_against_caps(tmp_path: Path) -> None:
    """Spend late on one UTC day does not count against the next; caps include the next call."""
    url = f"sqlite:///{tmp_path}/s.db"
    migrate(url)
    for at, dollars in (
        (datetime(2026, 4, 3, 23, 59, tzinfo=UTC), 0.4),
        (datetime(2026, 4, 4, 0, 1, tzinfo=UTC), 0.1),
    ):
        record_spend(
            url,
            cycle_key="c1",
            purpose="macro",
            model="m",
            request_key="k",
            usage=TokenUsage(dollars=dollars),
            at=at,
        )
    assert spent_on_day(url, date(2026, 4, 3)) == 0.4
    assert spent_on_day(url, date(2026, 4, 4)) == 0.1
    at = datetime(2026, 4, 4, 1, 0, tzinfo=UTC)
    assert over_budget(url, cycle_key="c2", at=at, caps=Caps(1.0, 0.2), upcoming=0.05) is None
    reason = over_budget(url, cycle_key="c2", at=at, caps=Caps(1.0, 0.2), upcoming=0.15)
    assert reason is not None
    assert reason.startswith("budget: 2026-04-04")
    assert over_budget(url, cycle_key="c1", at=at, caps=Caps(0.5, 9.0), upcoming=0.01)


def test_prices_are_per_million_tokens_of_each_kind() -> None:
    """A million of each kind of token costs the sum of the five prices."""
    prices = Prices(input=2.0, output=10.0, cache_read=0.1, cache_write_5m=2.5, cache_write_1h=4.0)
    million = 1_000_000
    assert (
        prices.dollars(
            input_tokens=million,
            output_tokens=million,
            cache_read_tokens=million,
            cache_write_5m_tokens=million,
            cache_write_1h_tokens=million,
        )
        == 18.6
    )


def test_the_price_table_has_the_published_prices_of_the_default_models() -> None:
    """Haiku 5.5 and Sonnet 5.5 carry their list prices; Haiku's long prompts their own row."""
    haiku, sonnet = MODELS["claude-haiku-5-5"], MODELS["claude-sonnet-5-5"]
    assert (haiku.prices.input, haiku.prices.output, haiku.prices.cache_read) == (0.1, 0.5, 0.01)
    assert (haiku.prices.cache_write_5m, haiku.prices.cache_write_1h) == (0.125, 0.2)
    assert haiku.prices_for(100_001).input == 0.5
    assert haiku.prices_for(100_000).input == 0.1
    assert (sonnet.prices.input, sonnet.prices.output, sonnet.prices.cache_write_1h) == (2, 10, 4)


def _reserve(url: str, cycle: str, dollars: float, caps: Caps) -> int | str:
    return reserve(
        url,
        cycle_key=cycle,
        purpose="macro",
        model="claude-haiku-5-5",
        request_key="k",
        at=datetime(2026, 4, 4, 1, 0, tzinfo=UTC),
        caps=caps,
        upcoming=dollars,
    )


def test_reservations_count_until_settled_or_released(tmp_path: Path) -> None:
    """A reservation counts against the cap; settling replaces it by the real cost, releasing
    drops it; a refused reservation books nothing."""
    url = f"sqlite:///{tmp_path}/r.db"
    migrate(url)
    caps = Caps(per_cycle=0.10, per_day=1.0)
    first = _reserve(url, "c", 0.06, caps)
    assert isinstance(first, int)
    refused = _reserve(url, "c", 0.06, caps)
    assert isinstance(refused, str)
    assert refused.startswith("budget: cycle c")
    assert spent_in_cycle(url, "c") == 0.06
    settle(url, first, TokenUsage(input_tokens=10, dollars=0.01))
    assert spent_in_cycle(url, "c") == 0.01
    second = _reserve(url, "c", 0.06, caps)
    assert isinstance(second, int)
    release(url, second)
    assert spent_in_cycle(url, "c") == 0.01


def test_parallel_reservations_never_overshoot_the_cap(tmp_path: Path) -> None:
    """Eight minds reserving at once against a cap that fits three: exactly three get through,
    and the booked total stays under the cap (the overshoot race of a check-then-spend)."""
    url = f"sqlite:///{tmp_path}/p.db"
    migrate(url)
    caps = Caps(per_cycle=1.0, per_day=10.0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: _reserve(url, "race", 0.3, caps), range(8)))
    granted = [r for r in results if isinstance(r, int)]
    assert len(granted) == 3
    assert spent_in_cycle(url, "race") == pytest.approx(0.9)
