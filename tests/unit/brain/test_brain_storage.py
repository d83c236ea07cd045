"""The reply cache, the spend ledger and migration 0002 that creates their tables."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from shared.brain.cache import load_reply, request_key, store_reply
from shared.brain.spending import Caps, Prices, over_budget, record_spend, spent_on_day
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
    """A million of each kind of token costs the sum of the four prices."""
    prices = Prices(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    million = 1_000_000
    assert (
        prices.dollars(
            input_tokens=million,
            output_tokens=million,
            cache_read_tokens=million,
            cache_write_tokens=million,
        )
        == 22.05
    )
