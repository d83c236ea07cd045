"""The move events the desk's menu can call, their point-in-time base rates, and the naive model.

Every call on the menu is an event on a symbol's move over 1, 2 or 5 sessions: up or down
(direction), beyond a fixed percentage (threshold), or within / outside a band (range). The
moves come from a fixed grid per asset class, so that each event's base rate is a plain
frequency: how often that move happened in the symbol's history known at the session (an
expanding count, as the direction base rates are). The grid is fixed rather than scaled by
today's volatility on purpose: the base rate then knows nothing of the current tape, and the
naive model below (which knows only the trailing volatility) is the baseline that does.

Pure: polars expressions over the feature frame's close columns, and plain arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import polars as pl

HORIZON_SESSIONS = (1, 2, 5)
# Outcomes a move event's base rate needs before it is quoted (a quarter of a year of sessions).
EVENT_RATE_MIN = 60

# Move sizes in percent, per asset class: from a common daily move to a rare weekly one.
GRIDS: dict[str, tuple[float, ...]] = {
    "equity_index": (0.5, 1.0, 2.0, 3.0, 5.0),
    "equity": (1.0, 2.0, 3.0, 5.0, 8.0),
    "volatility": (2.5, 5.0, 10.0, 15.0, 25.0),
    "crypto": (2.0, 5.0, 10.0, 15.0, 25.0),
    "rates": (1.0, 2.0, 3.0, 5.0, 8.0),
    "commodity": (1.0, 2.0, 3.0, 5.0, 8.0),
}
VOLATILITY = ("^VIX", "^VXN", "^VVIX")
RATES = ("^TNX", "^IRX", "^FVX", "^TYX")


def asset_class(symbol: str) -> str:
    """The asset class a symbol's calls are tagged with (and whose move grid it uses)."""
    if symbol in VOLATILITY:
        return "volatility"
    if symbol in RATES:
        return "rates"
    if symbol.endswith("-USD"):
        return "crypto"
    if symbol.endswith("=F"):
        return "commodity"
    if symbol.startswith("^") or symbol in ("SPY", "QQQ", "IWM", "DIA"):
        return "equity_index"
    return "equity"


def topic_of(symbol: str) -> str:
    """The topic a call on a symbol is about, for the record's and the rules' cuts."""
    return {
        "volatility": "volatility",
        "rates": "rates",
        "crypto": "crypto",
        "commodity": "commodities",
        "equity_index": "index",
    }.get(asset_class(symbol), "single_name")


def grid(symbol: str) -> tuple[float, ...]:
    return GRIDS[asset_class(symbol)]


def event_key(symbol: str, sessions: int, event: str) -> str:
    """e.g. '^GSPC|1|gt1' (a close more than 1% up), '|lt-1' (more than 1% down), '|in1'."""
    return f"{symbol}|{sessions}|{event}"


def move_events(symbol: str) -> list[tuple[str, float]]:
    """(event name, move %) of every grid event: 'gtG', 'lt-G' and 'inG' for each move G."""
    out: list[tuple[str, float]] = []
    for g in grid(symbol):
        out += [(f"gt{g:g}", g), (f"lt-{g:g}", -g), (f"in{g:g}", g)]
    return out


def _col(sessions: int, event: str) -> str:
    return f"ev|{sessions}|{event}"


def event_rate_columns(symbol: str) -> list[str]:
    """The long frame's event-rate columns that belong to a symbol's own grid."""
    return [_col(n, name) for n in HORIZON_SESSIONS for name, _ in move_events(symbol)]


def with_event_rates(bars: pl.DataFrame, segment: Sequence[str]) -> pl.DataFrame:
    """Every grid event's expanding frequency on each symbol's own bars (one row per bar,
    columns ev|n|event; a symbol's columns outside its own grid stay null).

    Row t knows the outcome of each pair (u - n, u) with u <= t, as the direction base rates
    do: the call made at t's close is scored against rates that include t and nothing later.
    A move never spans a gap (the segment starts afresh after one).
    """
    symbols = bars["symbol"].unique().to_list() if bars.height else []
    moves = sorted({g for symbol in symbols for g in grid(str(symbol))})
    close = pl.col("close")
    exprs: list[pl.Expr] = []
    for n in HORIZON_SESSIONS:
        move = ((close / close.shift(n) - 1.0) * 100.0).over(list(segment))
        known = move.is_not_null().cast(pl.Int64).cum_sum().over("symbol")
        enough = known >= EVENT_RATE_MIN
        for g in moves:
            for name, hit in ((f"gt{g:g}", move > g), (f"lt-{g:g}", move < -g),
                              (f"in{g:g}", move.abs() <= g)):  # fmt: skip
                count = hit.fill_null(False).cast(pl.Int64).cum_sum().over("symbol")
                exprs.append(pl.when(enough).then(count / known).alias(_col(n, name)))
    return bars.with_columns(exprs) if exprs else bars


@cache
def _keys(symbol: str) -> tuple[tuple[str, str], ...]:
    """(frame column, Features key) of a symbol's events, built once per symbol."""
    return tuple(
        (f"{_col(n, name)}|{symbol}", event_key(symbol, n, name))
        for n in HORIZON_SESSIONS
        for name, _ in move_events(symbol)
    )


def event_rates_of(row: Mapping[str, Any], symbols: Sequence[str]) -> dict[str, float]:
    """The Features field event_rates from one row of the frame."""
    rates: dict[str, float] = {}
    for symbol in symbols:
        for column, key in _keys(symbol):
            value = row.get(column)
            if value is not None:
                rates[key] = float(value)
    return rates


# --- the naive model -----------------------------------------------------------------------------


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def naive_probability(event: str, move_pct: float, daily_sd_pct: float, sessions: int) -> float:
    """P(event) for a driftless random walk of log moves at the trailing daily sd: what
    persistence alone says. 'up' is 0.5 by construction (no drift); 'gt'/'lt' a close beyond
    the move; 'in' a close within ±move."""
    if event == "up":
        return 0.5
    scale = daily_sd_pct / 100.0 * math.sqrt(sessions)
    if scale <= 0:
        return 0.5
    hi = math.log1p(abs(move_pct) / 100.0) / scale
    lo = math.log1p(-min(99.0, abs(move_pct)) / 100.0) / scale
    if event == "gt":
        p = 1.0 - normal_cdf(math.log1p(move_pct / 100.0) / scale)
    elif event == "lt":
        p = normal_cdf(math.log1p(move_pct / 100.0) / scale)
    else:
        p = normal_cdf(hi) - normal_cdf(lo)
    return _bounded(p)


def _bounded(p: float) -> float:
    """A naive probability kept off 0 and 1 (its logit is a calibration's input)."""
    return min(1.0 - 1e-6, max(1e-6, p))


def naive_at_move(
    move_pct: float, daily_sd_pct: float, sessions: int
) -> tuple[float, float, float]:
    """naive_probability of the three events at one grid move: above +move, within ±move, below
    -move (in that order), each the same float, from two logs and two normal tails instead of
    six and four (the menu prices these three for every symbol and horizon of every session)."""
    scale = daily_sd_pct / 100.0 * math.sqrt(sessions)
    if scale <= 0 or not 0 < move_pct <= 99.0:
        return (naive_probability("gt", move_pct, daily_sd_pct, sessions),
                naive_probability("in", move_pct, daily_sd_pct, sessions),
                naive_probability("lt", -move_pct, daily_sd_pct, sessions))  # fmt: skip
    above = normal_cdf(math.log1p(move_pct / 100.0) / scale)
    below = normal_cdf(math.log1p(-move_pct / 100.0) / scale)
    return _bounded(1.0 - above), _bounded(above - below), _bounded(below)
