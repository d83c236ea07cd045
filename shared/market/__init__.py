"""Market-data adapters behind the MarketData port; recorded-history replay is the default."""

from shared.market.replay import ReplayData, ReplayMarket, load_replay, sample_data_dir

__all__ = ["ReplayData", "ReplayMarket", "load_replay", "sample_data_dir"]
