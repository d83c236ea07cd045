"""Markets the resolver settles against: the replay directory a cycle read, or the live feed."""

from __future__ import annotations

from shared.errors import BadInputError
from shared.market.opening import replay_market
from shared.ports import MarketData


def market_for(mode: str, data_dir: str | None) -> MarketData:
    if mode == "replay":
        return replay_market(data_dir)
    if mode == "live":
        from shared.market.live.settlement import live_settlement_market

        return live_settlement_market()
    raise BadInputError(f"unknown cycle mode {mode!r}")
