"""The spend ledger's reservations on a real PostgreSQL server: parallel minds cannot overshoot."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from shared.brain.spending import Caps, ModelSpend, reserve, spent_in_cycle
from shared.db.session import migrate, session_scope

pytestmark = pytest.mark.integration


def test_parallel_reservations_on_postgres_never_overshoot_the_cap(postgres_url: str) -> None:
    """Eight reservations at once against a cap that fits three: the advisory lock lets exactly
    three through (PostgreSQL's inserts alone would not serialise the check)."""
    migrate(postgres_url)
    key = "pg-race"

    def book(_: int) -> int | str:
        return reserve(
            postgres_url,
            cycle_key=key,
            purpose="macro",
            model="claude-haiku-5-5",
            request_key="k",
            at=datetime(2026, 4, 4, 1, 0, tzinfo=UTC),
            caps=Caps(per_cycle=1.0, per_day=100.0),
            upcoming=0.3,
        )

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(book, range(8)))
        assert len([r for r in results if isinstance(r, int)]) == 3
        assert spent_in_cycle(postgres_url, key) == pytest.approx(0.9)
    finally:
        with session_scope(postgres_url) as session:
            session.execute(delete(ModelSpend).where(ModelSpend.cycle_key == key))
