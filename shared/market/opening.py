"""Opening a replay directory once per process: it is validated and its features computed once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from shared.market.replay import ReplayMarket, load_replay, sample_data_dir


@cache
def replay_market(data_dir: str | None) -> ReplayMarket:
    """The market of a replay directory (None: the sample shipped with the package).

    Raises ReplayFormatError (a BadInputError) naming the file, line and problem.
    """
    directory = Path(data_dir) if data_dir else sample_data_dir()
    return ReplayMarket(load_replay(directory))
