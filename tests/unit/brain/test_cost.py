"""What a live-like cycle costs at default settings, measured by the spend ledger on the fake."""

from __future__ import annotations

from bench.claude_cost import measure
from tests.fakes.anthropic_server import FakeAnthropic


def test_a_live_like_cycle_costs_at_most_three_cents_and_a_replay_nothing(
    fake: FakeAnthropic, db_url: str
) -> None:
    """17 symbols, 30 headlines and 20 filings through three Haiku minds and a Sonnet synthesis
    cost at most $0.03 cold and warm, as the ledger adds it up; the replay makes no request."""
    cost = measure(db_url, fake)
    print(f"live-like cycle: cold ${cost['cold']:.4f}, warm ${cost['warm']:.4f}")
    assert 0 < cost["warm"] < cost["cold"] <= 0.03
    assert cost["replay"] == 0
