"""Markets the resolver settles against: the replay directory a cycle read, or the live feed."""

from __future__ import annotations

from functools import partial

from services.resolver.resolve import MarketFor
from shared.errors import BadInputError
from shared.market.opening import replay_market
from shared.ports import SettlementPrices
from shared.settings import Settings


def market_for(settings: Settings, mode: str, data_dir: str | None) -> SettlementPrices:
    if mode == "replay":
        return replay_market(data_dir)
    if mode == "live":
        from shared.market.live.settlement import YahooSettlement

        return YahooSettlement(settings)
    raise BadInputError(f"unknown cycle mode {mode!r}")


def markets(settings: Settings) -> MarketFor:
    return partial(market_for, settings)
